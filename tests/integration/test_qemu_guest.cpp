// `rmapbench qemu` end to end: Debian's kernel boots under QEMU with two NUMA
// nodes, runs a workload that this host cannot (debugfs THP split, locked
// down here), and the results come back; and each failure the runner
// promises (README "QEMU test hosts"): a missing kernel, a guest panic, a
// hung run, an interrupted or killed runner that must leave no QEMU behind.
// Each boot takes 5-30 s under TCG. They run in the normal stage only: under
// ASan the guest would run a sanitizer build at emulated speed.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;

namespace {

bool have_qemu() { return run_command({"sh", "-c", "command -v qemu-system-x86_64"}).exit_code == 0; }

#define SKIP_WITHOUT_QEMU()                                                                       \
  do {                                                                                            \
    if (!have_qemu()) {                                                                           \
      GTEST_SKIP() << "qemu-system-x86_64 is not installed (runners/local/install-deps.sh --qemu)"; \
    }                                                                                             \
  } while (0)

// QEMU processes this runner started: their -name carries its pid.
int guests_of(pid_t runner) {
  int n = 0;
  const std::string tag = "rmapbench-guest-" + std::to_string(runner);
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_file(e.path().string() + "/cmdline");
    for (char& c : cmdline)
      if (c == '\0') c = ' ';
    if (cmdline.find(tag) != std::string::npos && cmdline.find("qemu-system") != std::string::npos) ++n;
  }
  return n;
}

// Starts `rmapbench qemu ARGS` in the background; returns its pid.
pid_t start_runner(const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(RMAPBENCH_BINARY), const_cast<char*>("qemu")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0), dup2(null, 1), dup2(null, 2);
    execv(RMAPBENCH_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

// One boot covers what this host cannot run: the debugfs THP split (locked
// down here), KSM page migration, and issue 13's workloads: page migration
// of base pages and THPs with sharers, memory-failure (the guest passes
// --allow-destructive; it must leave nothing poisoned) and VMA-operation
// sequences checked by a migration walk. Each must have run its oracle, not
// skipped.
TEST(QemuGuest, DebianKernelWithTwoNodesRunsWhatThisHostCannotAndBringsResultsBack) {
  SKIP_WITHOUT_QEMU();
  TempDir dir;
  const std::string out = dir.path + "/guest.json";
  auto r = run_rmapbench({"qemu", "--numa", "2", "--timeout", "400", "--out", out, "--", "run", "--filter",
                          "thp_split/debugfs/folio:2048kB/sharers:0$|fork_storm/fork_exit_wait/vmas:1$|"
                          "ksm_merge/migrate/|page_migration/(move_pages/base|mbind/thp)/.*/sharers:4$|"
                          "memory_failure/(hard|soft)/sharers:4$|vma_ops/(mremap_move_after_fork|orphaned)/sharers:4$",
                          "--runs", "1", "--repetitions", "1", "--quiet"},
                         {}, 700);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json doc = json::parse(read_file(out));
  const json& c = doc.at("context");
  EXPECT_EQ(c.at("numa_nodes"), "2");
  EXPECT_EQ(c.at("numa_distances"), "10 20;20 10");
  EXPECT_EQ(c.at("lockdown"), "none");
  EXPECT_NE(c.at("emulation").get<std::string>(), "none") << "a QEMU guest must not read as native hardware";
  // Per benchmark prefix: the metric that only a measured, verified row has.
  const std::map<std::string, std::string> wanted = {
      {"thp_split/debugfs/", "folio_split_us"},
      {"ksm_merge/migrate/", "ksm_migrate_us"},
      {"page_migration/move_pages/base/", "migrate_us_per_folio"},
      {"page_migration/mbind/thp/", "migrate_us_per_folio"},
      {"memory_failure/hard/", "hwpoison_us"},
      {"memory_failure/soft/", "soft_offline_us"},
      {"vma_ops/mremap_move_after_fork/", "sequence_us"},
      {"vma_ops/orphaned/", "sequence_us"},
  };
  std::map<std::string, int> measured;
  for (const auto& b : doc.at("benchmarks")) {
    const std::string name = b.at("name");
    EXPECT_FALSE(b.value("error_occurred", false)) << name << ": " << b.value("error_message", "");
    for (const auto& [prefix, metric] : wanted)
      if (name.rfind(prefix, 0) == 0 && b.contains(metric)) ++measured[prefix];
    // Memory-failure unpoisons what it poisoned: the guest is left clean.
    if (name.rfind("memory_failure/", 0) == 0) {
      ASSERT_TRUE(b.contains("left_poisoned_kb")) << name;
      EXPECT_EQ(b.at("left_poisoned_kb").get<double>(), 0) << name;
    }
    // The VMA sequences were checked by migrating every folio (2 nodes).
    if (name.rfind("vma_ops/", 0) == 0) {
      EXPECT_NE(b.value("label", "").find("migration"), std::string::npos) << name << ": " << b.value("label", "");
    }
  }
  for (const auto& [prefix, metric] : wanted)
    EXPECT_GT(measured[prefix], 0) << prefix << " did not run (or skipped) in the guest:\n" << r.err;
  EXPECT_NE(r.err.find("results: " + out), std::string::npos) << r.err;
}

TEST(QemuGuest, MissingKernelImageIsAUsageError) {
  auto r = run_rmapbench({"qemu", "--kernel", "/nonexistent/vmlinuz", "--", "run"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("no kernel image at '/nonexistent/vmlinuz'"), std::string::npos) << r.err;
}

TEST(QemuGuest, BadOptionsAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"qemu", "--numa", "0"}, {"qemu", "--numa", "two"}, {"qemu", "--mem-per-node", "lots"},
           {"qemu", "--accel", "hvf"}, {"qemu", "--bogus"}, {"qemu", "--numa-distance", "10"}}) {
    auto r = run_rmapbench(args);
    EXPECT_EQ(r.exit_code, 2) << args[1] << ": " << r.err;
    EXPECT_NE(r.err.find("rmapbench-qemu: "), std::string::npos) << r.err;
  }
  auto help = run_rmapbench({"qemu", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: rmapbench qemu"), std::string::npos) << help.out;
}

TEST(QemuGuest, GuestPanicIsReportedWithTheConsoleTail) {
  SKIP_WITHOUT_QEMU();
  // A later rdinit= wins: the kernel finds no init and panics.
  auto r = run_rmapbench({"qemu", "--numa", "1", "--timeout", "240", "--append", "rdinit=/no-such-init", "--", "run"},
                         {}, 400);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("the guest kernel crashed: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Kernel panic"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("console's last lines"), std::string::npos) << r.err;
}

TEST(QemuGuest, WatchdogStopsAHungRunAndSaysWhatItWasDoing) {
  SKIP_WITHOUT_QEMU();
  // Far more work than 10 s of emulated time allows.
  auto r = run_rmapbench({"qemu", "--numa", "1", "--timeout", "10", "--", "run", "--filter",
                          "fork_storm/fork_exit_wait", "--repetitions", "100"},
                         {}, 300);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("watchdog: rmapbench still running after 10s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(rmapbench) state: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("the guest watchdog stopped rmapbench"), std::string::npos) << r.err;
}

TEST(QemuGuest, InterruptedOrKilledRunnerLeavesNoQemuBehind) {
  SKIP_WITHOUT_QEMU();
  for (int sig : {SIGINT, SIGKILL}) {
    pid_t runner =
        start_runner({"--numa", "1", "--timeout", "240", "--", "run", "--filter", "fork_storm", "--repetitions", "100"});
    // Wait until its guest is up (the initramfs may be built first).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (guests_of(runner) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_EQ(guests_of(runner), 1) << "no guest started within 120 s";
    kill(runner, sig);
    int rc = wait_status(runner);
    if (sig == SIGINT) {
      EXPECT_EQ(rc, 130);
    }
    deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (guests_of(runner) > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_EQ(guests_of(runner), 0) << "QEMU outlived its runner after signal " << sig;
  }
}

TEST(QemuAb, BadOptionsAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"ab"}, {"ab", "--base", "debian"}, {"ab", "--base", "debian", "--new", "/nonexistent/bzImage"},
           {"ab", "--base", "debian", "--new", "debian", "--rounds", "0"},
           {"ab", "--base", "debian", "--new", "debian", "--order", "random"}, {"ab", "--bogus"}}) {
    auto r = run_rmapbench(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("rmapbench-ab: "), std::string::npos) << r.err;
  }
}

// The same kernel on both sides, one tiny workload, two rounds (four boots
// in the order A B B A): the runs come back, and the compare flags nothing.
TEST(QemuAb, SameKernelOnBothSidesFlagsNothing) {
  SKIP_WITHOUT_QEMU();
  TempDir dir;
  auto r = run_rmapbench({"ab", "--base", "debian", "--new", "debian", "--rounds", "2", "--numa", "1", "--timeout",
                          "60", "--out-dir", dir.path, "--", "--filter", "cow_after_fork/parent", "--runs", "1",
                          "--repetitions", "3"},
                         {}, 580);
  // Exit 0: compare flagged no regression (1 would be a flag, 2 a refusal).
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* f : {"/base-1.json", "/new-1.json", "/base-2.json", "/new-2.json"})
    EXPECT_TRUE(std::filesystem::exists(dir.path + f)) << f;
  const auto first_new = r.err.find("boot 2/4: new");
  const auto second_new = r.err.find("boot 3/4: new");
  EXPECT_NE(first_new, std::string::npos) << r.err;
  EXPECT_NE(second_new, std::string::npos) << "the order is A B B A: " << r.err;
}
