// fork storm: fork + exit + wait of a process with V faulted anonymous VMAs.
// Each VMA costs the kernel an anon_vma + anon_vma_chain clone at fork
// (anon_vma_fork) and their unlinking at exit (unlink_anon_vmas).
//
// The forks are timed in a lean process (benchmarks/forker) that holds only
// the layout: forking this process would also copy its own mappings (a dozen
// shared libraries, heap, stacks), about half of a fork's cost at V = 1.
#include <fmt/core.h>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/lean_forker.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/harness/registry.hpp"

namespace rmapbench {
namespace {

RMAPBENCH_METRIC(kForkerVmas, {"forker_vmas", "mappings", Better::lower, MetricKind::exact,
                               "mappings of the lean process the forks are timed from (its layout's V and its own few)"});

// Forks in each of the two untimed passes: the stamped one that splits fork
// from exit, and the one the per-operation counters count. Twenty average
// out a stray wakeup and still cost well under a second at 16384 VMAs
// (about 30 ms a fork there).
constexpr long kSampledForks = 20;

enum class Phase { fork_exit_wait, fork_only, exit_only };

int64_t phase_ns(const mm::ForkTimes& t, Phase phase) {
  switch (phase) {
    case Phase::fork_only: return t.fork_ns;
    case Phase::exit_only: return t.exit_ns;
    case Phase::fork_exit_wait: break;
  }
  return t.total_ns;
}

// The counters count the forker and, inherited, its children; the forker
// reads them right around its forks, so nothing else lands in the counts.
Result<mm::OpCounts> count_forker_per_op(mm::LeanForker& forker, long forks, mm::ForkTimer::ExitStamp stamp,
                                         std::vector<std::string>* notes) {
  mm::OpCounterSet set = mm::OpCounterSet::open(forker.pid(), notes);
  std::vector<int> fds;
  for (const auto& c : set.counters) fds.push_back(c.fd());
  auto batch = forker.fork_exit_wait(forks, stamp, fds);
  if (!batch) return batch.status();
  mm::OpCounts counts;
  counts.sys_us = static_cast<double>(batch->sys_ns) / 1e3 / static_cast<double>(forks);
  for (size_t i = 0; i < set.counters.size(); ++i) {
    if (batch->counter_increases[i] >= 0)
      set.assign(counts, i, static_cast<uint64_t>(batch->counter_increases[i]), forks);
    else
      notes->push_back(fmt::format("perf counter {}: the lean forker could not read it", set.counters[i].spec().name));
  }
  return counts;
}

void run(benchmark::State& state, long vmas, Phase phase) {
  // Processes: the forker and its child.
  if (!mm::within_budget(state, {mm::fixed(2), mm::grows_with("vmas", vmas), mm::grows_with("vmas", vmas, 2)}))
    return;
  auto forker = mm::LeanForker::start(vmas);
  if (!forker) {
    if (mm::LeanForker::cannot_start(forker.status())) return skip(state, forker.status().message());
    return fail(state, forker.status().context("fork storm layout").message());
  }
  if (forker->layout_vmas() >= 0 && forker->layout_vmas() != vmas)
    return fail(state, fmt::format("layout has {} VMAs instead of {}: the kernel merged them", forker->layout_vmas(), vmas));

  // Only exit alone needs the child to stamp its exit; the other figures are
  // timed as a bare loop would time them, and their fork/exit split comes
  // from a separate stamped pass, like the counters.
  const auto stamp = phase == Phase::exit_only ? mm::ForkTimer::ExitStamp::record : mm::ForkTimer::ExitStamp::none;
  int64_t fork_ns = 0, exit_ns = 0;
  for (auto _ : state) {
    auto t = forker->fork_exit_wait(1, stamp);
    if (!t) {
      fail(state, t.status().message());
      break;
    }
    fork_ns += t->sums.fork_ns;
    exit_ns += t->sums.exit_ns;
    state.SetIterationTime(static_cast<double>(phase_ns(t->sums, phase)) / 1e9);
  }
  if (failed(state)) return;
  const long sampled = std::min<long>(state.iterations(), kSampledForks);
  if (stamp == mm::ForkTimer::ExitStamp::none) {
    auto t = forker->fork_exit_wait(sampled, mm::ForkTimer::ExitStamp::record);
    if (!t) return fail(state, t.status().message());
    const double scale = static_cast<double>(state.iterations()) / static_cast<double>(sampled);
    mm::report_fork_phases(state, static_cast<double>(t->sums.fork_ns) * scale,
                           static_cast<double>(t->sums.exit_ns) * scale);
  } else {
    mm::report_fork_phases(state, static_cast<double>(fork_ns), static_cast<double>(exit_ns));
  }

  std::vector<std::string> notes;
  auto counts = count_forker_per_op(*forker, sampled, stamp, &notes);
  if (!counts) return fail(state, counts.status().message());
  mm::report_op_counts(state, *counts);
  if (Status s = forker->check_fork_isolation(mm::test_corruption_requested("fork_storm")); s.failed())
    return fail(state, s.message());
  if (forker->process_vmas() >= 0) {
    report_metric(state, kForkerVmas, static_cast<double>(forker->process_vmas()));
    notes.push_back(fmt::format("forks timed from a lean process with {} mappings", forker->process_vmas()));
  }
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
                                   "anon_vma) forks a child that exits at once; the parent waits. The parent is a lean "
                                   "static process (rmapbench-forker) holding only that layout, so the figures are the "
                                   "kernel's and not the benchmark process's. Timed: fork+exit+wait, "
                                   "fork() alone, and exit alone (child's last instruction to waitpid's return).",
                    .oracle = "a child sees every byte of the parent's data, its writes stay private.",
                    .parameters = "vmas: faulted anonymous VMAs (quick 1,64,1000; full 1..16384)",
                    .needs = {},
                    .register_benchmarks = register_fork_storm});

}  // namespace rmapbench
