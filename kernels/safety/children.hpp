// Process safety for workloads: no child outlives the run.
//
//  - Every forked child calls become_child_of_run() first: it dies with its
//    parent (PR_SET_PDEATHSIG SIGKILL), so `kill -9` of the runner takes a
//    whole fork chain down level by level.
//  - One ProcessGroupReaper per run: the run leads its own process group (so
//    signalling "our group" never reaches the shell's), becomes the child
//    subreaper, and on exit or signal kills and reaps every descendant.
//  - wait_with_timeout()/Watchdog bound how long a workload may take.
//  - ChildExit tells "exited 3" from "killed by SIGSEGV" from "killed by
//    SIGKILL (OOM killer?)" for error messages.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "kernels/status.hpp"

namespace rmapbench::safety {

// Exit code of a child whose parent had already died before it could arm
// PR_SET_PDEATHSIG (so it would have been orphaned).
inline constexpr int kOrphanedChildExitCode = 125;

// Call first thing in a child after fork(). Arms PR_SET_PDEATHSIG(SIGKILL),
// then _exit(kOrphanedChildExitCode) if the parent already died (getppid()
// differs from the pid that forked us, recorded by a pthread_atfork handler).
// Also resets SIGINT/SIGTERM/SIGHUP handlers to the default (a child never
// runs the runner's knob-restoring handler) and closes fds registered with
// close_in_children() (the run lock). Async-signal-safe: fine in a child of
// a multi-threaded parent.
// Note: PDEATHSIG fires when the *thread* that forked exits; fork from a
// thread that outlives the child.
void become_child_of_run();
// Same, with the expected parent given explicitly (for clone()/vfork() users
// that bypass pthread_atfork).
void become_child_of_run(pid_t expected_parent);

// fork() + become_child_of_run() in the child. Returns the pid (0 in the child)
// or the fork error (EAGAIN: process limits; ENOMEM).
Result<pid_t> fork_child_of_run();

// fds that become_child_of_run() closes in children (at most 8; -1 ignored).
void close_in_children(int fd);
void forget_close_in_children(int fd);

// Kills every process of the run except ourselves: our direct children and,
// when we lead our own process group, every member of it (a grandchild
// whose parent is gone). Never signals another process group. Returns how
// many processes were signalled. Async-signal-safe (raw getdents64 over
// /proc, no allocation): the signal handlers call it.
int kill_run_children(int sig);

// One per run. On creation: become the leader of our own process group when
// we are not one yet (unless that would take Ctrl-C away from us: when our
// current group is a terminal's foreground group we stay, and children are
// found by parentage instead), and become the child subreaper so orphaned
// descendants are reparented to us and can be reaped. On destruction (or
// shutdown()): kill and reap everything left.
class ProcessGroupReaper {
 public:
  struct Options {
    bool own_group = true;   // setpgid(0, 0) when not a group leader (see above)
    bool subreaper = true;   // PR_SET_CHILD_SUBREAPER while alive
  };
  static Result<ProcessGroupReaper> create();
  static Result<ProcessGroupReaper> create(Options options);
  ProcessGroupReaper(ProcessGroupReaper&&) noexcept;
  ProcessGroupReaper& operator=(ProcessGroupReaper&&) = delete;
  ProcessGroupReaper(const ProcessGroupReaper&) = delete;
  ProcessGroupReaper& operator=(const ProcessGroupReaper&) = delete;
  ~ProcessGroupReaper();

  // SIGKILLs every descendant and reaps it, for at most `grace`. The error
  // names the survivors (e.g. stuck in D state in the kernel).
  Status shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

  pid_t pgid() const { return pgid_; }
  bool leads_group() const { return leads_group_; }
  // How the group was set up ("led our own process group 1234", "stayed in
  // the terminal's foreground group ..."), for verbose output.
  const std::string& note() const { return note_; }

 private:
  ProcessGroupReaper() = default;
  bool active_ = false;
  bool leads_group_ = false;
  bool restore_subreaper_ = false;
  int previous_subreaper_ = 0;
  pid_t pgid_ = 0;
  std::string note_;
};

// How a child ended.
struct ChildExit {
  pid_t pid = -1;
  int status = 0;             // raw wait status
  bool timed_out = false;     // we killed it when its time was up
  std::chrono::milliseconds timeout{0};
  // vmstat oom_kill grew by this much while the child lived (-1: unknown,
  // no snapshot from before it started was given).
  long long oom_kills_meanwhile = -1;

  bool exited() const;
  int exit_code() const;      // -1 unless exited()
  bool signaled() const;
  int term_signal() const;    // 0 unless signaled()
  bool core_dumped() const;
  bool success() const { return exited() && exit_code() == 0; }
  // "exited with status 3", "killed by SIGSEGV (core dumped)",
  // "killed by SIGKILL (OOM killer?)", "killed by SIGKILL: the OOM killer
  // killed 1 process meanwhile (see dmesg)", "timed out after 5000 ms and was
  // killed (SIGKILL)".
  std::string describe() const;
  // OK on success, else "<who> (pid N) <describe()>".
  Status as_status(const std::string& who) const;
};

ChildExit classify_wait_status(pid_t pid, int status, long long oom_kills_before = -1);

// /proc/vmstat oom_kill (every OOM kill, global or memcg), if readable.
std::optional<long long> oom_kill_count();

// Waits for `pid` (our child) until `timeout` passes, then SIGKILLs it and
// reaps it. Pass oom_kill_count() taken before the fork to get a definite
// OOM verdict for a SIGKILLed child. Errors: waitpid failures, or a child
// that does not die within 5 s of SIGKILL (stuck in the kernel).
Result<ChildExit> wait_with_timeout(pid_t pid, std::chrono::milliseconds timeout,
                                    std::optional<long long> oom_kills_before = std::nullopt);
Result<ChildExit> wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline,
                             std::optional<long long> oom_kills_before = std::nullopt);

// Per-workload watchdog: when `timeout` passes before destruction (or
// cancel()), it runs `on_expire` on its own thread: by default
// kill_run_children(SIGKILL), which makes every wait of the workload return.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::milliseconds timeout, std::function<void()> on_expire = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  void cancel();
  bool fired() const { return fired_.load(); }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  std::chrono::milliseconds timeout_;
  std::function<void()> on_expire_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;
};

// Process identity, robust against pid reuse: the start time (clock ticks
// after boot, field 22 of /proc/PID/stat).
std::optional<long long> process_start_time(pid_t pid);
// Alive and, when start_time != 0, the same process (zombies count as dead).
bool process_alive(pid_t pid, long long start_time = 0);
// /proc/sys/kernel/random/boot_id, or "" when unreadable.
std::string current_boot_id();
// "SIGKILL" for 9.
std::string signal_name(int sig);

}  // namespace rmapbench::safety
