// vma_ops end to end through the real rmapbench binary at tiny sizes: on
// this host (one NUMA node, debugfs locked down) every sequence runs with
// the deferred split shrinker as its rmap walk and passes; with a corrupted
// byte in one process the oracle fails, names the process and the page, and
// the run exits 1.
//
// Like the THP tests these use the host's real state directory, so the run
// lock keeps them from another run's knobs; they wait while it is held.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kSequences = {
    "mremap_move_before_fork",   "mremap_move_after_fork",   "mremap_grow_before_fork", "mremap_grow_after_fork",
    "mremap_shrink_before_fork", "mremap_shrink_after_fork", "mprotect_split_merge",    "munmap_then_merge",
    "fork_of_fork",              "orphaned",
};

Outcome run_waiting_for_lock(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  for (;;) {
    Outcome o = run_rmapbench(args, env);
    const bool busy = o.exit_code == 2 && o.err.find("another rmapbench run holds") != std::string::npos;
    if (!busy || std::chrono::steady_clock::now() > deadline) return o;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

std::vector<std::string> tiny(const std::string& filter, const std::string& sharers, const std::string& out) {
  return {"run", "--quiet", "--repetitions", "1", "--runs", "1", "--filter", filter, "--sweep=sharers=" + sharers,
          "--out", out};
}

bool host_has_thp() { return fs::exists("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"); }

// The walk this host must use, as its label words it: migration with >= 2
// nodes, else the debugfs split unless locked down (as here), else the
// deferred split shrinker.
std::string expected_walk() {
  int nodes = 0;
  for (const auto& e : fs::directory_iterator("/sys/devices/system/node"))
    if (e.path().filename().string().rfind("node", 0) == 0 && std::isdigit(e.path().filename().string()[4])) ++nodes;
  if (nodes >= 2) return "rmap walk: migration";
  const std::string lockdown = "/sys/kernel/security/lockdown";
  const bool locked = fs::exists(lockdown) && read_file(lockdown).find("[none]") == std::string::npos;
  if (locked || !fs::exists("/sys/kernel/debug/split_huge_pages")) return "rmap walk: THP split by the deferred split shrinker";
  return "rmap walk: THP split by <debugfs>/split_huge_pages";
}

}  // namespace

TEST(VmaOps, EverySequenceRunsWithThisHostsWalkAndPasses) {
  if (getuid() != 0) GTEST_SKIP() << "the walk reads kpageflags and runs the shrinkers: run as root";
  if (!host_has_thp()) GTEST_SKIP() << "no THP on this host";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_waiting_for_lock(tiny("^vma_ops/", "1,2", out));
  ASSERT_EQ(o.exit_code, 0) << describe(o);
  std::set<std::string> ran;
  const json results = json::parse(read_file(out));
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    const std::string name = b.at("name");
    ASSERT_FALSE(b.value("error_occurred", false)) << name << ": " << b.value("error_message", "");
    ran.insert(name.substr(0, name.find("/iterations")));
    EXPECT_GT(b.at("real_time").get<double>(), 0) << name;
    EXPECT_GT(b.at("sequence_us").get<double>(), 0) << name;
    EXPECT_GT(b.at("walk_us").get<double>(), 0) << name;
    // This host's walk (here: the deferred split shrinker), in the label.
    EXPECT_NE(b.value("label", "").find(expected_walk()), std::string::npos) << b.dump();
  }
  for (const std::string& s : kSequences)
    for (const char* sharers : {"1", "2"}) {
      const std::string name = "vma_ops/" + s + "/sharers:" + sharers;
      EXPECT_TRUE(ran.count(name)) << name << " did not run";
    }
}

TEST(VmaOps, ACorruptedByteFailsTheOracleNamingTheProcessAndThePage) {
  if (getuid() != 0) GTEST_SKIP() << "run as root";
  if (!host_has_thp()) GTEST_SKIP() << "no THP on this host";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  // One sequence per kind of process the byte is flipped in: a sharer, a
  // grandchild, an orphan.
  Outcome o = run_waiting_for_lock(tiny("^vma_ops/(mremap_move_after_fork|fork_of_fork|orphaned)/", "1", out),
                                   {"RMAPBENCH_TEST_CORRUPT=vma_ops"});
  EXPECT_EQ(o.exit_code, 1) << describe(o);
  const std::map<std::string, std::string> process = {
      {"mremap_move_after_fork", "sharer 0 (pid "}, {"fork_of_fork", "grandchild 0 (pid "}, {"orphaned", "orphan 0 (pid "}};
  std::set<std::string> caught;
  const json results = json::parse(read_file(out));
  for (const json& b : results.at("benchmarks")) {
    if (!b.value("error_occurred", false)) continue;
    const std::string name = b.at("name");
    const std::string msg = b.at("error_message");
    EXPECT_EQ(msg.rfind("error: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("corrupted"), std::string::npos) << msg;
    EXPECT_NE(msg.find("layout 1 page 0 "), std::string::npos) << msg;
    for (const auto& [sequence, who] : process)
      if (name.find("/" + sequence + "/") != std::string::npos) {
        EXPECT_NE(msg.find(who), std::string::npos) << msg;
        caught.insert(sequence);
      }
  }
  EXPECT_EQ(caught.size(), process.size()) << describe(o);
}
