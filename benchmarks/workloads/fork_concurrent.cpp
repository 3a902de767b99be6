// concurrent forkers: P processes, each pinned to its own CPU and owning V
// faulted VMAs, fork+exit+wait at the same time - contention on the shared
// slab caches (anon_vma, anon_vma_chain, vm_area_struct) and mm locks.
#include <fmt/core.h>

#include <algorithm>
#include <memory>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/cpu_pinning.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/registry.hpp"

namespace rmapbench {
namespace {

constexpr long kVmas = 100;
constexpr long kForksPerRound = 4;

RMAPBENCH_METRIC(kForksPerSec, {"forks_per_sec", "forks/s", Better::higher, MetricKind::statistical,
                                "fork+exit+wait completed per second by all forkers together"});

Result<mm::Agent> spawn_forker(int cpu) {
  auto layout = std::make_shared<std::optional<mm::AnonLayout>>();
  auto timer = std::make_shared<std::optional<mm::ForkTimer>>();
  auto setup = [=]() -> Status {
    if (Status s = mm::pin_to_cpu(cpu); s.failed()) return s;
    auto l = mm::AnonLayout::create(kVmas, 1, static_cast<uint32_t>(100 + cpu));
    if (!l) return l.status();
    layout->emplace(std::move(*l));
    auto t = mm::ForkTimer::create();
    if (!t) return t.status();
    timer->emplace(std::move(*t));
    return Status::ok();
  };
  auto handler = [=](const mm::AgentRequest& req) -> mm::AgentReply {
    if (req.op == 2) {
      Status s = (*layout)->verify();
      return s.failed() ? mm::reply_error(s.message()) : mm::reply_ok();
    }
    const int64_t start = mm::monotonic_ns();
    for (long i = 0; i < req.arg; ++i) {
      auto t = (*timer)->fork_exit_wait(mm::ForkTimer::ExitStamp::none);
      if (!t) return mm::reply_error(t.status().message());
    }
    return mm::reply_ok({double(start), double(mm::monotonic_ns())});
  };
  return mm::Agent::spawn(1, setup, handler);
}

void run(benchmark::State& state, int forkers) {
  if (!mm::within_budget(state, {mm::grows_with("forkers", forkers, 2), mm::fixed(kVmas),
                                 mm::grows_with("forkers", forkers, kVmas)}))
    return;
  std::vector<mm::Agent> agents;
  for (int i = 0; i < forkers; ++i) {
    auto a = spawn_forker(i);
    if (!a) return fail(state, a.status().context(fmt::format("forker {}", i)).message());
    agents.push_back(std::move(*a));
  }
  double forks = 0, seconds = 0;
  for (auto _ : state) {
    // Each forker starts as soon as it reads its request; the round spans
    // from the first start to the last end, as the forkers saw them.
    std::vector<int64_t> starts, ends;
    for (auto& a : agents)
      if (Status s = a.send({1, kForksPerRound}); s.failed()) fail(state, s.message());
    if (failed(state)) break;
    for (auto& a : agents) {
      auto r = a.receive();
      if (!r) {
        fail(state, r.status().message());
        break;
      }
      starts.push_back(static_cast<int64_t>(r->values[0]));
      ends.push_back(static_cast<int64_t>(r->values[1]));
    }
    if (failed(state)) break;
    const double span = static_cast<double>(*std::max_element(ends.begin(), ends.end()) -
                                            *std::min_element(starts.begin(), starts.end())) / 1e9;
    forks += static_cast<double>(forkers * kForksPerRound);
    seconds += span;
    state.SetIterationTime(span / kForksPerRound);
  }
  if (failed(state)) return;
  report_metric(state, kForksPerSec, seconds > 0 ? forks / seconds : 0);
  for (auto& a : agents)
    if (auto r = a.call({2, 0}); !r) return fail(state, r.status().message());
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
                                   "the aggregate rate. Oracle: each forker's data intact afterwards.",
                    .parameters = "forkers: P (quick 1 and all CPUs; full powers of two up to all CPUs)",
                    .needs = {},
                    .register_benchmarks = register_fork_concurrent});

}  // namespace rmapbench
