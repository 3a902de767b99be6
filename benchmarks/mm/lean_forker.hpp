// The lean forker seen from the benchmark: starts rmapbench-forker
// (benchmarks/forker/forker.cpp), a static program embedded in this binary
// that holds nothing but a layout of V faulted anonymous VMAs, and asks it
// for timed forks, bare loops and the fork-isolation oracle. Forks timed
// there cost what the kernel's fork costs for that layout, not what forking
// this process (its libraries, heap and threads' stacks) costs.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "benchmarks/forker/protocol.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm {

// How the forker is started. From an in-memory copy (memfd_create +
// fexecve) first; where that is refused (vm.memfd_noexec, a noexec policy)
// from the file rmapbench-forker next to /proc/self/exe. Tests force the
// file with RMAPBENCH_TEST_FORKER_FROM=file.
inline constexpr const char* kForkerFile = "rmapbench-forker";
inline constexpr const char* kForkerFromEnv = "RMAPBENCH_TEST_FORKER_FROM";

class LeanForker {
 public:
  // Starts the forker and has it build its layout of `vmas` one-page VMAs.
  // Fails with cannot_start() true when this host runs it neither way
  // (callers skip, saying why).
  static Result<LeanForker> start(long vmas);
  static bool cannot_start(const Status& s) { return s.failed() && s.err() == ENOEXEC; }

  LeanForker(LeanForker&&) noexcept;
  LeanForker& operator=(LeanForker&&) = delete;
  ~LeanForker();  // asks it to quit, kills it if it does not, reaps it

  pid_t pid() const { return pid_; }
  // Mappings /proc/self/maps shows inside the forker's layout (V unless the
  // kernel merged some) and in the whole forker (-1: unreadable).
  long layout_vmas() const { return layout_vmas_; }
  long process_vmas() const { return process_vmas_; }

  struct Batch {
    long forks = 0;
    ForkTimes sums;                          // summed over the forks (exit_ns 0 without the stamp)
    int64_t sys_ns = 0;                      // the forker's and its children's system time over them
    std::vector<int64_t> counter_increases;  // per counter fd passed; -1: the forker could not read it
  };
  // `forks` fork + _exit + waitpid in the forker. `counter_fds` (perf
  // counters on the forker's pid, at most forker::kMaxPassedFds) are read by
  // the forker right before and after the forks.
  Result<Batch> fork_exit_wait(long forks, ForkTimer::ExitStamp stamp, const std::vector<int>& counter_fds = {});
  // The same forks as a developer's bare loop would time them (fork() to
  // waitpid()'s return, nothing else): total_ns only. `pause_us`: an
  // untimed sleep before each fork (0: back to back).
  Result<Batch> bare_loop(long forks, long pause_us = 0);
  // A child of the forker sees all of the layout's data and its writes stay
  // private. `corrupt_for_test` flips a parent byte first (RMAPBENCH_TEST_CORRUPT).
  Status check_fork_isolation(bool corrupt_for_test);

 private:
  LeanForker() = default;
  Result<forker::Message> call(const forker::Message& request, const std::vector<int>& fds = {});
  Result<forker::Message> receive();
  Result<Batch> batch_reply(const Result<forker::Message>& reply, long forks, size_t counters);
  pid_t pid_ = -1;
  int socket_ = -1;
  long layout_vmas_ = -1;
  long process_vmas_ = -1;
};

// The reply's `error` parts as a Status, worded as the benchmark process
// words the same failures (fork_failure, classify_wait_status).
Status status_of_error_reply(const forker::Message& reply);

}  // namespace rmapbench::mm
