// fork depth: fork at the bottom of a fork-of-fork chain. Every level keeps
// the mappings, so each VMA's anon_vma hierarchy grows one level per fork and
// anon_vma_fork / unlink_anon_vmas walk longer chains.
#include <fmt/core.h>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/remote_fork.hpp"
#include "benchmarks/harness/registry.hpp"

namespace rmapbench {
namespace {

constexpr long kVmas = 100;

void run(benchmark::State& state, int depth) {
  if (!mm::within_budget(state, {mm::grows_with("depth", depth, 1, 1), mm::fixed(kVmas), mm::fixed(2 * kVmas)}))
    return;
  auto layout = mm::AnonLayout::create(kVmas);
  if (!layout) return fail(state, layout.status().context("fork depth layout").message());
  auto agent = mm::spawn_fork_agent(depth, 0, &*layout, "fork_depth");
  if (!agent) return fail(state, agent.status().message());
  mm::run_remote_fork_loop(state, *agent, 0);
}

void register_fork_depth(Registrar& r) {
  for (long depth : r.sweep("depth", {1, 4, 16}, {1, 2, 4, 8, 16, 32, 64}))
    r.add(fmt::format("fork_depth/fork_exit_wait/depth:{}/vmas:{}", depth, kVmas),
          [depth](benchmark::State& s) { run(s, static_cast<int>(depth)); });
}

}  // namespace

RMAPBENCH_WORKLOAD(fork_depth,
                   {.name = "fork_depth",
                    .kernel_path = "anon_vma_fork / anon_vma_clone over a deep anon_vma hierarchy; unlink_anon_vmas",
                    .description = "The benchmark process maps 100 faulted anonymous VMAs and forks a chain of D "
                                   "processes (fork of fork), each keeping every mapping. The deepest one times "
                                   "fork+exit+wait of its own child.",
                    .oracle = "the deepest process still reads the original data; a child of it sees the data and its "
                              "writes stay private.",
                    .parameters = "depth: length of the fork chain (quick 1,4,16; full 1..64)",
                    .needs = {},
                    .register_benchmarks = register_fork_depth});

}  // namespace rmapbench
