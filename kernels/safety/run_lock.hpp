// One rmapbench run at a time per host: runs change global knobs (THP, KSM)
// and would fight over them.
//
// The lock is flock(2) on state_dir()/run.lock, so it is released by the
// kernel however the holder dies; the file holds who has it (pid, start
// time, start date, command line) for the message a second run prints.
// A lock file still naming a dead holder is "stale" and simply taken over.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "kernels/status.hpp"

namespace rmapbench::safety {

class RunLock {
 public:
  struct Holder {
    pid_t pid = 0;
    long long start_time = 0;  // ticks after boot (/proc/PID/stat), against pid reuse
    std::string started;       // "2026-05-01 12:00:00 +0000"
    std::string command;       // "rmapbench run --profile full"
    // "pid 1234 (rmapbench run --profile full), started 2026-05-01 12:00:00 +0000"
    std::string describe() const;
  };

  // Takes the lock for this process, recording our command line (from
  // /proc/self/cmdline). Fails when another live process holds it:
  //   "another rmapbench run holds /run/rmapbench/run.lock: pid 1234
  //    (rmapbench run --profile full), started 2026-..."
  // The caller exits 2 (kExitUsage). A stale lock is taken over and note()
  // says so. Children that call become_child_of_run() do not keep the lock.
  static Result<RunLock> acquire();
  static Result<RunLock> acquire(const std::string& command);

  RunLock(RunLock&&) noexcept;
  RunLock& operator=(RunLock&&) noexcept;
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;
  ~RunLock();  // clears the holder record and releases the lock

  const std::string& path() const { return path_; }
  // Non-empty after taking over a stale lock: "took over the stale run lock
  // /run/rmapbench/run.lock of pid 1234 (...), started ..., which is gone".
  const std::string& note() const { return note_; }

  // state_dir()/run.lock
  static std::string lock_path();
  // Who holds the lock now (nullopt: nobody). Does not take it.
  static std::optional<Holder> current_holder();

 private:
  RunLock(int fd, pid_t owner, std::string path, std::string note)
      : fd_(fd), owner_(owner), path_(std::move(path)), note_(std::move(note)) {}
  void release();
  int fd_ = -1;
  pid_t owner_ = 0;
  std::string path_;
  std::string note_;
};

// argv of this process joined for humans: "rmapbench run --profile full".
std::string current_command_line();

}  // namespace rmapbench::safety
