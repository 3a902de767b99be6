// The timed fork primitive in plain system calls: shared by ForkTimer (in
// the benchmark process) and the lean forker (benchmarks/forker), which
// must not pull in the suite's libraries.
#pragma once

#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace rmapbench::mm {

inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One fork + child _exit(0) + waitpid, split into its phases (ns).
struct ForkTimes {
  int64_t fork_ns = 0;       // fork() in the parent: dup_mmap, anon_vma_fork
  int64_t exit_ns = 0;       // from the child's last instruction to waitpid's return: exit_mmap + reap
  int64_t total_ns = 0;      // fork() call to waitpid() return
};

struct TimedFork {
  enum class Outcome { ok, fork_failed, child_failed } outcome = Outcome::ok;
  int fork_errno = 0;   // fork_failed
  pid_t pid = -1;       // child_failed: its pid and wait status
  int wait_status = 0;
  ForkTimes times;
};

// The child does nothing but, when `exit_stamp` is given, record there when
// it exits (a MAP_SHARED page), so the figure is the kernel's fork/exit work
// plus one wakeup, as in a bare C loop. Without a stamp exit_ns is 0.
inline TimedFork timed_fork_exit_wait(volatile int64_t* exit_stamp) {
  TimedFork r;
  const int64_t start = monotonic_ns();
  const pid_t pid = fork();
  if (pid == 0) {
    if (exit_stamp) *exit_stamp = monotonic_ns();
    _exit(0);
  }
  const int64_t forked = monotonic_ns();
  if (pid < 0) {
    r.outcome = TimedFork::Outcome::fork_failed;
    r.fork_errno = errno;
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int64_t reaped = monotonic_ns();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    r.outcome = TimedFork::Outcome::child_failed;
    r.pid = pid;
    r.wait_status = status;
    return r;
  }
  r.times.fork_ns = forked - start;
  r.times.exit_ns = exit_stamp ? reaped - *exit_stamp : 0;
  r.times.total_ns = reaped - start;
  return r;
}

// The fork-isolation oracle's findings, worded alike wherever it runs (the
// benchmark process, an agent, the lean forker).
namespace fork_isolation {
inline constexpr const char* kChildLacksParentData = "child does not see the parent's data after fork";
inline constexpr const char* kChildCopyWrong = "child's own COW copy is wrong";
inline constexpr const char* kParentDataChanged = "parent's data changed after the child's writes (COW isolation broken)";
}  // namespace fork_isolation

}  // namespace rmapbench::mm
