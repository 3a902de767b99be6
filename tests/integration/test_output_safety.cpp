// The output-path rules and the hardening of issue 14, end to end on a tmpfs
// the test mounts (root only; skipped with the reason otherwise):
//  - --out never replaces a device node (it is written to) and follows a
//    symlink (run, report, compare);
//  - report --plot never runs code taken from a results file;
//  - a run refused by the lock creates nothing and leaves the running run's
//    files alone;
//  - a full disk is reported with its errno, the summary still printed and
//    no temporary left behind.
// Every run uses its own state directory (its own run lock) and a workload
// that changes no knob.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
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

// A tmpfs of `size` mounted on a fresh directory; unmounted in the destructor.
class Tmpfs {
 public:
  explicit Tmpfs(const std::string& size) {
    if (geteuid() != 0) {
      why_not_ = "needs root to mount a tmpfs";
      return;
    }
    path_ = dir_.path + "/mnt";
    fs::create_directory(path_);
    if (mount("tmpfs", path_.c_str(), "tmpfs", MS_NOSUID, ("size=" + size + ",mode=0755").c_str()) != 0) {
      why_not_ = std::string("cannot mount a tmpfs here: ") + strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~Tmpfs() {
    if (mounted_ && umount(path_.c_str()) != 0) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  const std::string& path() const { return path_; }
  std::string state() const { return dir_.path + "/state"; }  // outside the tmpfs
  std::vector<std::string> env() const { return {"RMAPBENCH_STATE_DIR=" + state()}; }

 private:
  TempDir dir_;
  std::string path_, why_not_;
  bool mounted_ = false;
};

#define MOUNT_OR_SKIP(t)                                  \
  if (!(t).mounted()) GTEST_SKIP() << (t).why_not();

// About a second; fork_storm changes no knob.
std::vector<std::string> short_run(const std::string& out) {
  return {"run", "--quiet", "--filter", "fork_storm/fork_only/vmas:1$", "--repetitions", "1", "--runs", "1",
          "--benchmark_min_time=0.001", "--out", out};
}

bool is_char_device(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
}

bool is_symlink(const std::string& p) {
  struct stat st {};
  return lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

const std::string kData = RMAPBENCH_TEST_DATA_DIR "/results/";

}  // namespace

// Issue 14 item 1: `mknod devnull c 1 3; rmapbench run --out devnull` made
// devnull a regular file.
TEST(OutputPaths, RunWritesToADeviceNodeAndNeverReplacesIt) {
  Tmpfs t("1m");
  MOUNT_OR_SKIP(t);
  const std::string dev = t.path() + "/devnull";
  ASSERT_EQ(mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  Outcome o = run_rmapbench(short_run(dev), t.env());
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_TRUE(is_char_device(dev)) << dev << " was replaced";
  EXPECT_EQ(names_in(t.path()), std::set<std::string>{"devnull"});
}

TEST(OutputPaths, RunFollowsASymlinkAndRefusesADanglingOne) {
  Tmpfs t("1m");
  MOUNT_OR_SKIP(t);
  const std::string target = t.path() + "/target.json", link = t.path() + "/link.json";
  { std::ofstream(target) << "old\n"; }
  fs::create_symlink(target, link);
  Outcome o = run_rmapbench(short_run(link), t.env());
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_TRUE(is_symlink(link)) << "the link was replaced";
  json written;
  EXPECT_NO_THROW(written = json::parse(read_file(target)));

  const std::string dangling = t.path() + "/dangling.json";
  fs::create_symlink(t.path() + "/nowhere/x.json", dangling);
  Outcome d = run_rmapbench(short_run(dangling), t.env());
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("symbolic link to a file that does not exist"), std::string::npos) << d.err;
  EXPECT_EQ(d.err.find("benchmarks x"), std::string::npos) << "it ran before refusing";
}

TEST(OutputPaths, RunToStandardOutputPrintsTheJsonAndTheSummaryOnStderr) {
  Tmpfs t("1m");
  MOUNT_OR_SKIP(t);
  Outcome o = run_rmapbench(short_run("-"), t.env());
  ASSERT_EQ(o.exit_code, 0) << o.err;
  json j;
  ASSERT_NO_THROW(j = json::parse(o.out)) << o.out.substr(0, 300);
  EXPECT_EQ(j.at("context").at("rmapbench.complete"), "true");
  EXPECT_NE(o.err.find("results: -"), std::string::npos) << o.err;
}

TEST(OutputPaths, ReportAndCompareWriteToDeviceNodesAndFollowSymlinks) {
  Tmpfs t("1m");
  MOUNT_OR_SKIP(t);
  const std::string dev = t.path() + "/devnull";
  ASSERT_EQ(mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  Outcome r = run_rmapbench({"report", kData + "base.json", "--out", dev});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(is_char_device(dev));
  Outcome c = run_rmapbench({"compare", kData + "base.json", kData + "aa.json", "--out", dev});
  EXPECT_LE(c.exit_code, 1) << c.err;
  EXPECT_TRUE(is_char_device(dev));

  const std::string target = t.path() + "/report.txt", link = t.path() + "/link.txt";
  { std::ofstream(target) << "old\n"; }
  fs::create_symlink(target, link);
  Outcome l = run_rmapbench({"compare", kData + "base.json", kData + "aa.json", "--format", "markdown", "--out", link});
  EXPECT_LE(l.exit_code, 1) << l.err;
  EXPECT_TRUE(is_symlink(link));
  EXPECT_NE(read_file(target).find("rmapbench compare"), std::string::npos);

  // /dev/full: the error is named, the node stays.
  const std::string full = t.path() + "/full";
  ASSERT_EQ(mknod(full.c_str(), S_IFCHR | 0666, makedev(1, 7)), 0);
  Outcome f = run_rmapbench({"report", kData + "base.json", "--out", full});
  EXPECT_EQ(f.exit_code, 2);
  EXPECT_NE(f.err.find("No space left on device"), std::string::npos) << f.err;
  EXPECT_TRUE(is_char_device(full));
}

// Issue 14 item 2: a newline in kernel_release ended gnuplot's string and
// the next line, system("touch pwned"), ran.
TEST(OutputPaths, PlotNeverRunsCodeFromAResultsFile) {
  Tmpfs t("4m");
  MOUNT_OR_SKIP(t);
  if (run_command({"sh", "-c", "command -v gnuplot"}).exit_code != 0) GTEST_SKIP() << "gnuplot not installed";
  json j = json::parse(read_file(kData + "base.json"));
  const std::string marker = t.path() + "/pwned";
  j["context"]["kernel_release"] = "x\nsystem(\"touch " + marker + "\")\n";
  j["context"]["variant"] = "v'\nsystem(\"touch " + marker + "2\")\n#";
  for (auto& b : j["benchmarks"]) {
    std::string name = b["name"];
    b["name"] = "evil\nsystem(\"touch " + marker + "3\")\n" + name;
    b.erase("run_name");
  }
  const std::string evil = t.path() + "/evil.json";
  { std::ofstream(evil) << j.dump(); }
  Outcome o = run_rmapbench({"report", evil, "--plot", t.path() + "/plots"});
  EXPECT_LE(o.exit_code, 1) << o.err;
  for (const char* suffix : {"", "2", "3"}) EXPECT_FALSE(fs::exists(marker + suffix)) << "gnuplot ran system()";
  EXPECT_EQ(o.out.find('\x1b'), std::string::npos);
}

// Issue 14 item 3: a second run refused by the lock truncated the running
// run's shared .partial, which then ended with exit 2 and no results.
TEST(OutputPaths, ARunRefusedByTheLockLeavesTheRunningOnesFilesAlone) {
  Tmpfs t("4m");
  MOUNT_OR_SKIP(t);
  const std::string out = t.path() + "/s.json";
  std::vector<std::string> argv{RMAPBENCH_BINARY, "run", "--quiet", "--filter", "^fork_storm/", "--sweep", "vmas=64",
                                "--repetitions", "200", "--out", out};
  pid_t a = fork();
  ASSERT_GE(a, 0);
  if (a == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    setenv("RMAPBENCH_STATE_DIR", t.state().c_str(), 1);
    std::vector<char*> args;
    for (auto& s : argv) args.push_back(s.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  // Running: the lock names it and its temporary exists.
  const bool started = wait_for([&] {
    return read_file(t.state() + "/run.lock").find("pid=" + std::to_string(a) + "\n") != std::string::npos &&
           names_in(t.path()).size() == 1;
  }, std::chrono::seconds(30));
  std::set<std::string> before = names_in(t.path());
  Outcome b = run_rmapbench(short_run(out), t.env());
  std::set<std::string> after = names_in(t.path());
  kill(a, SIGTERM);  // ends with what it has: exit 130, results marked incomplete
  int status = 0;
  waitpid(a, &status, 0);
  ASSERT_TRUE(started) << "the first run did not start";
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("lock"), std::string::npos) << b.err;
  EXPECT_EQ(before, after) << "the refused run created or removed a file";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  json j;
  ASSERT_NO_THROW(j = json::parse(read_file(out)));
  EXPECT_EQ(j.at("context").at("rmapbench.complete"), "false");
  EXPECT_EQ(names_in(t.path()), std::set<std::string>{"s.json"});
}

// Issue 14 item 7: on a full 64 KiB tmpfs the run ended with "parse error at
// line 1251", no summary and a truncated .partial left behind.
TEST(OutputPaths, AFullDiskIsNamedTheSummaryPrintedAndNothingLeftBehind) {
  Tmpfs t("64k");
  MOUNT_OR_SKIP(t);
  {
    // Fill it: whatever the run writes finds no space.
    int fd = open((t.path() + "/filler").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    std::string block(4096, 'x');
    while (write(fd, block.data(), block.size()) > 0) {
    }
    close(fd);
  }
  Outcome o = run_rmapbench(short_run(t.path() + "/r.json"), t.env());
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("No space left on device"), std::string::npos) << o.err;
  EXPECT_NE(o.out.find("benchmarks, 0 failed"), std::string::npos) << "no summary: " << o.out;
  EXPECT_EQ(names_in(t.path()), std::set<std::string>{"filler"});
}
