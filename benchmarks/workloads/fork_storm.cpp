// fork storm: fork + exit + wait of a process with V faulted anonymous VMAs.
// Each VMA costs the kernel an anon_vma + anon_vma_chain clone at fork
// (anon_vma_fork) and their unlinking at exit (unlink_anon_vmas).
#include <fmt/core.h>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/fork_oracle.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/registry.hpp"

namespace rmapbench {
namespace {

enum class Phase { fork_exit_wait, fork_only, exit_only };

int64_t phase_ns(const mm::ForkTimes& t, Phase phase) {
  switch (phase) {
    case Phase::fork_only: return t.fork_ns;
    case Phase::exit_only: return t.exit_ns;
    case Phase::fork_exit_wait: break;
  }
  return t.total_ns;
}

void run(benchmark::State& state, long vmas, Phase phase) {
  if (!mm::within_budget(state, {mm::fixed(1), mm::grows_with("vmas", vmas), mm::grows_with("vmas", vmas, 2)}))
    return;
  auto layout = mm::AnonLayout::create(vmas);
  if (!layout) return fail(state, layout.status().context("fork storm layout").message());
  auto mapped = layout->count_mapped_vmas();
  if (mapped && *mapped != vmas)
    return fail(state, fmt::format("layout has {} VMAs instead of {}: the kernel merged them", *mapped, vmas));
  auto timer = mm::ForkTimer::create();
  if (!timer) return fail(state, timer.status().message());

  // Only exit alone needs the child to stamp its exit; the other figures are
  // timed as a bare loop would time them, and their fork/exit split comes
  // from a separate stamped pass, like the counters.
  const auto stamp = phase == Phase::exit_only ? mm::ForkTimer::ExitStamp::record : mm::ForkTimer::ExitStamp::none;
  int64_t fork_ns = 0, exit_ns = 0;
  for (auto _ : state) {
    auto t = timer->fork_exit_wait(stamp);
    if (!t) {
      fail(state, t.status().message());
      break;
    }
    fork_ns += t->fork_ns;
    exit_ns += t->exit_ns;
    state.SetIterationTime(static_cast<double>(phase_ns(*t, phase)) / 1e9);
  }
  if (failed(state)) return;
  if (stamp == mm::ForkTimer::ExitStamp::none) {
    const long passes = std::min<long>(state.iterations(), 20);
    fork_ns = exit_ns = 0;
    for (long i = 0; i < passes; ++i) {
      auto t = timer->fork_exit_wait(mm::ForkTimer::ExitStamp::record);
      if (!t) return fail(state, t.status().message());
      fork_ns += t->fork_ns;
      exit_ns += t->exit_ns;
    }
    const double scale = static_cast<double>(state.iterations()) / static_cast<double>(passes);
    mm::report_fork_phases(state, static_cast<double>(fork_ns) * scale, static_cast<double>(exit_ns) * scale);
  } else {
    mm::report_fork_phases(state, static_cast<double>(fork_ns), static_cast<double>(exit_ns));
  }

  std::vector<std::string> notes;
  auto counts = mm::count_per_op(std::min<long>(state.iterations(), 20), [&] { return timer->fork_exit_wait(stamp).status(); },
                                 &notes);
  if (!counts) return fail(state, counts.status().message());
  mm::report_op_counts(state, *counts);
  if (Status s = mm::check_fork_isolation(*layout, "fork_storm"); s.failed()) return fail(state, s.message());
  set_notes(state, notes);
}

void register_fork_storm(Registrar& r) {
  for (long vmas : r.sweep("vmas", {1, 64, 1000}, {1, 16, 64, 256, 1000, 4096, 16384})) {
    r.add(fmt::format("fork_storm/fork_exit_wait/vmas:{}", vmas),
          [vmas](benchmark::State& s) { run(s, vmas, Phase::fork_exit_wait); });
    r.add(fmt::format("fork_storm/fork_only/vmas:{}", vmas), [vmas](benchmark::State& s) { run(s, vmas, Phase::fork_only); });
    r.add(fmt::format("fork_storm/exit_only/vmas:{}", vmas), [vmas](benchmark::State& s) { run(s, vmas, Phase::exit_only); });
  }
}

}  // namespace

RMAPBENCH_WORKLOAD(fork_storm,
                   {.name = "fork_storm",
                    .kernel_path = "fork: dup_mmap -> anon_vma_fork (anon_vma + anon_vma_chain per VMA); "
                                   "exit: exit_mmap -> free_pgtables -> unlink_anon_vmas",
                    .description = "A parent with V faulted private anonymous VMAs (kept unmergeable, each with its own "
                                   "anon_vma) forks a child that exits at once; the parent waits. Timed: fork+exit+wait, "
                                   "fork() alone, and exit alone (child's last instruction to waitpid's return). "
                                   "Oracle: a child sees every byte of the parent's data, its writes stay private.",
                    .parameters = "vmas: faulted anonymous VMAs (quick 1,64,1000; full 1..16384)",
                    .needs = {},
                    .register_benchmarks = register_fork_storm});

}  // namespace rmapbench
