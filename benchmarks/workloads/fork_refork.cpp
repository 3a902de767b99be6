// fork after new VMAs in a child: a child maps and faults VMAs of its own,
// then forks again - the mix of inherited and fresh anon_vmas that a lazy
// anon_vma allocation scheme treats differently.
#include <fmt/core.h>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/remote_fork.hpp"
#include "benchmarks/harness/registry.hpp"

namespace rmapbench {
namespace {

constexpr long kInheritedVmas = 64;

void run(benchmark::State& state, long new_vmas) {
  if (!mm::within_budget(state, {mm::fixed(2), mm::grows_with("new_vmas", new_vmas, 1, kInheritedVmas),
                                 mm::grows_with("new_vmas", new_vmas, 2, 2 * kInheritedVmas)}))
    return;
  auto layout = mm::AnonLayout::create(kInheritedVmas);
  if (!layout) return fail(state, layout.status().context("inherited layout").message());
  auto agent = mm::spawn_fork_agent(1, new_vmas, &*layout, "fork_refork");
  if (!agent) return fail(state, agent.status().message());
  mm::run_remote_fork_loop(state, *agent, 0);
}

void register_fork_refork(Registrar& r) {
  for (long vmas : r.sweep("new_vmas", {1, 64, 1000}, {1, 16, 64, 256, 1000, 4096}))
    r.add(fmt::format("fork_refork/fork_exit_wait/inherited:{}/new_vmas:{}", kInheritedVmas, vmas),
          [vmas](benchmark::State& s) { run(s, vmas); });
}

}  // namespace

RMAPBENCH_WORKLOAD(fork_refork,
                   {.name = "fork_refork",
                    .kernel_path = "anon_vma_prepare in a forked child, then anon_vma_fork of inherited + own VMAs",
                    .description = "The benchmark process maps 64 faulted VMAs and forks a child; the child maps and "
                                   "faults N new VMAs of its own, then times fork+exit+wait of its own children.",
                    .oracle = "inherited data intact in the child; its own VMAs fork-isolated.",
                    .parameters = "new_vmas: VMAs the child maps before forking (quick 1,64,1000; full 1..4096)",
                    .needs = {},
                    .register_benchmarks = register_fork_refork});

}  // namespace rmapbench
