// The fork timing loop run by an agent: a descendant `depth` forks below the
// benchmark process (fork-of-fork hierarchy), optionally after mapping and
// faulting new VMAs of its own.
#pragma once

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/processes.hpp"

namespace rmapbench::mm {

enum RemoteForkOp : int {
  kRemoteForkExitWait = 1,  // reply: total_ns, fork_ns, exit_ns
  kRemoteCountPerOp = 2,    // arg: ops; reply: page_faults, context_switches, cpu_migrations, sys_us (-1: absent)
  kRemoteCheck = 3,         // inherited data intact, new VMAs fork-isolated
};

// `inherited` is the caller's layout (the agent checks it is intact there).
Result<Agent> spawn_fork_agent(int depth, long new_vmas, const AnonLayout* inherited, const std::string& workload);

// The benchmark loop against such an agent: times `phase` (0 total, 1 fork,
// 2 exit) per iteration, then the counting pass and the oracle. Reports
// failures through the state.
void run_remote_fork_loop(benchmark::State& state, Agent& agent, int phase);

}  // namespace rmapbench::mm
