// RunLock: one run per host, the holder named, stale locks taken over.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>

#include "test_support.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_guard.hpp"
#include "kernels/safety/run_lock.hpp"

namespace fs = std::filesystem;
using namespace rmapbench;
using namespace rmapbench::safety;

using rmapbench::testing::slurp;
using rmapbench::testing::ChildPipe;
using rmapbench::testing::dead_within;
namespace {

class RunLockTest : public ::testing::Test {
 protected:
  rmapbench::testing::TempStateDir tmp_{"rmapbench-lock"};
  std::string dir_ = tmp_.path;
};

TEST_F(RunLockTest, AcquireRecordsTheHolderAndReleaseClearsIt) {
  {
    auto lock = RunLock::acquire("rmapbench run --profile full");
    ASSERT_TRUE(lock) << lock.status().message();
    EXPECT_TRUE(lock->note().empty());
    EXPECT_EQ(lock->path(), dir_ + "/state/run.lock");
    std::string rec = slurp(lock->path());
    EXPECT_NE(rec.find(fmt::format("pid={}\n", getpid())), std::string::npos) << rec;
    EXPECT_NE(rec.find("command=rmapbench run --profile full\n"), std::string::npos) << rec;
    auto holder = RunLock::current_holder();
    ASSERT_TRUE(holder);
    EXPECT_EQ(holder->pid, getpid());
    EXPECT_EQ(holder->start_time, process_start_time(getpid()).value_or(-1));
  }
  EXPECT_FALSE(RunLock::current_holder());
  EXPECT_EQ(slurp(dir_ + "/state/run.lock"), "");
  auto again = RunLock::acquire("rmapbench run");
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_TRUE(again->note().empty()) << again->note();  // released cleanly: not stale
}

TEST_F(RunLockTest, SecondAcquireFailsNamingTheHolder) {
  auto lock = RunLock::acquire("rmapbench run --profile full");
  ASSERT_TRUE(lock);
  // In this process...
  auto second = RunLock::acquire("rmapbench run");
  ASSERT_FALSE(second);
  std::string expected = fmt::format("another rmapbench run holds {}: pid {} (rmapbench run --profile full), started ",
                                     lock->path(), getpid());
  EXPECT_EQ(second.status().message().rfind(expected, 0), 0u) << second.status().message();
  // ...and in another one.
  ChildPipe msg;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    auto l = RunLock::acquire("rmapbench run --profile quick");
    msg.send_text(l ? "acquired!" : l.status().message());
    _exit(0);
  }
  std::string m = msg.receive_text();
  waitpid(child, nullptr, 0);
  EXPECT_EQ(m.rfind(expected, 0), 0u) << m;
  // The start date is today's, in "YYYY-MM-DD HH:MM:SS +ZZZZ".
  std::string date = m.substr(expected.size());
  EXPECT_EQ(date.size(), 25u) << date;
}

TEST_F(RunLockTest, StaleLockOfAKilledRunIsTakenOver) {
  ChildPipe ready;
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    auto l = RunLock::acquire("rmapbench run --profile stale");
    ready.send_text(l ? "ok" : l.status().message());
    for (;;) pause();
  }
  ASSERT_EQ(ready.receive_text(), "ok");
  auto blocked = RunLock::acquire("rmapbench run");
  ASSERT_FALSE(blocked);
  EXPECT_NE(blocked.status().message().find(fmt::format("pid {} (rmapbench run --profile stale)", child)),
            std::string::npos);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  auto lock = RunLock::acquire("rmapbench run");
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_NE(lock->note().find("took over the stale run lock"), std::string::npos) << lock->note();
  EXPECT_NE(lock->note().find(fmt::format("pid {} (rmapbench run --profile stale)", child)), std::string::npos)
      << lock->note();
}

TEST_F(RunLockTest, ChildrenOfTheRunDoNotKeepTheLock) {
  // The holder's children (become_child_of_run) close the lock fd, and die
  // with the holder: after kill -9 of the holder the lock is free at once.
  ChildPipe ready;
  pid_t holder = fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    become_child_of_run();  // dies with the test process
    auto l = RunLock::acquire("rmapbench run --profile kids");
    if (!l) ready.send_text("failed");
    auto kid = fork_child_of_run();
    if (kid && *kid == 0) {
      ready.send_text(std::to_string(getpid()));  // after become_child_of_run() ran
      for (;;) pause();
    }
    if (!kid) ready.send_text("failed");
    for (;;) pause();
  }
  std::string kid_text = ready.receive_text();
  ASSERT_NE(kid_text, "failed");
  pid_t kid = std::stoi(kid_text);
  // The child holds no fd of the lock file.
  std::string lock_file = fs::canonical(dir_ + "/state/run.lock").string();
  bool kid_has_lock_fd = false;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(fmt::format("/proc/{}/fd", kid), ec)) {
    std::error_code ec2;
    if (fs::read_symlink(e.path(), ec2).string() == lock_file) kid_has_lock_fd = true;
  }
  EXPECT_FALSE(kid_has_lock_fd);
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  EXPECT_TRUE(dead_within(kid, std::chrono::milliseconds(1000)));
  auto lock = RunLock::acquire("rmapbench run");
  ASSERT_TRUE(lock) << lock.status().message();
  EXPECT_NE(lock->note().find("stale"), std::string::npos);
}

TEST_F(RunLockTest, ProcessesLeftByADeadHolderAreNamedAsTheCulprits) {
  // A child forked without become_child_of_run() keeps the lock alive after
  // its parent died: the message says so instead of naming a dead pid only.
  ChildPipe ready;
  pid_t holder = fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    become_child_of_run();  // dies with the test process
    auto l = RunLock::acquire("rmapbench run --profile leaky");
    pid_t kid = fork();
    if (kid == 0) {
      for (;;) pause();
    }
    ready.send_text(l ? std::to_string(kid) : "failed");
    for (;;) pause();
  }
  std::string kid_text = ready.receive_text();
  ASSERT_NE(kid_text, "failed");
  pid_t kid = std::stoi(kid_text);
  kill(holder, SIGKILL);
  waitpid(holder, nullptr, 0);
  auto t0 = std::chrono::steady_clock::now();
  auto lock = RunLock::acquire("rmapbench run");
  auto waited = std::chrono::steady_clock::now() - t0;
  kill(kid, SIGKILL);
  ASSERT_FALSE(lock);
  EXPECT_NE(lock.status().message().find("that process is gone, but processes it started still hold the lock"),
            std::string::npos)
      << lock.status().message();
  EXPECT_GE(waited, std::chrono::milliseconds(1500));  // gave the stragglers time to die
  EXPECT_TRUE(dead_within(kid, std::chrono::milliseconds(1000)));
  auto after = RunLock::acquire("rmapbench run");
  EXPECT_TRUE(after) << after.status().message();
}

TEST(CommandLine, IsThisProcessArgv) {
  std::string c = current_command_line();
  EXPECT_FALSE(c.empty());
  std::string first = c.substr(0, c.find(' '));
  EXPECT_EQ(first.find('/'), std::string::npos) << c;  // argv[0] as a basename
  EXPECT_EQ(c.find('\n'), std::string::npos);
}

}  // namespace
