// anon_vma footprint: the kernel's own count of anon_vma, anon_vma_chain and
// vm_area_struct objects that live children cost, per child and per VMA -
// the memory a lazy anon_vma scheme claims to save. Counts come from the
// slab allocator (sysfs or /proc/slabinfo), never from a model.
#include <fmt/core.h>

#include <memory>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "kernels/procfs/kernel_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/remote_fork.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"

namespace rmapbench {
namespace {

RMAPBENCH_METRIC(kAnonVma, {"anon_vma_per_child", "objects", Better::lower, MetricKind::exact,
                            "anon_vma slab objects per live child (all of the process's VMAs)", MetricRole::primary});
RMAPBENCH_METRIC(kAvc, {"anon_vma_chain_per_child", "objects", Better::lower, MetricKind::exact,
                        "anon_vma_chain slab objects per live child (all of the process's VMAs)", MetricRole::primary});
RMAPBENCH_METRIC(kVmaStruct, {"vm_area_struct_per_child", "objects", Better::lower, MetricKind::exact,
                              "vm_area_struct slab objects per live child (all of the process's VMAs)", MetricRole::primary});
RMAPBENCH_METRIC(kAnonVmaPerVma, {"anon_vma_per_vma", "objects", Better::lower, MetricKind::exact,
                                  "anon_vma objects per child per layout VMA it keeps (the same without the layout "
                                  "subtracted)", MetricRole::primary});
RMAPBENCH_METRIC(kAvcPerVma, {"anon_vma_chain_per_vma", "objects", Better::lower, MetricKind::exact,
                              "anon_vma_chain objects per child per layout VMA it keeps (the same without the layout "
                              "subtracted)", MetricRole::primary});

constexpr long kDepthVmas = 100;
constexpr long kWidthVmas = 1000;
const char* const kCaches[] = {"anon_vma", "anon_vma_chain", "vm_area_struct"};

struct SlabCounts {
  double objects[3] = {0, 0, 0};
};

Result<SlabCounts> snapshot(const mm::SlabReader& reader) {
  SlabCounts s;
  for (int i = 0; i < 3; ++i) {
    auto n = reader.objects(kCaches[i]);
    if (!n) return n.status();
    s.objects[i] = static_cast<double>(*n);
  }
  return s;
}

// Ends what a layout keeps alive while it is counted, and returns the
// verdict of its oracle.
using Finish = std::function<Status()>;
// Creates the live processes to be counted. `layout` is null for the
// baseline: the same processes without the workload's VMAs.
using Spawn = std::function<Result<Finish>(mm::AnonLayout* layout)>;

Finish finish_group(mm::ChildGroup group) {
  auto shared = std::make_shared<mm::ChildGroup>(std::move(group));
  return [shared] { return shared->release(); };
}

struct Counted {
  SlabCounts delta;
  int64_t spawn_ns = 0;
};

Result<Counted> count(const mm::SlabReader* reader, const Spawn& spawn, mm::AnonLayout* layout) {
  Counted c;
  Result<SlabCounts> before = reader ? snapshot(*reader) : Result<SlabCounts>(SlabCounts{});
  if (!before) return before.status();
  const int64_t start = mm::monotonic_ns();
  auto finish = spawn(layout);
  c.spawn_ns = mm::monotonic_ns() - start;
  if (!finish) return finish.status();
  if (reader) {
    auto after = snapshot(*reader);
    if (!after) return after.status();
    for (int i = 0; i < 3; ++i) c.delta.objects[i] = after->objects[i] - before->objects[i];
  }
  if (Status s = (*finish)(); s.failed()) return s;
  return c;
}

void measure(benchmark::State& state, long vmas, long children, long vmas_per_child, const Spawn& spawn) {
  harness::Run run(state);
  auto reader = mm::SlabReader::open();
  const mm::SlabReader* slab = reader ? &*reader : nullptr;
  if (!reader) run.note("slab counts absent: " + reader.status().message());
  SlabCounts with, without;
  const bool timed = run.time([&]() -> Result<int64_t> {
    // The baseline runs before the layout exists, so its processes do not
    // inherit it; the difference is what the layout costs.
    auto baseline = count(slab, spawn, nullptr);
    if (!baseline) return baseline.status();
    auto layout = mm::AnonLayout::create(vmas);
    if (!layout) return layout.status();
    auto measured = count(slab, spawn, &*layout);
    if (!measured) return measured.status();
    if (Status s = layout->verify(); s.failed()) return s.context("parent after the children");
    for (int i = 0; i < 3; ++i) {
      with.objects[i] += measured->delta.objects[i];
      without.objects[i] += baseline->delta.objects[i];
    }
    return measured->spawn_ns;
  }, static_cast<double>(children));
  if (!timed) return;
  if (slab) {
    const double per_child = static_cast<double>(children) * static_cast<double>(run.iterations());
    const double per_vma = per_child * static_cast<double>(vmas_per_child);
    report_metric(state, kAnonVma, with.objects[0] / per_child);
    report_metric(state, kAvc, with.objects[1] / per_child);
    report_metric(state, kVmaStruct, with.objects[2] / per_child);
    report_metric(state, kAnonVmaPerVma, (with.objects[0] - without.objects[0]) / per_vma);
    report_metric(state, kAvcPerVma, (with.objects[1] - without.objects[1]) / per_vma);
    for (const char* cache : kCaches) run.note(slab->note(cache));
  }
  run.finish();
}

Result<Finish> spawn_children(mm::AnonLayout* layout, long children) {
  const bool corrupt = mm::test_corruption_requested("anon_vma_footprint");
  auto g = mm::ChildGroup::spawn(children, {}, [layout, corrupt](long i) {
    if (!layout) return Status::ok();
    if (corrupt && i == 0) layout->corrupt_one_byte_for_test(0, 0);
    return layout->verify().context("child's view of the parent's data");
  });
  if (!g) return g.status();
  return finish_group(std::move(*g));
}

Result<Finish> spawn_chain(mm::AnonLayout* layout, long depth) {
  auto agent = mm::spawn_fork_agent(static_cast<int>(depth), 0, layout, "anon_vma_footprint");
  if (!agent) return agent.status();
  if (auto check = agent->call({mm::kRemoteCheck, 0}); !check) return check.status();
  auto shared = std::make_shared<mm::Agent>(std::move(*agent));
  return Finish([shared] { return Status::ok(); });
}

Result<Finish> spawn_width(mm::AnonLayout* layout, long children) {
  auto g = mm::ChildGroup::spawn(children, [layout, children](long i) {
    return layout ? layout->unmap_all_but(i * kWidthVmas / children, (i + 1) * kWidthVmas / children) : Status::ok();
  });
  if (!g) return g.status();
  return finish_group(std::move(*g));
}

void register_footprint(Registrar& r) {
  const int iterations = r.profile() == Profile::quick ? 2 : 5;
  for (long vmas : r.sweep("vmas", {64, 1000}, {1, 64, 1000, 4096}))
    for (long children : r.sweep("children", {8}, {1, 8, 64}))
      r.add(fmt::format("anon_vma_footprint/children/children:{}/vmas:{}", children, vmas),
            [=](benchmark::State& s) {
              if (!mm::within_budget(s, {mm::grows_with("children", children), mm::grows_with("vmas", vmas),
                                         mm::fixed(vmas)}))
                return;
              measure(s, vmas, children, vmas, [=](mm::AnonLayout* l) { return spawn_children(l, children); });
            })
          ->Iterations(iterations);
  for (long depth : r.sweep("depth", {4}, {1, 4, 16}))
    r.add(fmt::format("anon_vma_footprint/depth/depth:{}/vmas:{}", depth, kDepthVmas),
          [=](benchmark::State& s) {
            if (!mm::within_budget(s, {mm::grows_with("depth", depth), mm::fixed(kDepthVmas), mm::fixed(kDepthVmas)}))
              return;
            measure(s, kDepthVmas, depth, kDepthVmas, [=](mm::AnonLayout* l) { return spawn_chain(l, depth); });
          })
        ->Iterations(iterations);
  for (long children : r.sweep("children", {10}, {10, 100}))
    r.add(fmt::format("anon_vma_footprint/width_unmap/children:{}/vmas:{}", children, kWidthVmas),
          [=](benchmark::State& s) {
            if (!mm::within_budget(s, {mm::grows_with("children", children), mm::fixed(kWidthVmas),
                                       mm::fixed(kWidthVmas)}))
              return;
            measure(s, kWidthVmas, children, std::max<long>(1, kWidthVmas / children),
                    [=](mm::AnonLayout* l) { return spawn_width(l, children); });
          })
        ->Iterations(iterations);
}

}  // namespace

RMAPBENCH_WORKLOAD(anon_vma_footprint,
                   {.name = "anon_vma_footprint",
                    .kernel_path = "slab objects of anon_vma_fork/anon_vma_clone: anon_vma, anon_vma_chain, "
                                   "vm_area_struct kept alive by forked processes",
                    .description = "For each layout - N children of a parent with V faulted VMAs; a fork chain of "
                                   "depth D; N children each keeping 1000/N of 1000 VMAs - counts the slab objects "
                                   "before and while the children live, from /sys/kernel/slab/<cache>/objects "
                                   "(aliases of merged caches followed) or /proc/slabinfo; the same processes without "
                                   "the layout give the baseline the per-VMA figures subtract. Timed: creating the "
                                   "children, per child. Without readable counts the counters are absent and the "
                                   "reason is noted.",
                    .oracle = "every child sees the parent's data.",
                    .parameters = "children, vmas, depth (quick: children 8 x vmas 64,1000; depth 4; width 10)",
                    .needs = {},
                    .register_benchmarks = register_footprint});

}  // namespace rmapbench
