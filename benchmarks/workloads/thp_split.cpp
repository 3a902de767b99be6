// THP folio split: splitting a THP (PMD-size or mTHP) mapped by S+1
// processes walks the anon_vma of the folio and, in every mapping, replaces
// the folio's mapping by migration entries and then by PTEs of the new small
// folios (split_folio -> unmap_folio: try_to_migrate over the rmap;
// remap_page). The cost grows with the mappers.
//
// Triggers, each its own family:
//   debugfs           <debugfs>/split_huge_pages "pid,start,end,0" (direct);
//                     refused under kernel lockdown
//   deferred_shrinker every mapper drops the last page of each folio
//                     (MADV_DONTNEED), so the folio is queued for deferred
//                     split; the shrinkers then run through drop_slab (write 2
//                     to /proc/sys/vm/drop_caches). Timed: that write, minus
//                     the same write with nothing queued just before.
//   madv_cold         MADV_COLD of the last page of a folio nobody else maps
//   madv_pageout      MADV_PAGEOUT of the same (both split it synchronously)
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"
#include "benchmarks/registry.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kFolioSplitUs, {"folio_split_us", "us", Better::lower, MetricKind::statistical,
                                 "one THP folio split, mapped by every sharer (the timed work per folio)"});
RMAPBENCH_METRIC(kSplitDeclined, {"split_declined", "iterations", Better::lower, MetricKind::statistical,
                                  "iterations repeated, per iteration, because the kernel declined to split a folio "
                                  "(MADV_COLD/PAGEOUT and the shrinker split on a best-effort basis: folio lock, an "
                                  "extra reference)"});
RMAPBENCH_METRIC(kShrinkersIdleUs, {"shrinkers_idle_us", "us", Better::lower, MetricKind::statistical,
                                    "drop_slab with nothing queued for deferred split (subtracted from the figure)"});
namespace {

// Skip-worthy outcome of one iteration (the host cannot, not the kernel failed).
constexpr int kSkipErr = -4242;
// The kernel declined to split some folio where splitting is best-effort:
// the iteration is repeated, up to kAttempts times in all.
constexpr int kDeclinedErr = -4243;
constexpr int kAttempts = 3;

// The sizes a sweep registers: PMD first, then the given mTHP sizes below it.
std::vector<long> size_sweep(Registrar& r) {
  const long pmd_kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  std::vector<long> quick = {pmd_kb > 0 ? pmd_kb : 2048, 64};
  std::vector<long> full = quick;
  for (long kb : {1024, 512, 256, 128, 32, 16})
    if (kb < full.front()) full.push_back(kb);
  return r.sweep("thp_kb", quick, full);
}

// Per-iteration sums, reported as averages.
struct Sums {
  double timed_ns = 0, idle_ns = 0;
  mm::thp::ThpEvents events;
  mm::OpCounts counts{0, 0, 0, 0};
  std::vector<std::string> absent;
  long iterations = 0;
  long declined = 0;  // iterations repeated
  void add(const mm::OpCounts& c) {
    counts.page_faults += c.page_faults;
    counts.context_switches += c.context_switches;
    counts.cpu_migrations += c.cpu_migrations;
    counts.sys_us += c.sys_us;
  }
};

void report(benchmark::State& state, const Sums& s, long sharers, long folios, bool with_idle) {
  const double n = static_cast<double>(std::max<long>(1, s.iterations));
  report_metric(state, kFolioSplitUs, s.timed_ns / 1e3 / n / static_cast<double>(folios));
  if (with_idle) report_metric(state, kShrinkersIdleUs, s.idle_ns / 1e3 / n);
  report_metric(state, kSplitDeclined, static_cast<double>(s.declined) / n);
  mm::thp::report_events(state, s.events, s.iterations, sharers);
  // Per folio split, like the timing.
  const double per = n * static_cast<double>(folios);
  const bool perf = s.absent.empty();
  mm::report_op_counts(state, {perf ? s.counts.page_faults / per : -1, perf ? s.counts.context_switches / per : -1,
                               perf ? s.counts.cpu_migrations / per : -1, s.counts.sys_us / per});
}

using mm::thp::PageExpect;
using mm::thp::ThpRegion;

enum class Trigger { debugfs, deferred_shrinker, madv_cold, madv_pageout };

const char* trigger_name(Trigger t) {
  switch (t) {
    case Trigger::debugfs: return "debugfs";
    case Trigger::deferred_shrinker: return "deferred_shrinker";
    case Trigger::madv_cold: return "madv_cold";
    case Trigger::madv_pageout: return "madv_pageout";
  }
  return "?";
}

const char* trigger_note(Trigger t) {
  switch (t) {
    case Trigger::debugfs: return "split by <debugfs>/split_huge_pages (pid, range, order 0); timed: the write";
    case Trigger::deferred_shrinker:
      return "split by the deferred split shrinker: every mapper MADV_DONTNEEDs the last page of each folio, then "
             "drop_slab runs the shrinkers (write 2 to /proc/sys/vm/drop_caches); timed: that write minus the same "
             "write with nothing queued (shrinkers_idle_us)";
    case Trigger::madv_cold: return "split synchronously by MADV_COLD of the last page of each unshared folio; timed: madvise";
    case Trigger::madv_pageout:
      return "split synchronously by MADV_PAGEOUT of the last page of each unshared folio; timed: madvise";
  }
  return "";
}

struct Sample {
  int64_t timed_ns = 0;
  int64_t idle_ns = 0;
  mm::thp::ThpEvents events;
  mm::OpCounts counts;
  std::vector<std::string> absent;
};

// The page each process writes after the split (COW isolation), the page the
// deferred trigger drops.
constexpr long kParentMarks = 1;
constexpr long kChildMarks = 2;

Result<Sample> split_once(Trigger trigger, size_t folio_bytes, long folios, long sharers, bool corrupt, uint32_t seed,
                          const std::string& debugfs_path) {
  const size_t ps = mm::page_size();
  const long kb = static_cast<long>(folio_bytes / 1024);
  auto region = ThpRegion::create(folio_bytes, folios, seed);
  if (!region) return region.status().context("THP region");
  if (Status s = mm::thp::confirm_thps(*region); s.failed()) return Status::error(s.message(), kSkipErr);
  // No collapse from here on: khugepaged may otherwise rebuild a THP from a
  // split range (511 present PTEs are within its max_ptes_none) before the
  // oracle looks, and sharers forked below inherit the flag. Existing THPs
  // stay as they are.
  if (Status s = region->forbid_collapse(); s.failed()) return s;
  const long last = region->pages_per_folio() - 1;
  const bool drops = trigger == Trigger::deferred_shrinker;
  ThpRegion* shared = &*region;

  auto drop_last_pages = [shared, last, ps]() -> Status {
    for (long f = 0; f < shared->count(); ++f)
      if (madvise(shared->page(f, last), ps, MADV_DONTNEED) != 0) return Status::from_errno("madvise(MADV_DONTNEED)");
    return Status::ok();
  };
  // What a sharer sees after the split; sharer 0 also writes its own page.
  auto sharer_check = [shared, drops, last, corrupt](long i) -> Status {
    if (corrupt && i == 0) shared->corrupt_one_byte_for_test(0, 3);
    if (i == 0)
      for (long f = 0; f < shared->count(); ++f) shared->mark(f, kChildMarks);
    return shared->verify(
        [&](long, long p) {
          if (drops && p == last) return PageExpect::zero;
          if (i == 0 && p == kChildMarks) return PageExpect::marked;
          return PageExpect::pattern;
        },
        fmt::format("sharer {} after the split", i));
  };

  Sample sample;
  auto before = mm::thp::read_events(kb);
  if (!before) return before.status();
  auto group = mm::ChildGroup::spawn(sharers, drops ? mm::ChildGroup::Body([&](long) { return drop_last_pages(); })
                                                    : mm::ChildGroup::Body(),
                                     sharer_check);
  if (!group) return group.status();
  // The idle figure as close to the timed one as possible: the sharers have
  // dropped their pages, but we still map ours, so nothing is queued yet.
  // The least of three, so a hiccup of the host in one idle write is not
  // subtracted from the split (it made small splits read 0). Measured with
  // the perf counters already on, as the timed write is: idle runs without
  // them left the counters' own cost in the difference (about 4% at 0
  // sharers, against a bare loop without counters).
  auto idle_then_drop = [&]() -> Status {
    sample.idle_ns = INT64_MAX;
    for (int i = 0; i < 3; ++i) {
      auto idle = mm::thp::run_shrinkers();
      if (!idle) return idle.status();
      sample.idle_ns = std::min<int64_t>(sample.idle_ns, *idle);
    }
    return drop_last_pages();
  };

  // The timed operation, with the per-operation counters on.
  auto timed = [&]() -> Status {
    switch (trigger) {
      case Trigger::debugfs: {
        auto ns = mm::thp::debugfs_split(debugfs_path, getpid(), region->start(), region->end(), 0);
        if (!ns) return ns.status();
        sample.timed_ns = *ns;
        return Status::ok();
      }
      case Trigger::deferred_shrinker: {
        auto ns = mm::thp::run_shrinkers();
        if (!ns) return ns.status();
        sample.timed_ns = std::max<int64_t>(0, *ns - sample.idle_ns);
        return Status::ok();
      }
      case Trigger::madv_cold:
      case Trigger::madv_pageout: {
        const int advice = trigger == Trigger::madv_cold ? MADV_COLD : MADV_PAGEOUT;
        for (long f = 0; f < folios; ++f) {
          const int64_t t0 = mm::monotonic_ns();
          int rc = madvise(region->page(f, last), ps, advice);
          sample.timed_ns += mm::monotonic_ns() - t0;
          if (rc != 0) return Status::from_errno(trigger == Trigger::madv_cold ? "madvise(MADV_COLD)" : "madvise(MADV_PAGEOUT)");
        }
        return Status::ok();
      }
    }
    return Status::ok();
  };
  auto counts = mm::count_per_op(1, timed, &sample.absent, drops ? idle_then_drop : std::function<Status()>());
  if (!counts) return counts.status();
  sample.counts = *counts;
  auto after = mm::thp::read_events(kb);
  if (!after) return after.status();
  sample.events = *after - *before;
  if (drops) {
    const mm::thp::ThpEvents& q = sample.events;
    const long long n = q.size_split_deferred >= 0 ? q.size_split_deferred : q.deferred_split_page;
    if (n < folios)
      return Status::error(fmt::format("only {} of {} folios were queued for deferred split after every mapper "
                                       "dropped a page (hugepages-{}kB/stats/split_deferred, thp_deferred_split_page)",
                                       n, folios, kb));
  }

  // Oracle 1: the folios were split, in every process.
  const long long split = sample.events.size_split >= 0 ? sample.events.size_split : sample.events.split_page;
  if (split < folios)
    return Status::error(fmt::format("{} split only {} of {} folios of {} kB (hugepages-{}kB/stats/split, "
                                     "thp_split_page)",
                                     trigger_name(trigger), split, folios, kb, kb),
                         trigger == Trigger::debugfs ? 0 : kDeclinedErr);
  std::vector<pid_t> pids = {0};
  pids.insert(pids.end(), group->pids().begin(), group->pids().end());
  if (Status s = mm::thp::check_split(*region, pids); s.failed()) return s;
  // Oracle 2: every byte intact in the benchmark process.
  auto parent_view = [&](bool marked) {
    return region->verify(
        [&](long, long p) {
          if (drops && p == last) return PageExpect::zero;
          if (marked && p == kParentMarks) return PageExpect::marked;
          return PageExpect::pattern;
        },
        marked ? "benchmark process after its COW write" : "benchmark process after the split");
  };
  if (Status s = parent_view(false); s.failed()) return s;
  // Oracle 3: COW isolation after the split: we write one page per folio,
  // sharer 0 another; nobody sees the other's write. Without sharers a
  // checker is forked now, after the split.
  if (Status s = mm::thp::check_cow_isolation(*region, kParentMarks, *group, sharer_check, parent_view); s.failed())
    return s;
  return sample;
}

void run(benchmark::State& state, Trigger trigger, long kb, long sharers) {
  const bool corrupt = mm::test_corruption_requested("thp_split");
  std::vector<std::string> notes = {trigger_note(trigger)};
  std::string debugfs_path;
  if (trigger == Trigger::debugfs) {
    auto p = mm::thp::debugfs_split_path();
    if (!p) return skip(state, p.status().message());
    debugfs_path = *p;
  }
  if (trigger == Trigger::deferred_shrinker && geteuid() != 0)
    return skip(state, "needs root: the deferred split shrinker is run through /proc/sys/vm/drop_caches");
  if ((trigger == Trigger::madv_cold || trigger == Trigger::madv_pageout) && sharers > 0)
    return skip(state, "MADV_COLD/MADV_PAGEOUT leave folios that other processes map alone: unshared folios only");
  const size_t folio_bytes = static_cast<size_t>(kb) * 1024;
  if (folio_bytes < 4 * mm::page_size())
    return skip(state, fmt::format("{} kB folios are too small (anonymous THPs start at 4 pages)", kb));
  auto guards = mm::thp::allow_size(kb, &notes);
  if (!guards) return skip(state, guards.status().message());
  const long folios = mm::thp::folios_per_iteration(folio_bytes);
  // No safety::Watchdog here: its thread would put the other CPUs into our
  // mm_cpumask, and every TLB flush of the timed operation (the split walks
  // our mm too) would then IPI them: about 15 us more per flush in a VM.
  // The waits here are on our own children doing bounded work.

  Sums sums;
  uint32_t seed = 11;
  for (auto _ : state) {
    auto s = split_once(trigger, folio_bytes, folios, sharers, corrupt, seed++, debugfs_path);
    for (int attempt = 2; !s && s.status().err() == kDeclinedErr && attempt <= kAttempts; ++attempt) {
      ++sums.declined;
      s = split_once(trigger, folio_bytes, folios, sharers, corrupt, seed++, debugfs_path);
    }
    if (!s) {
      if (s.status().err() == kSkipErr) skip(state, s.status().message());
      else fail(state, s.status().message());
      break;
    }
    state.SetIterationTime(static_cast<double>(s->timed_ns) / 1e9 / static_cast<double>(folios));
    sums.timed_ns += static_cast<double>(s->timed_ns);
    sums.idle_ns += static_cast<double>(s->idle_ns);
    sums.events += s->events;
    sums.add(s->counts);
    if (!s->absent.empty()) sums.absent = s->absent;
    ++sums.iterations;
  }
  if (state.error_occurred()) return;
  report(state, sums, sharers, folios, trigger == Trigger::deferred_shrinker);
  notes.push_back(fmt::format("{} folios of {} kB per iteration", folios, kb));
  notes.insert(notes.end(), sums.absent.begin(), sums.absent.end());
  set_notes(state, notes);
}

void register_thp_split(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const int iterations = quick ? 2 : 20;
  const std::vector<long> sharers = r.sweep("sharers", {0, 4, 16}, {0, 1, 2, 4, 8, 16, 32, 64});
  const std::vector<long> sizes = size_sweep(r);
  const long pmd_kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  for (Trigger t : {Trigger::debugfs, Trigger::deferred_shrinker, Trigger::madv_cold, Trigger::madv_pageout})
    for (long kb : sizes)
      for (long s : sharers) {
        if ((t == Trigger::madv_cold || t == Trigger::madv_pageout) && s != 0) continue;
        // Quick: mTHP sizes only through the deferred split (the path every host has).
        if (quick && kb != pmd_kb && t != Trigger::deferred_shrinker) continue;
        r.add(fmt::format("thp_split/{}/folio:{}kB/sharers:{}", trigger_name(t), kb, s),
              [t, kb, s](benchmark::State& st) { run(st, t, kb, s); })
            ->Iterations(iterations);
      }
}

}  // namespace

RMAPBENCH_WORKLOAD(thp_split,
                   {.name = "thp_split",
                    .kernel_path = "split_folio -> __folio_split: unmap_folio (try_to_migrate over the anon_vma of "
                                   "every mapper), remap_page; deferred_split_folio / deferred_split_scan",
                    .description = "A region of THPs (PMD size, or an mTHP size made possible through the restoring "
                                   "knob guard) is faulted with a pattern and shared with S forked sharers, so each "
                                   "folio is mapped S+1 times. Timed, per folio: its split by debugfs split_huge_pages "
                                   "(where the kernel is not locked down), by the deferred split shrinker (every mapper "
                                   "MADV_DONTNEEDs one page, then drop_slab runs the shrinkers; the idle drop_slab is "
                                   "subtracted), or by MADV_COLD / MADV_PAGEOUT of a subrange (unshared folios). "
                                   "Oracle: no page of the range is in a large folio in any process (kpageflags, "
                                   "AnonHugePages), every byte intact in every sharer, COW isolation after the split.",
                    .parameters = "sharers: processes besides us mapping the folios (quick 0,4,16; full 0..64); "
                                  "thp_kb: folio size in kB (quick PMD, and 64 for the deferred split only; full PMD and the mTHP "
                                  "sizes 1024..16 for every trigger)",
                    .needs = {{"transparent huge pages", mm::thp::unavailable}},
                    .register_benchmarks = register_thp_split});

}  // namespace rmapbench
