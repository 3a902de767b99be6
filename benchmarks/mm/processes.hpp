// Processes a workload forks: the timed fork primitive, groups of children
// that hold mappings (sharers), and agents (a descendant, possibly several
// forks deep, that performs operations on request and reports figures).
// Every child dies with its parent (PR_SET_PDEATHSIG) and is reaped by the
// destructor of whatever owns it.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "benchmarks/mm/fork_timing.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm {

// The child does nothing but, if asked, record when it exits, so the figure
// is the kernel's fork/exit work plus one wakeup, as in a bare C loop.
class ForkTimer {
 public:
  // Whether the child stamps its exit time, which splits off exit_ns. The
  // stamp costs the child page faults (the vDSO, the shared page) and its
  // exit their unmapping, work a bare loop does not do; fork+exit+wait
  // figures are timed without it.
  enum class ExitStamp { none, record };

  static Result<ForkTimer> create();  // maps the shared page the child stamps
  ForkTimer(ForkTimer&&) noexcept;
  ForkTimer& operator=(ForkTimer&&) = delete;
  ~ForkTimer();
  Result<ForkTimes> fork_exit_wait(ExitStamp stamp = ExitStamp::record);  // exit_ns is 0 without the stamp

 private:
  explicit ForkTimer(volatile int64_t* stamp) : child_exit_stamp_(stamp) {}
  volatile int64_t* child_exit_stamp_ = nullptr;
};

// Reports the fork and exit phases summed over the iterations as per-iteration
// counters fork_us and exit_us.
void report_fork_phases(benchmark::State& state, double fork_ns_sum, double exit_ns_sum);

// Describes a failed fork precisely: EAGAIN names RLIMIT_NPROC and the
// threads-max limits, ENOMEM the memory situation.
Status fork_failure(int err, const std::string& what);

// N children that hold the parent's mappings while something is measured.
// Each runs `body` right after fork (e.g. unmap all but its share), then
// blocks. check() makes every child run `check` (e.g. verify its data) and
// report; release() lets them exit (and runs check() first if it was not
// called, so a check is never skipped), then reaps them.
class ChildGroup {
 public:
  using Body = std::function<Status(long index)>;
  // Returns once every child has finished `body` (or failed it).
  static Result<ChildGroup> spawn(long count, Body body, Body check = {});
  ChildGroup(ChildGroup&&) noexcept;
  ChildGroup& operator=(ChildGroup&&) = delete;
  ~ChildGroup();  // kills and reaps whatever is left
  long size() const { return static_cast<long>(pids_.size()); }
  const std::vector<pid_t>& pids() const { return pids_; }
  // Every child runs `check`; the first failure is returned. Children stay.
  Status check();
  // Children exit and are reaped; the first failure (of check or exit) is
  // returned. Time this to time the children's exit alone.
  Status release();

 private:
  ChildGroup() = default;
  void kill_all();
  std::vector<pid_t> pids_;
  Status collect_messages(Status first);
  int check_fd_ = -1;    // write end: one byte per child starts its check
  int checked_fd_ = -1;  // read end: one status byte per child after its check
  int exit_fd_ = -1;     // write end: closing it lets the children exit
  int report_fd_ = -1;   // read end of the children's messages
  bool checked_ = false;
  long long oom_kills_before_ = -1;  // vmstat oom_kill at spawn, to name the OOM killer
};

struct AgentRequest {
  int op = 0;
  long arg = 0;
};
struct AgentReply {
  int failed = 0;  // non-zero: message says why; 1 + the Status::Kind of the failure
  double values[8] = {};
  char message[384] = {};
};

// A process `depth` forks below us (1 = our child, D = a chain of D forks;
// every process in the chain keeps its copy of our mappings, the
// fork-of-fork anon_vma hierarchy). In the deepest one `setup` runs once,
// then `handler` serves each request.
class Agent {
 public:
  using Setup = std::function<Status()>;
  using Handler = std::function<AgentReply(const AgentRequest&)>;
  static Result<Agent> spawn(int depth, Setup setup, Handler handler);
  Agent(Agent&&) noexcept;
  Agent& operator=(Agent&&) = delete;
  ~Agent();  // stops the chain and reaps it
  Result<AgentReply> call(const AgentRequest& request);
  // call() in two halves, so several agents can work at the same time.
  Status send(const AgentRequest& request);
  Result<AgentReply> receive();
  pid_t pid() const { return pid_; }  // our direct child (top of the chain)
  // Every process of the chain, our child first, the one serving requests
  // last: they all map what we mapped before spawn(), for oracles by pid.
  const std::vector<pid_t>& chain() const { return chain_; }

 private:
  Agent() = default;
  pid_t pid_ = -1;
  std::vector<pid_t> chain_;
  int request_fd_ = -1;
  int reply_fd_ = -1;
};

AgentReply reply_ok(std::initializer_list<double> values = {});
AgentReply reply_error(const std::string& message);
// A failure with its kind (a skip stays a skip in the caller), or ok.
AgentReply reply_status(const Status& s);

// Test hook for oracles: when RMAPBENCH_TEST_CORRUPT names a workload, that
// workload corrupts one byte in one sharer so its oracle must report it.
bool test_corruption_requested(const std::string& workload);

}  // namespace rmapbench::mm
