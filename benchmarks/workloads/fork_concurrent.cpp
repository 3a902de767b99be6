// concurrent forkers: P processes, each pinned to its own CPU and owning V
// faulted VMAs, fork+exit+wait at the same time - contention on the shared
// slab caches (anon_vma, anon_vma_chain, vm_area_struct) and mm locks.
#include <fmt/core.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>

#include "benchmarks/harness/agents.hpp"
#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/cpu_pinning.hpp"
#include "benchmarks/mm/processes.hpp"

namespace rmapbench {
namespace {

constexpr long kVmas = 100;
constexpr long kForksPerRound = 4;

RMAPBENCH_METRIC(kForksPerSec, {"forks_per_sec", "forks/s", Better::higher, MetricKind::statistical,
                                "fork+exit+wait completed per second by all forkers together"});

enum ForkerOp { kRound = 1, kVerify = 2 };

struct Forker {
  std::optional<mm::AnonLayout> layout;
  std::optional<mm::ForkTimer> timer;
};

// `forks` fork+exit+wait; when they started and ended.
Result<harness::Figures> fork_round(Forker& f, long forks) {
  const int64_t start = mm::monotonic_ns();
  for (long i = 0; i < forks; ++i)
    if (auto t = f.timer->fork_exit_wait(mm::ForkTimer::ExitStamp::none); !t) return t.status();
  return harness::Figures{double(start), double(mm::monotonic_ns())};
}

Result<harness::Figures> verify(Forker& f, long) {
  if (Status s = f.layout->verify(); s.failed()) return s;
  return harness::Figures{};
}

constexpr harness::Request<Forker> kRequests[] = {{kRound, fork_round}, {kVerify, verify}};

Result<mm::Agent> spawn_forker(long cpu) {
  auto forker = std::make_shared<Forker>();
  auto setup = [=]() -> Status {
    if (Status s = mm::pin_to_cpu(static_cast<int>(cpu)); s.failed()) return s;
    auto l = mm::AnonLayout::create(kVmas, 1, static_cast<uint32_t>(100 + cpu));
    if (!l) return l.status();
    forker->layout.emplace(std::move(*l));
    auto t = mm::ForkTimer::create();
    if (!t) return t.status();
    forker->timer.emplace(std::move(*t));
    return Status::ok();
  };
  auto agent = mm::Agent::spawn(1, setup, harness::serve(forker, kRequests));
  if (!agent) return agent.status().context(fmt::format("forker {}", cpu));
  return agent;
}

void run(benchmark::State& state, int forkers) {
  harness::Run run(state);
  if (!mm::within_budget(state, {mm::grows_with("forkers", forkers, 2), mm::fixed(kVmas),
                                 mm::grows_with("forkers", forkers, kVmas)}))
    return;
  auto agents = harness::AgentGroup::spawn(forkers, spawn_forker);
  if (!agents) return run.stop(agents.status());
  double forks = 0, seconds = 0;
  const bool timed = run.time([&]() -> Result<int64_t> {
    // Each forker starts as soon as it reads its request; the round spans
    // from the first start to the last end, as the forkers saw them.
    auto replies = agents->call_all({kRound, kForksPerRound});
    if (!replies) return replies.status();
    int64_t first = INT64_MAX, last = 0;
    for (const auto& r : *replies) {
      first = std::min(first, static_cast<int64_t>(r.values[0]));
      last = std::max(last, static_cast<int64_t>(r.values[1]));
    }
    forks += static_cast<double>(forkers * kForksPerRound);
    seconds += static_cast<double>(last - first) / 1e9;
    return last - first;
  }, kForksPerRound);
  if (!timed) return;
  report_metric(state, kForksPerSec, seconds > 0 ? forks / seconds : 0);
  if (Status s = agents->call_each(kVerify); s.failed()) return run.stop(s);
}

void register_fork_concurrent(Registrar& r) {
  const long cpus = mm::usable_cpus();
  std::vector<long> all;
  for (long p = 1; p < cpus; p *= 2) all.push_back(p);
  all.push_back(cpus);
  std::vector<long> quick = {1, cpus};
  quick.erase(std::unique(quick.begin(), quick.end()), quick.end());
  for (long p : r.sweep("forkers", quick, all))
    r.add(fmt::format("fork_concurrent/fork_exit_wait/forkers:{}/vmas:{}", p, kVmas),
          [p](benchmark::State& s) { run(s, static_cast<int>(p)); });
}

}  // namespace

RMAPBENCH_WORKLOAD(fork_concurrent,
                   {.name = "fork_concurrent",
                    .kernel_path = "anon_vma_fork / unlink_anon_vmas from P CPUs at once: slab and lock contention",
                    .description = "P forker processes, each pinned to its own CPU (hwloc) and owning 100 faulted "
                                   "VMAs, each run 4 fork+exit+wait per round at the same time. Timed: the round's "
                                   "span divided by 4 (latency of one fork on every CPU at once); forks_per_sec is "
                                   "the aggregate rate.",
                    .oracle = "each forker's data intact afterwards.",
                    .parameters = "forkers: P (quick 1 and all CPUs; full powers of two up to all CPUs)",
                    .needs = {},
                    .register_benchmarks = register_fork_concurrent});

}  // namespace rmapbench
