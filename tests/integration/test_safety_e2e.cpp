// Safety end to end (README "Safety"), each a real run of the rmapbench
// binary: nothing outlives a run killed with SIGKILL, SIGTERM writes results
// marked incomplete and puts the knobs back, one run at a time per host, a
// stale lock is taken over, a knob journal left by a killed process is
// restored by `rmapbench restore` and by the next run, and a benchmark too big
// for the host fails alone with a message saying what fits.
//
// Every test uses its own state directory (RMAPBENCH_STATE_DIR in a temp
// dir), so a developer's real journal and run lock are never touched. The
// journal test changes a real KSM knob; it puts it back in its teardown
// whatever happens.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------- processes

struct Proc {
  pid_t pid = 0, ppid = 0, pgid = 0;
  char state = '?';
  long long start_time = 0;  // ticks after boot: identity against pid reuse
};

std::optional<Proc> read_proc(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(paren + 2));
  Proc p;
  p.pid = pid;
  std::string skip;
  rest >> p.state >> p.ppid >> p.pgid;
  for (int field = 6; field < 22 && rest; ++field) rest >> skip;  // fields 6..21
  rest >> p.start_time;                                            // field 22
  return rest ? std::optional<Proc>(p) : std::nullopt;
}

std::vector<Proc> all_processes() {
  std::vector<Proc> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (auto p = read_proc(std::stoi(name))) out.push_back(*p);
  }
  return out;
}

// Processes of the run started as `root`: in its process group, or
// descended from it. Zombies are gone already (nothing left to run or free).
std::vector<Proc> processes_of_run(pid_t root) {
  std::vector<Proc> procs = all_processes();
  std::map<pid_t, pid_t> parent;
  for (const auto& p : procs) parent[p.pid] = p.ppid;
  std::vector<Proc> ours;
  for (const auto& p : procs) {
    if (p.pid == root || p.state == 'Z') continue;
    bool mine = p.pgid == root;
    for (pid_t a = p.ppid, hops = 0; !mine && a > 1 && hops < 4096; a = parent.count(a) ? parent[a] : 0, ++hops)
      mine = a == root;
    if (mine) ours.push_back(p);
  }
  return ours;
}

// Of `snapshot`, the processes still running (same pid and start time, not a zombie).
std::vector<Proc> survivors(const std::vector<Proc>& snapshot, pid_t root) {
  std::vector<Proc> alive;
  for (const auto& s : snapshot) {
    auto p = read_proc(s.pid);
    if (p && p->start_time == s.start_time && p->state != 'Z') alive.push_back(*p);
  }
  for (const auto& p : all_processes())
    if (p.pgid == root && p.pid != root && p.state != 'Z' &&
        std::none_of(alive.begin(), alive.end(), [&](const Proc& a) { return a.pid == p.pid; }))
      alive.push_back(p);
  return alive;
}

std::string describe(const std::vector<Proc>& procs) {
  std::string s;
  for (size_t i = 0; i < procs.size() && i < 10; ++i)
    s += (i ? ", " : "") + std::to_string(procs[i].pid) + " (" + procs[i].state + ")";
  if (procs.size() > 10) s += ", ...";
  return s;
}

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout,
              std::chrono::milliseconds step = std::chrono::milliseconds(5)) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(step);
  }
  return done();
}

// rmapbench running in the background, in its own process group (as from a
// shell script, so it is not a terminal's foreground group), output to files.
class Background {
 public:
  Background(const std::vector<std::string>& args, const std::vector<std::string>& env, const std::string& dir)
      : out_(dir + "/bg.out"), err_(dir + "/bg.err") {
    std::vector<std::string> argv{RMAPBENCH_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      setpgid(0, 0);
      int in = open("/dev/null", O_RDONLY), o = open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644),
          e = open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(in, 0);
      dup2(o, 1);
      dup2(e, 2);
      for (const auto& v : env) putenv(const_cast<char*>(v.c_str()));
      std::vector<char*> a;
      for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
  }
  Background(const Background&) = delete;
  ~Background() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      (void)wait(30);
    }
    if (pid_ > 0) kill(-pid_, SIGKILL);  // anything of its group a failed test left
  }
  pid_t pid() const { return pid_; }
  std::string out() const { return read_file(out_); }
  std::string err() const { return read_file(err_); }
  bool running() {
    if (reaped_) return false;
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) record(status);
    return !reaped_;
  }
  // Exit status (128+signal when killed); SIGKILLs it after `seconds`.
  int wait(int seconds) {
    if (!reaped_ && !wait_for([&] { return !running(); }, std::chrono::seconds(seconds),
                              std::chrono::milliseconds(10))) {
      kill(pid_, SIGKILL);
      int status = 0;
      if (waitpid(pid_, &status, 0) == pid_) record(status);
      ADD_FAILURE() << "rmapbench did not end within " << seconds << " s; killed it";
    }
    return code_;
  }

 private:
  void record(int status) {
    reaped_ = true;
    code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::string out_, err_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int code_ = -1;
};

// ---------------------------------------------------------------- knobs and state

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The value a knob file holds ("always [madvise] never" -> "madvise").
std::string knob_value(const std::string& path) {
  std::string t = trim(read_file(path));
  size_t open = t.find('['), close = t.find(']');
  return open != std::string::npos && close != std::string::npos && close > open ? t.substr(open + 1, close - open - 1)
                                                                                 : t;
}

bool write_knob(const std::string& path, const std::string& value) {
  std::ofstream out(path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

// Every writable KSM and THP knob with its value: what a run may change.
std::map<std::string, std::string> host_knobs() {
  std::map<std::string, std::string> knobs;
  for (const char* dir : {"/sys/kernel/mm/ksm", "/sys/kernel/mm/transparent_hugepage",
                          "/sys/kernel/mm/transparent_hugepage/khugepaged"}) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      struct stat st {};
      if (stat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IWUSR)) continue;
      knobs[e.path().string()] = knob_value(e.path().string());
    }
  }
  return knobs;
}

// The host's own run lock (README "One run at a time"), held while a test
// reads or changes real knobs: the runs under test use their own state
// directories, hence their own locks, and must not fight a real run (or
// another test suite) over KSM and THP. Same file and record format as
// RunLock, so a real run that is refused names the test as the holder.
class HostRunLock {
 public:
  static std::string path() {
    std::string dir;
    if (const char* d = std::getenv("RMAPBENCH_STATE_DIR"); d && *d) dir = d;
    else if (geteuid() == 0) dir = "/run/rmapbench";
    else if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) dir = std::string(x) + "/rmapbench";
    else dir = "/tmp/rmapbench-" + std::to_string(getuid());
    return dir + "/run.lock";
  }
  // Waits up to `patience` for the lock; false when someone keeps it.
  bool acquire(std::chrono::seconds patience) {
    const std::string p = path();
    mkdir(fs::path(p).parent_path().c_str(), geteuid() == 0 ? 0755 : 0700);
    fd_ = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd_ < 0) return false;
    if (!wait_for([&] { return flock(fd_, LOCK_EX | LOCK_NB) == 0; }, patience, std::chrono::milliseconds(100))) {
      holder_ = read_file(p);
      close(fd_);
      fd_ = -1;
      return false;
    }
    const auto self = read_proc(getpid());
    const std::string record = "pid=" + std::to_string(getpid()) + "\nstart_time=" +
                               std::to_string(self ? self->start_time : 0) +
                               "\nstarted=now\ncommand=rmapbench_integration_tests (safety tests using real knobs)\n";
    if (ftruncate(fd_, 0) == 0) (void)!pwrite(fd_, record.data(), record.size(), 0);
    return true;
  }
  // The record of whoever kept it, after acquire() failed.
  const std::string& holder() const { return holder_; }
  HostRunLock() = default;
  HostRunLock(const HostRunLock&) = delete;
  ~HostRunLock() {
    if (fd_ < 0) return;
    (void)!ftruncate(fd_, 0);  // no holder any more
    close(fd_);
  }

 private:
  int fd_ = -1;
  std::string holder_;
};

constexpr std::chrono::seconds kHostLockPatience{120};

json load(const std::string& path) { return json::parse(read_file(path)); }

struct RunDirs {
  TempDir dir;
  std::string state = dir.path + "/state";
  std::string out = dir.path + "/r.json";
  std::vector<std::string> env() const { return {"RMAPBENCH_STATE_DIR=" + state}; }
  std::string journal() const { return state + "/knobs.journal"; }
  std::string lock() const { return state + "/run.lock"; }
};

// A run long enough to act on while it is running (each fork storm
// benchmark takes ~0.1 s per repetition).
std::vector<std::string> long_run(const std::string& out) {
  return {"run", "--filter", "^fork_storm/", "--sweep", "vmas=64", "--repetitions", "200", "--out", out};
}

// A run of about a second.
std::vector<std::string> short_run(const std::string& out) {
  return {"run", "--quiet", "--filter", "fork_storm/fork_only/vmas:1$", "--repetitions", "1", "--runs", "1",
          "--benchmark_min_time=0.001", "--out", out};
}

bool lock_names(const std::string& lock, pid_t pid) {
  return read_file(lock).find("pid=" + std::to_string(pid) + "\n") != std::string::npos;
}

bool has_workload(const std::string& name) {
  Outcome o = run_rmapbench({"list", "--json"});
  if (o.exit_code != 0) return false;
  for (const json& w : json::parse(o.out))
    if (w.at("name") == name) return w.value("runnable", false);
  return false;
}

}  // namespace

// (a) kill -9 of the runner in the middle of a fork storm: within a second no
// process of the run is left (children die with their parent: PDEATHSIG).
TEST(SafetyE2E, KillNineMidForkStormLeavesNoProcessWithinOneSecond) {
  RunDirs d;
  Background run({"run", "--quiet", "--filter", "^fork_width/", "--sweep", "children=200", "--repetitions", "100",
                  "--out", d.out},
                 d.env(), d.dir.path);
  std::vector<Proc> ours;
  const bool storm = wait_for([&] {
    ours = processes_of_run(run.pid());
    return ours.size() >= 100 || !run.running();
  }, std::chrono::seconds(60));
  ASSERT_TRUE(storm && ours.size() >= 100) << "never saw 100 children of the run; stderr: " << run.err();

  ours = processes_of_run(run.pid());
  const auto killed = Clock::now();
  ASSERT_EQ(kill(run.pid(), SIGKILL), 0);
  EXPECT_EQ(run.wait(10), 128 + SIGKILL);
  std::vector<Proc> left;
  wait_for([&] {
    left = survivors(ours, run.pid());
    return left.empty();
  }, std::chrono::milliseconds(1000), std::chrono::milliseconds(2));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed).count();
  EXPECT_TRUE(left.empty()) << left.size() << " of " << ours.size() << " processes outlived the run by 1 s: "
                            << describe(left);
  RecordProperty("children_at_kill", static_cast<int>(ours.size()));
  RecordProperty("gone_after_ms", static_cast<int>(ms));
}

// (b) SIGTERM mid-run: exit 130, the results so far written and marked
// incomplete, no .partial left, nothing left in the journal, knobs as before,
// no process left.
TEST(SafetyE2E, SigtermMidRunWritesIncompleteResultsAndPutsEverythingBack) {
  RunDirs d;
  HostRunLock host_lock;  // no real run changes the knobs meanwhile
  const bool knobs_are_ours = host_lock.acquire(kHostLockPatience);
  const auto knobs_before = host_knobs();
  Background run(long_run(d.out), d.env(), d.dir.path);
  // Let a few repetitions finish (~0.1 s each), so there are results to keep.
  // (With interleaved repetitions Google Benchmark reports them only at the
  // end, so the progress lines cannot tell.)
  ASSERT_TRUE(wait_for([&] { return lock_names(d.lock(), run.pid()) || !run.running(); }, std::chrono::seconds(30)))
      << run.err();
  std::this_thread::sleep_for(std::chrono::seconds(2));
  ASSERT_TRUE(run.running()) << "the run ended before it could be interrupted: " << run.err();
  auto ours = processes_of_run(run.pid());
  ASSERT_EQ(kill(run.pid(), SIGTERM), 0);
  const int code = run.wait(60);
  EXPECT_EQ(code, 130) << run.err();
  EXPECT_NE(run.err().find("interrupted by SIGTERM"), std::string::npos) << run.err();

  ASSERT_TRUE(fs::exists(d.out)) << run.err();
  EXPECT_FALSE(fs::exists(d.out + ".partial"));
  json j = load(d.out);
  EXPECT_EQ(j.at("context").at("rmapbench.complete"), "false");
  size_t measured = 0;
  for (const json& b : j.at("benchmarks"))
    if (b.at("run_type") == "iteration" && !b.value("error_occurred", false)) ++measured;
  EXPECT_GT(measured, 0u) << "the repetitions finished before the signal were not kept";

  EXPECT_FALSE(fs::exists(d.journal())) << read_file(d.journal());
  if (knobs_are_ours) {
    EXPECT_EQ(host_knobs(), knobs_before);
  } else {
    std::cerr << "note: not comparing knobs: another run holds " << HostRunLock::path() << ": "
              << host_lock.holder() << "\n";
  }
  EXPECT_TRUE(survivors(ours, run.pid()).empty()) << describe(survivors(ours, run.pid()));
  EXPECT_EQ(read_file(d.lock()).find("pid="), std::string::npos) << "the run lock still names a holder";
}

// (c) One run at a time: a second run says who holds the lock and exits 2.
TEST(SafetyE2E, SecondRunWhileOneRunsExitsTwoNamingTheHolder) {
  RunDirs d;
  Background first(long_run(d.out), d.env(), d.dir.path);
  ASSERT_TRUE(wait_for([&] { return lock_names(d.lock(), first.pid()) || !first.running(); }, std::chrono::seconds(30)))
      << first.err();
  ASSERT_TRUE(first.running()) << first.err();

  const std::string second_out = d.dir.path + "/second.json";
  Outcome second = run_rmapbench(short_run(second_out), d.env(), 60);
  EXPECT_EQ(second.exit_code, 2) << second.err;
  EXPECT_NE(second.err.find("another rmapbench run holds " + d.lock()), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("pid " + std::to_string(first.pid()) + " ("), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("run --filter ^fork_storm/"), std::string::npos) << "holder's command line: " << second.err;
  EXPECT_FALSE(fs::exists(second_out)) << "the refused run wrote results";
  EXPECT_TRUE(first.running()) << "the second run disturbed the first";

  kill(first.pid(), SIGTERM);
  EXPECT_EQ(first.wait(60), 130) << first.err();
}

// (d) A lock left by a SIGKILLed run is stale: the next run takes it over and says so.
TEST(SafetyE2E, StaleLockOfAKilledRunIsTakenOver) {
  RunDirs d;
  pid_t dead = 0;
  {
    Background first(long_run(d.out), d.env(), d.dir.path);
    ASSERT_TRUE(wait_for([&] { return lock_names(d.lock(), first.pid()); }, std::chrono::seconds(30))) << first.err();
    dead = first.pid();
    kill(dead, SIGKILL);
    EXPECT_EQ(first.wait(10), 128 + SIGKILL);
  }
  ASSERT_TRUE(lock_names(d.lock(), dead)) << "the killed run's record is gone; nothing stale to take over";

  Outcome next = run_rmapbench(short_run(d.out), d.env(), 120);
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_NE(next.err.find("took over the stale run lock " + d.lock() + " of pid " + std::to_string(dead)),
            std::string::npos)
      << next.err;
  EXPECT_EQ(read_file(d.lock()).find("pid="), std::string::npos) << "the run lock still names a holder";
  EXPECT_EQ(load(d.out).at("context").at("rmapbench.complete"), "true");
}

// (e) A knob a killed process left changed: `restore --dry-run` shows it and
// changes nothing; the next `run` (or `restore`) puts the original back. Uses
// the real /sys/kernel/mm/ksm/pages_to_scan (with the journal in a temp
// state directory), restored in teardown whatever happens.
class KnobJournalE2E : public ::testing::Test {
 protected:
  static constexpr const char* kKnob = "/sys/kernel/mm/ksm/pages_to_scan";

  void SetUp() override {
    if (getuid() != 0) GTEST_SKIP() << "changing a KSM knob needs root";
    if (access(kKnob, W_OK) != 0) GTEST_SKIP() << kKnob << " is not writable here (no KSM?)";
    if (!host_lock_.acquire(kHostLockPatience))
      GTEST_SKIP() << "another rmapbench run holds " << HostRunLock::path() << " (" << host_lock_.holder()
                   << "): its knobs are not ours to change";
    knobs_before_ = host_knobs();
    original_ = knob_value(kKnob);
    ASSERT_FALSE(original_.empty());
    changed_ = original_ == "1234" ? "1235" : "1234";
  }

  // Whatever happened, every knob ends as it was. KSM refuses some changes
  // while pages are merged (EBUSY): unmerge (run=2) and retry, then `run`.
  void TearDown() override {
    if (knobs_before_.empty()) return;
    std::vector<std::string> put_back;
    for (const auto& [knob, value] : knobs_before_) {
      if (knob_value(knob) == value) continue;
      put_back.push_back(knob + " (was " + value + ", found " + knob_value(knob) + ")");
      if (!write_knob(knob, value) && knob.rfind("/sys/kernel/mm/ksm/", 0) == 0) {
        write_knob("/sys/kernel/mm/ksm/run", "2");
        write_knob(knob, value);
      }
    }
    write_knob("/sys/kernel/mm/ksm/run", knobs_before_["/sys/kernel/mm/ksm/run"]);
    std::string list;
    for (const auto& k : put_back) list += "\n  " + k;
    EXPECT_TRUE(put_back.empty()) << "knobs left changed; the teardown put them back:" << list;
    EXPECT_EQ(host_knobs(), knobs_before_);
  }

  // What a run killed while holding a KnobGuard on the knob leaves behind:
  // the journal entry (original first, fsync'd, then the write) of a process
  // that is gone, and the knob at the guard's value. The owner is a real
  // process, SIGKILLed, so its pid and start time identify a dead run.
  // (The integration tests link no rmapbench library, so the entry is
  // written in the documented journal format: README "Recovering by hand".
  // The KSM test below has a real run leave it.)
  void leave_journal_of_a_killed_run(const RunDirs& d) {
    pid_t owner = fork();
    ASSERT_GE(owner, 0);
    if (owner == 0) {
      pause();
      _exit(0);
    }
    auto p = read_proc(owner);
    ASSERT_TRUE(p.has_value());
    fs::create_directories(d.state);
    const std::string boot_id = trim(read_file("/proc/sys/kernel/random/boot_id"));
    {
      std::ofstream j(d.journal(), std::ios::trunc);
      j << "# rmapbench knob journal (left by a SIGKILLed run)\n"
        << owner << '\t' << p->start_time << '\t' << boot_id << "\t1\t" << kKnob << '\t' << original_ << '\t'
        << changed_ << '\n';
    }
    ASSERT_TRUE(write_knob(kKnob, changed_));
    kill(owner, SIGKILL);
    int status = 0;
    waitpid(owner, &status, 0);
    ASSERT_EQ(knob_value(kKnob), changed_);
  }

  HostRunLock host_lock_;  // released after TearDown
  std::map<std::string, std::string> knobs_before_;
  std::string original_, changed_;
};

TEST_F(KnobJournalE2E, DryRunShowsTheEntryThenTheNextRunRestoresIt) {
  RunDirs d;
  leave_journal_of_a_killed_run(d);
  if (HasFatalFailure()) return;
  const std::string journal_before = read_file(d.journal());

  Outcome dry = run_rmapbench({"restore", "--dry-run"}, d.env());
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("dry run: nothing is changed"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find(std::string(kKnob) + "\n    set to '" + changed_ + "' by pid"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("(dead), original '" + original_ + "', now '" + changed_ + "': would restore to '" +
                         original_ + "'"),
            std::string::npos)
      << dry.out;
  EXPECT_EQ(knob_value(kKnob), changed_) << "--dry-run changed the knob";
  EXPECT_EQ(read_file(d.journal()), journal_before) << "--dry-run changed the journal";

  Outcome run = run_rmapbench(short_run(d.out), d.env(), 120);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(knob_value(kKnob), original_);
  EXPECT_NE(run.err.find("rmapbench: restored " + std::string(kKnob) + " to '" + original_ + "'"), std::string::npos)
      << run.err;
  EXPECT_FALSE(fs::exists(d.journal())) << read_file(d.journal());
}

TEST_F(KnobJournalE2E, RestoreCommandPutsTheOriginalBack) {
  RunDirs d;
  leave_journal_of_a_killed_run(d);
  if (HasFatalFailure()) return;
  Outcome r = run_rmapbench({"restore"}, d.env());
  EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("restored to '" + original_ + "'"), std::string::npos) << r.out;
  EXPECT_EQ(knob_value(kKnob), original_);
  EXPECT_FALSE(fs::exists(d.journal())) << read_file(d.journal());
  Outcome again = run_rmapbench({"restore"}, d.env());
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("empty, nothing to restore"), std::string::npos) << again.out;
}

// The real thing: SIGKILL in the middle of a KSM run that has changed its
// knobs; `restore --dry-run` lists them, the next run puts every knob back.
TEST_F(KnobJournalE2E, SigkillMidKsmRunThenEveryKnobIsPutBack) {
  if (!has_workload("ksm_merge")) GTEST_SKIP() << "no runnable ksm_merge workload in this build";
  RunDirs d;
  // The knobs a run journaled (and may have changed: guards journal first).
  auto journaled = [&] {
    std::set<std::string> paths;
    std::istringstream in(read_file(d.journal()));
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> f;
      std::istringstream fields(line);
      for (std::string x; std::getline(fields, x, '\t');) f.push_back(x);
      if (f.size() == 7) paths.insert(f[4]);
    }
    return paths;
  };
  {
    Background run({"run", "--quiet", "--filter", "^ksm_merge/", "--repetitions", "50", "--out", d.out}, d.env(),
                   d.dir.path);
    // ksmd is tuned through three guards (pages_to_scan, sleep_millisecs, run).
    const bool tuned = wait_for([&] { return journaled().size() >= 3 || !run.running(); }, std::chrono::seconds(60),
                                std::chrono::milliseconds(1));
    const bool was_running = run.running();
    kill(run.pid(), SIGKILL);
    EXPECT_EQ(run.wait(10), 128 + SIGKILL) << run.err();
    ASSERT_TRUE(tuned && was_running) << "the KSM run ended before it tuned ksmd: " << run.err();
  }
  const std::set<std::string> paths = journaled();
  // Killed while it held its guards (between two benchmarks it holds none).
  ASSERT_FALSE(paths.empty()) << "killed between benchmarks; nothing journaled";
  const std::string journal_before = read_file(d.journal());
  const auto left = host_knobs();
  bool any_changed = false;
  for (const auto& [knob, value] : left) any_changed |= value != knobs_before_.at(knob);

  Outcome dry = run_rmapbench({"restore", "--dry-run"}, d.env());
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  for (const auto& p : paths) EXPECT_NE(dry.out.find("  " + p + "\n    set to '"), std::string::npos) << p << dry.out;
  EXPECT_EQ(dry.out.find("(alive)"), std::string::npos) << "the killed run's entries must be dead: " << dry.out;
  EXPECT_EQ(host_knobs(), left) << "--dry-run changed a knob";
  EXPECT_EQ(read_file(d.journal()), journal_before) << "--dry-run changed the journal";

  Outcome run = run_rmapbench(short_run(d.out), d.env(), 120);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  if (any_changed) {
    EXPECT_NE(run.err.find("rmapbench: restored /sys/kernel/mm/ksm/"), std::string::npos) << run.err;
  }
  EXPECT_EQ(host_knobs(), knobs_before_) << run.err;
  EXPECT_FALSE(fs::exists(d.journal())) << read_file(d.journal());
  RecordProperty("knobs_changed_at_kill", any_changed ? "yes" : "no (the host already had KSM tuned that way)");
}


// (f) `rmapbench restore`: its help and its exit codes.
TEST(SafetyE2E, RestoreHelpAndExitCodes) {
  Outcome help = run_rmapbench({"restore", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Usage: rmapbench restore"), std::string::npos) << help.out;
  for (const char* word : {"--all", "--dry-run", "knobs.journal", "Exit status"})
    EXPECT_NE(help.out.find(word), std::string::npos) << word;

  RunDirs d;
  Outcome empty = run_rmapbench({"restore"}, d.env());
  EXPECT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_NE(empty.out.find("empty, nothing to restore"), std::string::npos) << empty.out;

  Outcome bad = run_rmapbench({"restore", "--bogus"}, d.env());
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--bogus"), std::string::npos) << bad.err;

  // An entry whose original cannot be written back: exit 2, entry kept. The
  // kernel refuses the "original" (not a number), so the knob never changes.
  const std::string knob = "/sys/kernel/mm/ksm/pages_to_scan";
  if (getuid() != 0 || access(knob.c_str(), W_OK) != 0) return;
  HostRunLock host_lock;
  if (!host_lock.acquire(kHostLockPatience)) return;  // a real run may change the knob meanwhile
  const std::string now = knob_value(knob);
  fs::create_directories(d.state);
  {
    std::ofstream j(d.journal());
    j << "999999\t1\t" << trim(read_file("/proc/sys/kernel/random/boot_id")) << "\t1\t" << knob
      << "\tnot-a-number\t" << now << "\n";
  }
  Outcome failed = run_rmapbench({"restore"}, d.env());
  EXPECT_EQ(failed.exit_code, 2) << failed.out << failed.err;
  EXPECT_NE(failed.out.find("FAILED"), std::string::npos) << failed.out;
  EXPECT_NE(failed.err.find("could not be restored"), std::string::npos) << failed.err;
  EXPECT_TRUE(fs::exists(d.journal())) << "a failed entry must stay in the journal";
  EXPECT_EQ(knob_value(knob), now);
  if (knob_value(knob) != now) write_knob(knob, now);
}

// Resources are checked before a workload builds anything: too many VMAs for
// vm.max_map_count fail that benchmark alone, with the largest size that fits.
TEST(SafetyE2E, TooManyVmasFailThatBenchmarkWithTheLargestSizeThatFits) {
  RunDirs d;
  const long max_map_count = std::stol(read_file("/proc/sys/vm/max_map_count"));
  const long vmas = std::max(70000L, max_map_count + 1);
  Outcome o = run_rmapbench({"run", "--quiet", "--filter", "^fork_storm/fork_only/", "--sweep",
                             "vmas=" + std::to_string(vmas) + ",4", "--repetitions", "2", "--benchmark_min_time=0.001",
                             "--out", d.out},
                            d.env(), 300);
  EXPECT_EQ(o.exit_code, 1) << o.err << o.out;
  bool too_big_failed = false, small_ran = false;
  const json j = load(d.out);
  for (const json& b : j.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    const std::string name = b.at("name");
    if (name == "fork_storm/fork_only/vmas:" + std::to_string(vmas)) {
      ASSERT_TRUE(b.value("error_occurred", false)) << b.dump();
      const std::string msg = b.at("error_message");
      EXPECT_EQ(msg.rfind("error: does not fit this host: needs ", 0), 0u) << msg;
      EXPECT_NE(msg.find("vm.max_map_count=" + std::to_string(max_map_count)), std::string::npos) << msg;
      EXPECT_NE(msg.find("or use --sweep vmas="), std::string::npos) << msg;
      // The suggested size really fits: it is below the limit.
      const long suggested = std::stol(msg.substr(msg.find("--sweep vmas=") + 13));
      EXPECT_GT(suggested, 0);
      EXPECT_LT(suggested, max_map_count) << msg;
      too_big_failed = true;
    }
    if (name == "fork_storm/fork_only/vmas:4" && !b.value("error_occurred", false)) small_ran = true;
  }
  EXPECT_TRUE(too_big_failed);
  EXPECT_TRUE(small_ran) << "the rest of the run must go on";
}

// The same for processes: more children than kernel.pid_max can ever hold.
TEST(SafetyE2E, TooManyChildrenFailWithTheProcessLimit) {
  RunDirs d;
  const long pid_max = std::stol(read_file("/proc/sys/kernel/pid_max"));
  Outcome o = run_rmapbench({"run", "--quiet", "--filter", "^fork_width/", "--sweep",
                             "children=" + std::to_string(pid_max + 1), "--repetitions", "1", "--runs", "1", "--out", d.out},
                            d.env(), 300);
  EXPECT_EQ(o.exit_code, 1) << o.err << o.out;
  json j = load(d.out);
  ASSERT_FALSE(j.at("benchmarks").empty());
  for (const json& b : j.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    const std::string msg = b.value("error_message", "");
    EXPECT_EQ(msg.rfind("error: does not fit this host: needs " + std::to_string(pid_max + 1) + " processes", 0), 0u)
        << msg;
    EXPECT_NE(msg.find("or use --sweep children="), std::string::npos) << msg;
  }
}
