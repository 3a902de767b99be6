// fork width: one parent with 1000 faulted VMAs forks N children that each
// unmap all but their own share - the case raised in review of the lazy
// anon_vma series (many children, each keeping a sliver of the parent).
#include <fmt/core.h>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"

namespace rmapbench {
namespace {

constexpr long kVmas = 1000;

RMAPBENCH_METRIC(kTeardownUs, {"teardown_us", "us", Better::lower, MetricKind::statistical,
                               "per child: exit of a child holding its share, until reaped"});

struct Share {
  long first, last;
};
Share share_of(long child, long children) { return {child * kVmas / children, (child + 1) * kVmas / children}; }

void run(benchmark::State& state, long children) {
  harness::Run run(state);
  if (!mm::within_budget(state, {mm::grows_with("children", children), mm::fixed(kVmas), mm::fixed(kVmas)}))
    return;
  auto layout = mm::AnonLayout::create(kVmas);
  if (!layout) return run.stop(layout.status().context("fork width layout"));
  const bool corrupt = mm::test_corruption_requested("fork_width");
  const bool timed = run.time([&]() -> Result<int64_t> {
    const int64_t start = mm::monotonic_ns();
    auto group = mm::ChildGroup::spawn(
        children,
        [&](long i) {
          Share s = share_of(i, children);
          return layout->unmap_all_but(s.first, s.last);
        },
        [&](long i) -> Status {
          Share s = share_of(i, children);
          if (corrupt && i == children - 1 && s.last > s.first) layout->corrupt_one_byte_for_test(s.first, 0);
          return layout->verify_range(s.first, s.last).context("child's share after the others unmapped theirs");
        });
    const int64_t spawned = mm::monotonic_ns();
    if (!group) return group.status();
    if (Status checked = group->check(); checked.failed()) return checked;
    const int64_t exiting = mm::monotonic_ns();
    Status released = group->release();
    run.add("teardown_ns", static_cast<double>(mm::monotonic_ns() - exiting));
    if (released.failed()) return released;
    return spawned - start;
  }, static_cast<double>(children));
  if (!timed) return;
  report_metric(state, kTeardownUs, run.sum("teardown_ns") / 1e3 / static_cast<double>(children),
                benchmark::Counter::kAvgIterations);
  if (Status s = layout->verify(); s.failed()) return run.stop(s.context("parent after the children"));
}

void register_fork_width(Registrar& r) {
  for (long children : r.sweep("children", {1, 10, 100}, {1, 10, 100, 1000}))
    r.add(fmt::format("fork_width/fork_unmap_share/children:{}/vmas:{}", children, kVmas),
          [children](benchmark::State& s) { run(s, children); })
        ->Iterations(r.profile() == Profile::quick ? 2 : 5);
}

}  // namespace

RMAPBENCH_WORKLOAD(fork_width,
                   {.name = "fork_width",
                    .kernel_path = "anon_vma_fork for many children of one parent; munmap -> unlink_anon_vmas; "
                                   "exit of children sharing the parent's anon_vmas",
                    .description = "A parent with 1000 faulted VMAs forks N children; each child unmaps every VMA but "
                                   "its own 1000/N share and waits. Timed, per child: fork plus the child's munmap "
                                   "until it is ready (real_time), and its exit until reaped (teardown_us).",
                    .oracle = "each child's share holds the parent's data; the parent's data intact.",
                    .parameters = "children: N (quick 1,10,100; full 1..1000)",
                    .needs = {},
                    .register_benchmarks = register_fork_width});

}  // namespace rmapbench
