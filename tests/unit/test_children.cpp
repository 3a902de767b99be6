// Process safety: PDEATHSIG chains, the reaper, timeouts, exit descriptions.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "test_support.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/signals.hpp"

using namespace rmapbench;
using namespace rmapbench::safety;
using namespace std::chrono_literals;

using rmapbench::testing::ChildPipe;
using rmapbench::testing::dead_within;
namespace {

int wait_status(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// kill -9 of the middle of a fork chain: every process below it is gone
// within a second (each level dies with its parent).
TEST(Children, PdeathsigChainDiesWithinOneSecond) {
  constexpr int kDepth = 4;
  ChildPipe pids;
  pid_t middle = fork();
  ASSERT_GE(middle, 0);
  if (middle == 0) {
    become_child_of_run();
    for (int level = 1; level < kDepth; ++level) {
      auto kid = fork_child_of_run();
      if (!kid) _exit(2);
      if (*kid != 0) {
        pids.send(*kid);
        for (;;) pause();
      }
    }
    for (;;) pause();  // the deepest one
  }
  std::vector<pid_t> below;
  for (int i = 1; i < kDepth; ++i) {
    long p = pids.receive();
    ASSERT_GT(p, 0);
    below.push_back(static_cast<pid_t>(p));
  }
  for (pid_t p : below) EXPECT_TRUE(process_alive(p));
  auto t0 = std::chrono::steady_clock::now();
  kill(middle, SIGKILL);
  wait_status(middle);
  for (pid_t p : below) EXPECT_TRUE(dead_within(p, 1000ms)) << "pid " << p << " outlived its parent";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
}

TEST(Children, ChildArmsPdeathsigAndDropsTheRunnersHandlers) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    install_signal_handlers();  // as the runner would have
    pid_t k = fork();
    if (k == 0) {
      become_child_of_run();
      int sig = 0;
      prctl(PR_GET_PDEATHSIG, &sig);
      struct sigaction sa;
      sigaction(SIGINT, nullptr, &sa);
      _exit(sig == SIGKILL && sa.sa_handler == SIG_DFL ? 0 : 1);
    }
    _exit(WIFEXITED(wait_status(k)) ? 0 : 9);
  }
  int st = wait_status(child);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

// A child closes the run's registered fds; a pipe it opens next may get one
// of their numbers, and its own child (an agent's agent) must keep it.
TEST(Children, AGrandchildKeepsWhatItsParentOpenedUnderAClosedNumber) {
  int lock[2];
  ASSERT_EQ(pipe(lock), 0);
  close(lock[1]);
  close_in_children(lock[0]);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();
    int p[2];
    if (pipe(p) != 0) _exit(2);
    if (p[0] != lock[0] && p[1] != lock[0]) _exit(3);  // the number was not reused: nothing to check
    const int reused = p[0] == lock[0] ? p[0] : p[1];
    pid_t k = fork();
    if (k == 0) {
      become_child_of_run();
      _exit(fcntl(reused, F_GETFD) == 0 || fcntl(reused, F_GETFD) == FD_CLOEXEC ? 0 : 1);
    }
    const int st = wait_status(k);
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 9);
  }
  const int st = wait_status(child);
  forget_close_in_children(lock[0]);
  close(lock[0]);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0) << "3: the test could not reuse the number; 1: the grandchild closed its parent's pipe";
}

TEST(Children, ChildWhoseParentIsAlreadyGoneExits) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run(1);  // "forked by pid 1": our real parent differs, as after an early parent death
    _exit(0);
  }
  ChildExit e = classify_wait_status(child, wait_status(child));
  EXPECT_EQ(e.exit_code(), kOrphanedChildExitCode);
  EXPECT_NE(e.describe().find("its parent died"), std::string::npos) << e.describe();
}

TEST(Children, TimeoutKillsTheChild) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();
    for (;;) pause();
  }
  auto t0 = std::chrono::steady_clock::now();
  auto e = wait_with_timeout(child, 200ms);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(e) << e.status().message();
  EXPECT_TRUE(e->timed_out);
  EXPECT_EQ(e->term_signal(), SIGKILL);
  EXPECT_FALSE(e->success());
  EXPECT_EQ(e->describe(), "timed out after 200 ms and was killed (SIGKILL)");
  EXPECT_EQ(e->as_status("fork storm child").message(),
            "fork storm child (pid " + std::to_string(child) + ") timed out after 200 ms and was killed (SIGKILL)");
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 2000ms);
  EXPECT_FALSE(process_alive(child));
}

TEST(Children, ExitWithinTheTimeoutIsReportedAsIs) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    std::this_thread::sleep_for(50ms);
    _exit(3);
  }
  auto e = wait_with_timeout(child, 5000ms);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->timed_out);
  EXPECT_EQ(e->exit_code(), 3);
  EXPECT_EQ(e->describe(), "exited with status 3");
}

TEST(Children, WaitingForANonChildIsAnError) {
  auto e = wait_with_timeout(1, 100ms);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.status().err(), ECHILD);
}

TEST(Children, DescribesSignalsAndTheOomKiller) {
  // A SIGKILL we know nothing about: maybe the OOM killer.
  EXPECT_EQ(classify_wait_status(1, SIGKILL).describe(), "killed by SIGKILL (OOM killer?)");
  EXPECT_EQ(classify_wait_status(1, SIGSEGV | 0x80).describe(), "killed by SIGSEGV (core dumped)");
  EXPECT_EQ(classify_wait_status(1, 0).describe(), "exited normally");

  ChildExit oom = classify_wait_status(1, SIGKILL);
  oom.oom_kills_meanwhile = 1;
  EXPECT_EQ(oom.describe(), "killed by SIGKILL: the OOM killer killed 1 process meanwhile (see dmesg)");

  // With a snapshot of vmstat oom_kill from before the child started, a
  // SIGKILL from elsewhere is known not to be the OOM killer.
  auto before = oom_kill_count();
  ASSERT_TRUE(before) << "/proc/vmstat has oom_kill";
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    for (;;) pause();
  }
  kill(child, SIGKILL);
  auto e = wait_with_timeout(child, 5000ms, before);
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->timed_out);
  EXPECT_EQ(e->oom_kills_meanwhile, 0);
  EXPECT_EQ(e->describe(), "killed by SIGKILL (not by the OOM killer: vmstat oom_kill unchanged)");

  child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    signal(SIGUSR1, SIG_DFL);
    raise(SIGUSR1);
    _exit(0);
  }
  e = wait_with_timeout(child, 5000ms);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->describe(), "killed by SIGUSR1");
}

// The reaper runs in a forked "runner" so the test process's own group and
// subreaper state are untouched.
TEST(Children, ReaperKillsAndReapsEveryDescendantOfItsOwnGroupOnly) {
  ChildPipe pids;
  pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    become_child_of_run();  // dies with the test process
    pid_t old_group = getpgrp();
    auto reaper = ProcessGroupReaper::create();
    if (!reaper) _exit(2);
    if (reaper->leads_group() && (getpgrp() != getpid() || getpgrp() == old_group)) _exit(3);
    for (int i = 0; i < 3; ++i) {
      auto kid = fork_child_of_run();
      if (!kid) _exit(4);
      if (*kid == 0) {
        auto grandkid = fork_child_of_run();
        if (grandkid && *grandkid == 0) {
          for (;;) pause();
        }
        if (grandkid) pids.send(*grandkid);
        for (;;) pause();
      }
      pids.send(*kid);
    }
    // A descendant that forgot become_child_of_run() and lost its parent:
    // reparented to us (the subreaper), still ours to kill.
    auto orphan_parent = fork_child_of_run();
    if (orphan_parent && *orphan_parent == 0) {
      pid_t orphan = fork();
      if (orphan == 0) {
        for (;;) pause();
      }
      pids.send(orphan);
      _exit(0);
    }
    if (orphan_parent) wait_status(*orphan_parent);
    std::this_thread::sleep_for(50ms);
    Status st = reaper->shutdown(3000ms);
    _exit(st ? 0 : 5);
  }
  std::vector<pid_t> all;
  for (int i = 0; i < 7; ++i) {
    long p = pids.receive();
    ASSERT_GT(p, 0) << "descendant " << i;
    all.push_back(static_cast<pid_t>(p));
  }
  int st = wait_status(runner);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  for (pid_t p : all) EXPECT_TRUE(dead_within(p, 200ms)) << "pid " << p << " survived the reaper";
  EXPECT_TRUE(process_alive(getpid()));  // the group we came from was left alone
}

TEST(Children, SignalHandlerKillsTheRunsChildren) {
  ChildPipe ready;
  pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    become_child_of_run();  // dies with the test process
    auto reaper = ProcessGroupReaper::create();
    install_signal_handlers();
    std::vector<pid_t> kids;
    for (int i = 0; i < 2; ++i) {
      auto kid = fork_child_of_run();
      if (kid && *kid == 0) {
        for (;;) pause();
      }
      if (kid) kids.push_back(*kid);
    }
    ready.send(1);
    while (!interrupted()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // pause() would race the signal
    // The handler already killed them: the workload's waits return now.
    int killed = 0;
    for (pid_t k : kids) {
      int status = wait_status(k);
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ++killed;
    }
    _exit(killed == 2 && interrupt_signal() == SIGTERM ? 0 : 1);
  }
  ASSERT_EQ(ready.receive(), 1);
  kill(runner, SIGTERM);
  auto e = wait_with_timeout(runner, 5000ms);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->success()) << e->describe();
}

TEST(Children, WatchdogKillsAStuckWorkload) {
  pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    become_child_of_run();  // dies with the test process
    auto kid = fork_child_of_run();
    if (kid && *kid == 0) {
      for (;;) pause();
    }
    if (!kid) _exit(2);
    auto t0 = std::chrono::steady_clock::now();
    bool fired;
    int status;
    {
      Watchdog dog(150ms);
      status = wait_status(*kid);  // would block forever without the watchdog
      fired = dog.fired();
    }
    auto took = std::chrono::steady_clock::now() - t0;
    bool ok = fired && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && took >= 140ms && took < 2000ms;
    // A cancelled watchdog never fires.
    {
      Watchdog quiet(50ms);
      quiet.cancel();
      std::this_thread::sleep_for(100ms);
      ok = ok && !quiet.fired();
    }
    _exit(ok ? 0 : 1);
  }
  auto e = wait_with_timeout(runner, 10000ms);
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->success()) << e->describe();
}

TEST(Children, ProcessIdentity) {
  auto st = process_start_time(getpid());
  ASSERT_TRUE(st);
  EXPECT_TRUE(process_alive(getpid(), *st));
  EXPECT_FALSE(process_alive(getpid(), *st + 1));  // a reused pid is another process
  EXPECT_FALSE(process_alive(0));
  EXPECT_FALSE(current_boot_id().empty());
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
}

}  // namespace

// Issue 14 item 11: a benchmark whose child our own SIGINT/SIGTERM handler
// killed was reported as "killed by SIGKILL (OOM killer?)".
TEST(Children, ASigkillFromTheInterruptHandlerIsNotBlamedOnTheOomKiller) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t runner = fork();
  ASSERT_GE(runner, 0);
  if (runner == 0) {
    close(fds[0]);
    install_signal_handlers();
    raise(SIGTERM);  // the handler: knobs restored, children killed, the run goes on
    std::string d = classify_wait_status(1, SIGKILL).describe();
    (void)!write(fds[1], d.data(), d.size());
    _exit(0);
  }
  close(fds[1]);
  std::string got;
  char buf[256];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(runner, &status, 0);
  EXPECT_EQ(got, "killed by SIGKILL by rmapbench: the run was interrupted by SIGTERM");
}
