// KnobGuard, the knob journal and the signal path, on temp files standing in
// for sysfs knobs (THP-style "always [madvise] never" and KSM-style numbers),
// with RMAPBENCH_STATE_DIR pointing at a temp directory.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "test_support.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_guard.hpp"
#include "kernels/safety/signals.hpp"

namespace fs = std::filesystem;
using namespace rmapbench;
using namespace rmapbench::safety;

using rmapbench::testing::slurp;
using rmapbench::testing::spit;
using rmapbench::testing::ChildPipe;
namespace {

std::string knob(const std::string& path) { return parse_knob_value(slurp(path)); }

// Reaps a child, killing it if it hangs (a test must fail, not hang).
int reap(pid_t child) {
  auto e = wait_with_timeout(child, std::chrono::seconds(20));
  return e ? e->status : -1;
}

class KnobGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spit(thp_, "always [madvise] never\n");
    spit(ksm_, "100\n");
  }
  std::vector<JournalEntry> journal() {
    auto j = read_journal();
    EXPECT_TRUE(j) << j.status().message();
    return j ? *j : std::vector<JournalEntry>{};
  }

  rmapbench::testing::TempStateDir tmp_{"rmapbench-knob"};
  std::string dir_ = tmp_.path, state_ = tmp_.state, thp_ = dir_ + "/enabled", ksm_ = dir_ + "/pages_to_scan";
};

TEST(KnobValue, ParsesBracketedAndPlainValues) {
  EXPECT_EQ(parse_knob_value("always [madvise] never\n"), "madvise");
  EXPECT_EQ(parse_knob_value("[always] madvise never"), "always");
  EXPECT_EQ(parse_knob_value("always defer defer+madvise [madvise] never\n"), "madvise");
  EXPECT_EQ(parse_knob_value("[none] scan-time\n"), "none");
  EXPECT_EQ(parse_knob_value("0\n"), "0");
  EXPECT_EQ(parse_knob_value("  1000 \n"), "1000");
  EXPECT_EQ(parse_knob_value(""), "");
}

TEST(StateDir, FollowsTheEnvironment) {
  setenv("RMAPBENCH_STATE_DIR", "/tmp/somewhere", 1);
  EXPECT_EQ(state_dir(), "/tmp/somewhere");
  EXPECT_EQ(journal_path(), "/tmp/somewhere/knobs.journal");
  unsetenv("RMAPBENCH_STATE_DIR");
  if (geteuid() == 0) {
    EXPECT_EQ(state_dir(), "/run/rmapbench");
  }
}

TEST_F(KnobGuardTest, RestoresOnScopeExitAndJournalsBeforehand) {
  {
    auto g = KnobGuard::set(thp_, "always");
    ASSERT_TRUE(g) << g.status().message();
    EXPECT_EQ(knob(thp_), "always");
    EXPECT_EQ(g->original(), "madvise");
    EXPECT_EQ(g->value(), "always");
    EXPECT_EQ(g->path(), fs::canonical(thp_).string());
    auto j = journal();
    ASSERT_EQ(j.size(), 1u);
    EXPECT_EQ(j[0].pid, getpid());
    EXPECT_EQ(j[0].path, fs::canonical(thp_).string());
    EXPECT_EQ(j[0].original, "madvise");
    EXPECT_EQ(j[0].set_to, "always");
    EXPECT_EQ(j[0].boot_id, current_boot_id());
    EXPECT_EQ(live_guard_count(), 1);

    auto k = KnobGuard::set(ksm_, "1000");
    ASSERT_TRUE(k) << k.status().message();
    EXPECT_EQ(knob(ksm_), "1000");
    EXPECT_EQ(journal().size(), 2u);
  }
  EXPECT_EQ(knob(thp_), "madvise");
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());
  EXPECT_FALSE(fs::exists(journal_path()));
  EXPECT_EQ(live_guard_count(), 0);
}

TEST_F(KnobGuardTest, ExplicitRestoreThenDestructorDoesNothing) {
  auto g = KnobGuard::set(ksm_, "5");
  ASSERT_TRUE(g);
  ASSERT_TRUE(g->restore());
  EXPECT_EQ(knob(ksm_), "100");
  spit(ksm_, "77\n");  // someone changes it afterwards: our destructor must not touch it
  { auto moved = std::move(*g); }
  EXPECT_EQ(knob(ksm_), "77");
}

TEST_F(KnobGuardTest, MovedGuardRestoresOnce) {
  std::vector<KnobGuard> guards;
  {
    auto g = KnobGuard::set(ksm_, "1");
    ASSERT_TRUE(g);
    guards.push_back(std::move(*g));
  }
  EXPECT_EQ(knob(ksm_), "1");  // the moved-from guard restored nothing
  guards.clear();
  EXPECT_EQ(knob(ksm_), "100");
}

TEST_F(KnobGuardTest, MissingKnobFailsWithoutJournalEntry) {
  auto g = KnobGuard::set(dir_ + "/no-such-knob", "1");
  ASSERT_FALSE(g);
  EXPECT_NE(g.status().message().find("no-such-knob"), std::string::npos);
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, RejectedWriteChangesNothingAndDropsTheEntry) {
  // A real knob that rejects a bad value (EINVAL): nothing may change.
  const std::string real = "/sys/kernel/mm/transparent_hugepage/enabled";
  if (access(real.c_str(), W_OK) != 0) GTEST_SKIP() << real << " not writable here";
  std::string before = slurp(real);
  auto g = KnobGuard::set(real, "bogus-value");
  ASSERT_FALSE(g);
  EXPECT_EQ(g.status().err(), EINVAL) << g.status().message();
  EXPECT_NE(g.status().message().find("write 'bogus-value' to " + real), std::string::npos) << g.status().message();
  EXPECT_EQ(slurp(real), before);
  EXPECT_TRUE(journal().empty());
  EXPECT_EQ(live_guard_count(), 0);
}

TEST_F(KnobGuardTest, FailedRestoreKeepsTheEntry) {
  auto g = KnobGuard::set(ksm_, "9");
  ASSERT_TRUE(g);
  fs::remove(ksm_);  // the knob vanished: the original cannot be written back
  Status st = g->restore();
  ASSERT_TRUE(st.failed());
  EXPECT_NE(st.message().find("could not restore"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(journal_path()), std::string::npos) << st.message();
  auto j = journal();
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].original, "100");
}

TEST_F(KnobGuardTest, RefusesMultiLineValues) {
  auto g = KnobGuard::set(ksm_, "1\n2");
  ASSERT_FALSE(g);
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, NestedGuardsRestoreInReverseOrder) {
  {
    auto outer = KnobGuard::set(thp_, "always");
    ASSERT_TRUE(outer);
    {
      auto inner = KnobGuard::set(thp_, "never");
      ASSERT_TRUE(inner);
      EXPECT_EQ(inner->original(), "always");
      EXPECT_EQ(knob(thp_), "never");
      EXPECT_EQ(journal().size(), 2u);
    }
    EXPECT_EQ(knob(thp_), "always");
    EXPECT_EQ(journal().size(), 1u);
  }
  EXPECT_EQ(knob(thp_), "madvise");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, NestedGuardsDestroyedOutOfOrderStillEndAtTheOriginal) {
  auto outer = KnobGuard::set(thp_, "always");
  auto inner = KnobGuard::set(thp_, "never");
  ASSERT_TRUE(outer && inner);
  ASSERT_TRUE(outer->restore());   // the older one first: the knob stays as the newer one set it
  EXPECT_EQ(knob(thp_), "never");
  auto j = journal();
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0].original, "madvise");  // handed over to the newer guard
  ASSERT_TRUE(inner->restore());
  EXPECT_EQ(knob(thp_), "madvise");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, SymlinkedPathIsTheSameKnob) {
  std::string link = dir_ + "/link-to-enabled";
  fs::create_symlink(thp_, link);
  auto a = KnobGuard::set(thp_, "always");
  auto b = KnobGuard::set(link, "never");
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->restore());
  ASSERT_TRUE(b->restore());
  EXPECT_EQ(knob(thp_), "madvise");
}

// The journal must survive the owner's SIGKILL; the next start restores.
TEST_F(KnobGuardTest, JournalSurvivesSigkillAndNextStartRestores) {
  ChildPipe ready;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    auto a = KnobGuard::set(thp_, "always");
    auto b = KnobGuard::set(thp_, "never");  // nested on the same knob
    auto c = KnobGuard::set(ksm_, "2000");
    ready.send(a && b && c ? 1 : 0);
    for (;;) pause();
  }
  ASSERT_EQ(ready.receive(), 1);
  EXPECT_EQ(knob(thp_), "never");
  EXPECT_EQ(knob(ksm_), "2000");

  // While the owner lives, a start must not touch its knobs.
  auto live = restore_journal({});
  ASSERT_TRUE(live);
  ASSERT_EQ(live->size(), 3u);
  for (const auto& r : *live) EXPECT_EQ(r.action, RestoreAction::kOwnerAlive);
  EXPECT_EQ(knob(thp_), "never");

  kill(child, SIGKILL);
  int status = 0;
  status = reap(child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(knob(thp_), "never");  // nothing ran in the child
  ASSERT_EQ(journal().size(), 3u);

  auto dry = restore_journal({.all = false, .dry_run = true});
  ASSERT_TRUE(dry);
  ASSERT_EQ(dry->size(), 3u);
  for (const auto& r : *dry) EXPECT_EQ(r.action, RestoreAction::kWouldRestore) << r.entry.path;
  EXPECT_EQ(knob(thp_), "never");
  EXPECT_EQ(journal().size(), 3u);

  auto n = restore_journaled_knobs();
  ASSERT_TRUE(n) << n.status().message();
  EXPECT_EQ(*n, 2);  // knobs, not entries
  EXPECT_EQ(knob(thp_), "madvise");
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());

  auto again = restore_journaled_knobs();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0);
}

TEST_F(KnobGuardTest, KnobChangedAfterTheCrashIsLeftAsIs) {
  ChildPipe ready;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    auto a = KnobGuard::set(thp_, "always");
    ready.send(a ? 1 : 0);
    for (;;) pause();
  }
  ASSERT_EQ(ready.receive(), 1);
  kill(child, SIGKILL);
  reap(child);
  spit(thp_, "always madvise [never]\n");  // the admin fixed it by hand, differently
  auto reports = restore_journal({});
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 1u);
  EXPECT_EQ((*reports)[0].action, RestoreAction::kChangedSince);
  EXPECT_EQ((*reports)[0].current, "never");
  EXPECT_EQ(knob(thp_), "never");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, NestedEntriesOfADeadOwnerAreDecidedTogether) {
  ASSERT_TRUE(ensure_state_dir());
  // Outer guard set 'always' (original madvise), inner set 'never' (original
  // always); the inner one was restored, then the owner died before it could
  // drop its journal entry. The knob holds an intermediate value: still ours.
  std::string boot = current_boot_id();
  spit(journal_path(), fmt::format("999999999\t0\t{0}\t1\t{1}\tmadvise\talways\n"
                                   "999999999\t0\t{0}\t2\t{1}\talways\tnever\n",
                                   boot, thp_));
  spit(thp_, "[always] madvise never\n");
  auto reports = restore_journal({});
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 2u);
  EXPECT_EQ((*reports)[0].entry.seq, 2u);  // newest first
  for (const auto& r : *reports) {
    EXPECT_EQ(r.action, RestoreAction::kRestored);
    EXPECT_EQ(r.target, "madvise");
  }
  EXPECT_EQ(knob(thp_), "madvise");
  EXPECT_TRUE(journal().empty());
}

// Issue 14 item 4: after a crash, restore set ksm/run=0 directly where the
// guards unwind through run=2 (unmerge) first, before max_page_sharing.
// The journal of ksm::Tuning: run 0->2, max_page_sharing 256->16,
// pages_to_scan 100->1000, run 2->1.
TEST_F(KnobGuardTest, CrashRestoreReplaysEveryEntryNewestFirstLikeTheGuards) {
  ASSERT_TRUE(ensure_state_dir());
  const std::string run = dir_ + "/run", mps = dir_ + "/max_page_sharing";
  spit(run, "1\n");
  spit(mps, "16\n");
  spit(ksm_, "1000\n");
  std::string boot = current_boot_id();
  spit(journal_path(), fmt::format("999999999\t0\t{0}\t1\t{1}\t0\t2\n"
                                   "999999999\t0\t{0}\t2\t{2}\t256\t16\n"
                                   "999999999\t0\t{0}\t3\t{3}\t100\t1000\n"
                                   "999999999\t0\t{0}\t4\t{1}\t2\t1\n",
                                   boot, run, mps, ksm_));
  auto reports = restore_journal({});
  ASSERT_TRUE(reports) << reports.status().message();
  ASSERT_EQ(reports->size(), 4u);
  std::vector<std::pair<std::string, std::string>> writes;  // in the order made: newest entry first
  for (const auto& r : *reports) {
    EXPECT_EQ(r.action, RestoreAction::kRestored) << r.entry.path;
    writes.emplace_back(fs::path(r.entry.path).filename().string(), r.wrote);
  }
  EXPECT_EQ(writes, (std::vector<std::pair<std::string, std::string>>{
                        {"run", "2"}, {"pages_to_scan", "100"}, {"max_page_sharing", "256"}, {"run", "0"}}));
  EXPECT_EQ(knob(run), "0");
  EXPECT_EQ(knob(mps), "256");
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, EntriesFromAnEarlierBootAreDroppedUntouched) {
  ASSERT_TRUE(ensure_state_dir());
  spit(thp_, "[always] madvise never\n");
  spit(journal_path(), fmt::format("# test\n{}\t0\tsome-other-boot\t1\t{}\tmadvise\talways\n", getpid(), thp_));
  auto reports = restore_journal({});
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 1u);
  EXPECT_EQ((*reports)[0].action, RestoreAction::kOtherBoot);
  EXPECT_EQ(knob(thp_), "always");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, AllRestoresEntriesOfLiveOwners) {
  ASSERT_TRUE(ensure_state_dir());
  // pid 1 is alive; its start time matches only if we read it.
  long long st = process_start_time(1).value_or(0);
  spit(ksm_, "5\n");
  spit(journal_path(), fmt::format("1\t{}\t{}\t1\t{}\t100\t5\n", st, current_boot_id(), ksm_));
  auto skip = restore_journal({});
  ASSERT_TRUE(skip);
  EXPECT_EQ((*skip)[0].action, RestoreAction::kOwnerAlive);
  EXPECT_EQ(knob(ksm_), "5");
  auto all = restore_journal({.all = true, .dry_run = false});
  ASSERT_TRUE(all);
  EXPECT_EQ((*all)[0].action, RestoreAction::kRestored);
  EXPECT_EQ(knob(ksm_), "100");
}

TEST_F(KnobGuardTest, TornJournalLineIsIgnoredAndAppendsStillParse) {
  ASSERT_TRUE(ensure_state_dir());
  // A complete entry of a dead pid, then a write torn by a crash.
  spit(journal_path(), fmt::format("999999999\t0\t{}\t1\t{}\t100\t7\n12345\t0\tab", current_boot_id(), ksm_));
  ASSERT_EQ(journal().size(), 1u);
  auto g = KnobGuard::set(thp_, "always");
  ASSERT_TRUE(g);
  auto j = journal();
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1].original, "madvise");
  spit(ksm_, "7\n");
  auto n = restore_journaled_knobs();  // the dead pid's entry; ours is alive
  ASSERT_TRUE(n) << n.status().message();
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_EQ(journal().size(), 1u);
}

// SIGINT / SIGTERM / SIGHUP to a process holding guards: the handler writes
// every original back at once; the process keeps running (to write partial
// results) until a second identical signal, which kills it.
class KnobGuardSignalTest : public KnobGuardTest, public ::testing::WithParamInterface<int> {};

TEST_P(KnobGuardSignalTest, HandlerRestoresThenSecondSignalKills) {
  const int sig = GetParam();
  ChildPipe ready, after;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    install_signal_handlers();
    auto a = KnobGuard::set(thp_, "always");
    auto b = KnobGuard::set(thp_, "never");
    auto c = KnobGuard::set(ksm_, "3000");
    ready.send(a && b && c ? 1 : 0);
    while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pause() would race the signal
    auto late = KnobGuard::set(ksm_, "1");  // refused once interrupted
    after.send(interrupt_signal() * 10 + (late ? 1 : 0));
    for (;;) pause();  // guards still alive: only the handler restored
  }
  ASSERT_EQ(ready.receive(), 1);
  EXPECT_EQ(knob(thp_), "never");
  EXPECT_EQ(knob(ksm_), "3000");
  kill(child, sig);
  ASSERT_EQ(after.receive(), sig * 10);
  EXPECT_EQ(knob(thp_), "madvise");  // nested: unwound newest first
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_EQ(journal().size(), 3u);   // entries stay until the guards end

  kill(child, sig);
  int status = 0;
  status = reap(child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), sig);

  auto reports = restore_journal({});  // next start: nothing left to do, entries cleared
  ASSERT_TRUE(reports);
  ASSERT_EQ(reports->size(), 3u);
  for (const auto& r : *reports) EXPECT_EQ(r.action, RestoreAction::kAlreadyOriginal) << r.entry.path;
  EXPECT_TRUE(journal().empty());
}

INSTANTIATE_TEST_SUITE_P(Signals, KnobGuardSignalTest, ::testing::Values(SIGINT, SIGTERM, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& i) { return signal_name(i.param).substr(3); });

TEST_F(KnobGuardTest, InterruptedRunFinishesNormallyAndClearsTheJournal) {
  ChildPipe ready;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    install_signal_handlers();
    {
      auto a = KnobGuard::set(ksm_, "42");
      ready.send(a ? 1 : 0);
      while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pause() would race the signal
    }  // the "run loop" ends; guards restore and drop their entries
    _exit(live_guard_count() == 0 ? 130 : 1);
  }
  ASSERT_EQ(ready.receive(), 1);
  kill(child, SIGINT);
  int status = 0;
  status = reap(child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, ExitWithoutUnwindingRestoresViaAtexit) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    auto a = KnobGuard::set(ksm_, "43");
    std::exit(a ? 0 : 1);  // no destructors of locals run
  }
  int status = 0;
  status = reap(child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(knob(ksm_), "100");
  EXPECT_TRUE(journal().empty());
}

TEST_F(KnobGuardTest, ForkedChildNeverRestoresItsParentsGuards) {
  auto g = KnobGuard::set(ksm_, "11");
  ASSERT_TRUE(g);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    // The child's copy of the guard is destroyed by exit(): it must not
    // restore the parent's knob nor drop the parent's journal entry.
    std::exit(0);
  }
  reap(child);
  EXPECT_EQ(knob(ksm_), "11");
  EXPECT_EQ(journal().size(), 1u);
}

}  // namespace
