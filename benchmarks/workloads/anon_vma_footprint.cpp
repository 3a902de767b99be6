// anon_vma footprint: the kernel's own count of anon_vma, anon_vma_chain and
// vm_area_struct objects that live children cost, per child and per VMA -
// the memory a lazy anon_vma scheme claims to save. Counts come from the
// slab allocator (sysfs or /proc/slabinfo), never from a model.
#include <fmt/core.h>

#include <memory>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/kernel_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/remote_fork.hpp"
#include "benchmarks/registry.hpp"

namespace rmapbench {
namespace {

RMAPBENCH_METRIC(kAnonVma, {"anon_vma_per_child", "objects", Better::lower, MetricKind::exact,
                            "anon_vma slab objects allocated per live child"});
RMAPBENCH_METRIC(kAvc, {"anon_vma_chain_per_child", "objects", Better::lower, MetricKind::exact,
                        "anon_vma_chain slab objects allocated per live child"});
RMAPBENCH_METRIC(kVmaStruct, {"vm_area_struct_per_child", "objects", Better::lower, MetricKind::exact,
                              "vm_area_struct slab objects allocated per live child"});
RMAPBENCH_METRIC(kAnonVmaPerVma, {"anon_vma_per_vma", "objects", Better::lower, MetricKind::exact,
                                  "anon_vma objects per child per VMA the child keeps"});
RMAPBENCH_METRIC(kAvcPerVma, {"anon_vma_chain_per_vma", "objects", Better::lower, MetricKind::exact,
                              "anon_vma_chain objects per child per VMA the child keeps"});

const char* const kCaches[] = {"anon_vma", "anon_vma_chain", "vm_area_struct"};

struct SlabSnapshot {
  long long objects[3] = {0, 0, 0};
};

Result<SlabSnapshot> snapshot(const mm::SlabReader& reader) {
  SlabSnapshot s;
  for (int i = 0; i < 3; ++i) {
    auto n = reader.objects(kCaches[i]);
    if (!n) return n.status();
    s.objects[i] = *n;
  }
  return s;
}

// Ends what a layout keeps alive while it is counted, and returns the
// verdict of its oracle (children check their data as they are released).
using Finish = std::function<Status()>;

Finish release_group(mm::ChildGroup group) {
  auto shared = std::make_shared<mm::ChildGroup>(std::move(group));
  return [shared] { return shared->release(); };
}

// `spawn` creates the live children to be counted and returns what holds
// them; `children` and `vmas_per_child` scale the per-child figures.
void measure(benchmark::State& state, long vmas, long children, long vmas_per_child,
             const std::function<Result<Finish>(mm::AnonLayout&)>& spawn) {
  auto layout = mm::AnonLayout::create(vmas);
  if (!layout) return fail(state, layout.status().context("footprint layout").message());
  auto reader = mm::SlabReader::open();
  std::vector<std::string> notes;
  if (!reader) notes.push_back("slab counts absent: " + reader.status().message());
  SlabSnapshot total;
  for (auto _ : state) {
    Result<SlabSnapshot> before = reader ? snapshot(*reader) : Result<SlabSnapshot>(SlabSnapshot{});
    if (!before) {
      fail(state, before.status().message());
      break;
    }
    const int64_t start = mm::monotonic_ns();
    auto finish = spawn(*layout);
    const int64_t spawned = mm::monotonic_ns();
    if (!finish) {
      fail(state, finish.status().message());
      break;
    }
    if (reader) {
      auto after = snapshot(*reader);
      if (!after) {
        fail(state, after.status().message());
        break;
      }
      for (int i = 0; i < 3; ++i) total.objects[i] += after->objects[i] - before->objects[i];
    }
    if (Status s = (*finish)(); s.failed()) {
      fail(state, s.message());
      break;
    }
    state.SetIterationTime(static_cast<double>(spawned - start) / 1e9 / static_cast<double>(children));
  }
  if (state.error_occurred()) return;
  if (reader) {
    const double per = static_cast<double>(children) * static_cast<double>(state.iterations());
    report_metric(state, kAnonVma, static_cast<double>(total.objects[0]) / per);
    report_metric(state, kAvc, static_cast<double>(total.objects[1]) / per);
    report_metric(state, kVmaStruct, static_cast<double>(total.objects[2]) / per);
    report_metric(state, kAnonVmaPerVma, static_cast<double>(total.objects[0]) / per / static_cast<double>(vmas_per_child));
    report_metric(state, kAvcPerVma, static_cast<double>(total.objects[1]) / per / static_cast<double>(vmas_per_child));
    for (const char* cache : kCaches) notes.push_back(reader->note(cache));
  }
  if (Status s = layout->verify(); s.failed()) return fail(state, s.context("parent after the children").message());
  set_notes(state, notes);
}

void register_footprint(Registrar& r) {
  const int iterations = r.profile() == Profile::quick ? 2 : 5;
  for (long vmas : r.sweep("vmas", {64, 1000}, {1, 64, 1000, 4096}))
    for (long children : r.sweep("children", {8}, {1, 8, 64})) {
      r.add(fmt::format("anon_vma_footprint/children/children:{}/vmas:{}", children, vmas),
            [=](benchmark::State& s) {
              measure(s, vmas, children, vmas, [=](mm::AnonLayout& layout) -> Result<Finish> {
                const bool corrupt = mm::test_corruption_requested("anon_vma_footprint");
                auto g = mm::ChildGroup::spawn(children, {}, [&layout, corrupt](long i) {
                  if (corrupt && i == 0) layout.corrupt_one_byte_for_test(0, 0);
                  return layout.verify().context("child's view of the parent's data");
                });
                if (!g) return g.status();
                return release_group(std::move(*g));
              });
            })
          ->Iterations(iterations);
    }
  for (long depth : r.sweep("depth", {4}, {1, 4, 16})) {
    constexpr long kVmas = 100;
    r.add(fmt::format("anon_vma_footprint/depth/depth:{}/vmas:{}", depth, kVmas), [=](benchmark::State& s) {
       measure(s, kVmas, depth, kVmas, [=](mm::AnonLayout& layout) -> Result<Finish> {
         auto agent = mm::spawn_fork_agent(static_cast<int>(depth), 0, &layout, "anon_vma_footprint");
         if (!agent) return agent.status();
         if (auto check = agent->call({mm::kRemoteCheck, 0}); !check) return check.status();
         auto shared = std::make_shared<mm::Agent>(std::move(*agent));
         return Finish([shared] { return Status::ok(); });
       });
     })->Iterations(iterations);
  }
  for (long children : r.sweep("children", {10}, {10, 100})) {
    constexpr long kVmas = 1000;
    r.add(fmt::format("anon_vma_footprint/width_unmap/children:{}/vmas:{}", children, kVmas), [=](benchmark::State& s) {
       measure(s, kVmas, children, std::max<long>(1, kVmas / children), [=](mm::AnonLayout& layout) -> Result<Finish> {
         auto g = mm::ChildGroup::spawn(children, [&layout, children](long i) {
           return layout.unmap_all_but(i * kVmas / children, (i + 1) * kVmas / children);
         });
         if (!g) return g.status();
         return release_group(std::move(*g));
       });
     })->Iterations(iterations);
  }
}

}  // namespace

RMAPBENCH_WORKLOAD(anon_vma_footprint,
                   {.name = "anon_vma_footprint",
                    .kernel_path = "slab objects of anon_vma_fork/anon_vma_clone: anon_vma, anon_vma_chain, "
                                   "vm_area_struct kept alive by forked processes",
                    .description = "For each layout - N children of a parent with V faulted VMAs; a fork chain of "
                                   "depth D; N children each keeping 1000/N of 1000 VMAs - counts the slab objects "
                                   "before and while the children live, from /sys/kernel/slab/<cache>/objects (aliases "
                                   "of merged caches followed) or /proc/slabinfo. Timed: creating the children, per "
                                   "child. Without readable counts the counters are absent and the reason is noted. "
                                   "Oracle: every child sees the parent's data.",
                    .parameters = "children, vmas, depth (quick: children 8 x vmas 64,1000; depth 4; width 10)",
                    .needs = {},
                    .register_benchmarks = register_footprint});

}  // namespace rmapbench
