// The lean forker really runs: its layout, timed forks, counters handed to
// it, the bare loop, the oracle and its test hook, and the file fallback.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "benchmarks/mm/lean_forker.hpp"
#include "benchmarks/mm/op_counters.hpp"

using namespace rmapbench::mm;

TEST(LeanForker, HoldsTheLayoutAndLittleElse) {
  auto forker = LeanForker::start(8);
  ASSERT_TRUE(forker) << forker.status().message();
  EXPECT_EQ(forker->layout_vmas(), 8);
  // The layout, two guards, the stamp page, the static binary's few mappings
  // (text, data, heap, stack, vvar, vdso): far from the suite's ~80.
  EXPECT_GE(forker->process_vmas(), 11);
  EXPECT_LE(forker->process_vmas(), 8 + 20);
  EXPECT_GT(forker->pid(), 0);
}

TEST(LeanForker, TimesForksAndReadsTheCountersItIsGiven) {
  auto forker = LeanForker::start(4);
  ASSERT_TRUE(forker) << forker.status().message();
  auto one = forker->fork_exit_wait(1, ForkTimer::ExitStamp::none);
  ASSERT_TRUE(one) << one.status().message();
  EXPECT_GT(one->sums.total_ns, 0);
  EXPECT_GT(one->sums.fork_ns, 0);
  EXPECT_EQ(one->sums.exit_ns, 0) << "no stamp, no exit figure";

  std::vector<std::string> unavailable;
  OpCounterSet set = OpCounterSet::open(forker->pid(), &unavailable);
  std::vector<int> fds;
  for (const auto& c : set.counters) fds.push_back(c.fd());
  auto stamped = forker->fork_exit_wait(5, ForkTimer::ExitStamp::record, fds);
  ASSERT_TRUE(stamped) << stamped.status().message();
  EXPECT_EQ(stamped->forks, 5);
  EXPECT_GT(stamped->sums.exit_ns, 0);
  EXPECT_GE(stamped->sums.total_ns, stamped->sums.fork_ns);
  ASSERT_EQ(stamped->counter_increases.size(), fds.size());
  for (size_t i = 0; i < fds.size(); ++i) {
    EXPECT_GE(stamped->counter_increases[i], 0) << set.counters[i].spec().name;
    if (set.counters[i].spec().name == "page-faults") {
      EXPECT_GT(stamped->counter_increases[i], 0) << "five stamping children fault";
    }
  }

  auto bare = forker->bare_loop(3);
  ASSERT_TRUE(bare) << bare.status().message();
  EXPECT_GT(bare->sums.total_ns, 0);
}

TEST(LeanForker, OracleHoldsAndItsTestHookMakesItFail) {
  auto forker = LeanForker::start(16);
  ASSERT_TRUE(forker) << forker.status().message();
  rmapbench::Status ok = forker->check_fork_isolation(false);
  EXPECT_FALSE(ok.failed()) << ok.message();
  rmapbench::Status bad = forker->check_fork_isolation(true);
  ASSERT_TRUE(bad.failed());
  EXPECT_NE(bad.message().find("COW isolation broken"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("data mismatch in VMA 0 page 0 byte 17"), std::string::npos) << bad.message();
}

TEST(LeanForker, LayoutFailureComesBackAsItsMessage) {
  auto forker = LeanForker::start(0);
  ASSERT_FALSE(forker);
  EXPECT_NE(forker.status().message().find("at least one VMA"), std::string::npos) << forker.status().message();
  EXPECT_FALSE(LeanForker::cannot_start(forker.status()));
}

// Without the in-memory copy the forker is the file next to this program;
// the unit tests' directory has none, so starting it says why it cannot.
TEST(LeanForker, WithoutAnExecutableCopyItCannotStartAndSaysWhy) {
  setenv(kForkerFromEnv, "file", 1);
  auto forker = LeanForker::start(1);
  unsetenv(kForkerFromEnv);
  ASSERT_FALSE(forker);
  EXPECT_TRUE(LeanForker::cannot_start(forker.status())) << forker.status().message();
  EXPECT_NE(forker.status().message().find("rmapbench-forker"), std::string::npos) << forker.status().message();
}

TEST(LeanForker, DestructorLeavesNoProcess) {
  pid_t pid;
  {
    auto forker = LeanForker::start(2);
    ASSERT_TRUE(forker) << forker.status().message();
    pid = forker->pid();
  }
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}
