// Per-operation counters reported by every workload: page faults, context
// switches, CPU migrations (perf software events, children included) and
// system time. They are gathered in a separate counting pass, never inside
// the timed loop: inherited perf events make every fork copy them, which
// would inflate the very latency being measured.
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "kernels/perf/perf_events.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm {

struct OpCounts {
  double page_faults = -1;        // -1: unavailable
  double context_switches = -1;
  double cpu_migrations = -1;
  double sys_us = 0;              // rusage, self + reaped children
};

// The perf counters behind OpCounts, opened on `pid` (0: this process) and,
// inherited, the children it forks from now on; why any could not be opened
// goes to `unavailable`.
struct OpCounterSet {
  std::vector<perf::Counter> counters;
  std::vector<double OpCounts::*> slots;  // the OpCounts field of each counter

  static OpCounterSet open(pid_t pid, std::vector<std::string>* unavailable);
  // Sets counter i's field of `counts` from its increase over `ops` operations.
  void assign(OpCounts& counts, size_t i, uint64_t increase, long ops) const;
};

// Runs `op` `ops` times with the counters on and returns per-operation
// figures plus, in `unavailable`, why any perf counter could not be used.
// `uncounted`, when given, runs with the counters already on but before
// their first reading: a baseline that a workload subtracts from `op`'s time
// is then measured under the same conditions as `op`.
Result<OpCounts> count_per_op(long ops, const std::function<Status()>& op, std::vector<std::string>* unavailable,
                              const std::function<Status()>& uncounted = {});

// Reports the figures as counters; absent ones are left out (their reasons
// are in `unavailable`, which the workload passes to set_notes()).
void report_op_counts(benchmark::State& state, const OpCounts& counts);

}  // namespace rmapbench::mm
