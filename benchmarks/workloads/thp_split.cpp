// THP folio split: splitting a THP (PMD-size or mTHP) mapped by S+1
// processes walks the anon_vma of the folio and, in every mapping, replaces
// the folio's mapping by migration entries and then by PTEs of the new small
// folios (split_folio -> unmap_folio: try_to_migrate over the rmap;
// remap_page). The cost grows with the mappers.
//
// The triggers are the variants (kVariants, each with the note it leaves in
// the results): <debugfs>/split_huge_pages (refused under kernel lockdown),
// the deferred split shrinker run through drop_slab, and MADV_COLD /
// MADV_PAGEOUT of the last page of a folio nobody else maps.
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"

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

using mm::thp::PageExpect;
using mm::thp::ThpRegion;

// The kernel may decline to split a folio where splitting is best-effort
// (Status::declined): the iteration is repeated, up to kAttempts times in all.
constexpr int kAttempts = 3;
// The page each process writes after the split (COW isolation), the page the
// deferred trigger drops.
constexpr long kParentMarks = 1;
constexpr long kChildMarks = 2;

// What a trigger splits: `folios` folios of `region`; the shrinkers' idle
// time (measured just before) and the debugfs file where they are used.
struct Target {
  ThpRegion& region;
  long folios;
  long last;  // the page of each folio MADV_COLD/PAGEOUT/DONTNEED act on
  int64_t idle_ns;
  const std::string& debugfs_path;
};

Result<int64_t> by_debugfs(const Target& t) {
  return mm::thp::debugfs_split(t.debugfs_path, getpid(), t.region.start(), t.region.end(), 0);
}

Result<int64_t> by_shrinker(const Target& t) {
  auto ns = mm::thp::run_shrinkers();
  if (!ns) return ns;
  return std::max<int64_t>(0, *ns - t.idle_ns);
}

Result<int64_t> by_madvise(const Target& t, int advice, const char* what) {
  int64_t ns = 0;
  for (long f = 0; f < t.folios; ++f) {
    const int64_t t0 = mm::monotonic_ns();
    int rc = madvise(t.region.page(f, t.last), mm::page_size(), advice);
    ns += mm::monotonic_ns() - t0;
    if (rc != 0) return Status::from_errno(what);
  }
  return ns;
}
Result<int64_t> by_madv_cold(const Target& t) { return by_madvise(t, MADV_COLD, "madvise(MADV_COLD)"); }
Result<int64_t> by_madv_pageout(const Target& t) { return by_madvise(t, MADV_PAGEOUT, "madvise(MADV_PAGEOUT)"); }

struct Variant {
  const char* name;
  Result<int64_t> (*split)(const Target&);
  const char* note;
  bool deferred;       // every mapper drops a page first; the shrinkers' idle time is subtracted
  bool unshared_only;  // the trigger leaves folios other processes map alone
  bool all_sizes_quick;
};

const Variant kVariants[] = {
    {"debugfs", by_debugfs, "split by <debugfs>/split_huge_pages (pid, range, order 0); timed: the write", false, false,
     false},
    {"deferred_shrinker", by_shrinker,
     "split by the deferred split shrinker: every mapper MADV_DONTNEEDs the last page of each folio, then drop_slab "
     "runs the shrinkers (write 2 to /proc/sys/vm/drop_caches); timed: that write minus the same write with nothing "
     "queued (shrinkers_idle_us)",
     true, false, true},
    {"madv_cold", by_madv_cold,
     "split synchronously by MADV_COLD of the last page of each unshared folio; timed: madvise", false, true, false},
    {"madv_pageout", by_madv_pageout,
     "split synchronously by MADV_PAGEOUT of the last page of each unshared folio; timed: madvise", false, true, false},
};

struct Point {
  long kb, sharers;
};

// One iteration: a fresh region shared with the sharers, split, checked.
// Returns the timed ns; adds the events and counts of a successful one.
Result<int64_t> split_once(harness::Run& run, const Variant& v, const Point& p, long folios, bool corrupt,
                           uint32_t seed, const std::string& debugfs_path, mm::thp::ThpEvents& events) {
  const size_t ps = mm::page_size();
  auto region = ThpRegion::create(static_cast<size_t>(p.kb) * 1024, folios, seed);
  if (!region) return region.status().context("THP region");
  if (Status s = mm::thp::confirm_thps(*region); s.failed()) return Status::skip(s.message());
  // No collapse from here on: khugepaged may otherwise rebuild a THP from a
  // split range (511 present PTEs are within its max_ptes_none) before the
  // oracle looks, and sharers forked below inherit the flag. Existing THPs
  // stay as they are.
  if (Status s = region->forbid_collapse(); s.failed()) return s;
  const long last = region->pages_per_folio() - 1;
  const bool drops = v.deferred;
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

  auto before = mm::thp::read_events(p.kb);
  if (!before) return before.status();
  auto group = mm::ChildGroup::spawn(p.sharers, drops ? mm::ChildGroup::Body([&](long) { return drop_last_pages(); })
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
  int64_t idle_ns = 0;
  auto idle_then_drop = [&]() -> Status {
    idle_ns = INT64_MAX;
    for (int i = 0; i < 3; ++i) {
      auto idle = mm::thp::run_shrinkers();
      if (!idle) return idle.status();
      idle_ns = std::min<int64_t>(idle_ns, *idle);
    }
    return drop_last_pages();
  };
  // The timed operation, with the per-operation counters on.
  int64_t timed_ns = 0;
  auto timed = [&]() -> Status {
    auto ns = v.split({*region, folios, last, idle_ns, debugfs_path});
    if (ns) timed_ns = *ns;
    return ns.status();
  };
  std::vector<std::string> absent;
  auto counts = mm::count_per_op(1, timed, &absent, drops ? idle_then_drop : std::function<Status()>());
  if (!counts) return counts.status();
  auto after = mm::thp::read_events(p.kb);
  if (!after) return after.status();
  const mm::thp::ThpEvents delta = *after - *before;
  if (drops) {
    const long long n = delta.size_split_deferred >= 0 ? delta.size_split_deferred : delta.deferred_split_page;
    if (n < folios)
      return Status::error(fmt::format("only {} of {} folios were queued for deferred split after every mapper "
                                       "dropped a page (hugepages-{}kB/stats/split_deferred, thp_deferred_split_page)",
                                       n, folios, p.kb));
  }

  // Oracle 1: the folios were split, in every process.
  const long long split = delta.size_split >= 0 ? delta.size_split : delta.split_page;
  if (split < folios) {
    const std::string message = fmt::format("{} split only {} of {} folios of {} kB (hugepages-{}kB/stats/split, "
                                            "thp_split_page)",
                                            v.name, split, folios, p.kb, p.kb);
    return v.split == by_debugfs ? Status::error(message) : Status::declined(message);
  }
  std::vector<pid_t> pids = {0};
  pids.insert(pids.end(), group->pids().begin(), group->pids().end());
  if (Status s = mm::thp::check_split(*region, pids); s.failed()) return s;
  // Oracle 2: every byte intact in the benchmark process.
  auto parent_view = [&](bool marked) {
    return region->verify(
        [&](long, long page) {
          if (drops && page == last) return PageExpect::zero;
          if (marked && page == kParentMarks) return PageExpect::marked;
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
  events += delta;
  run.add_counts(*counts, absent);
  run.add("idle_ns", static_cast<double>(idle_ns));
  return timed_ns;
}

void run(benchmark::State& state, const Variant& v, const Point& p) {
  harness::Run run(state, {v.note});
  std::string debugfs_path;
  if (v.split == by_debugfs) {
    auto path = mm::thp::debugfs_split_path();
    if (!path) return run.stop(Status::skip(path.status().message()));
    debugfs_path = *path;
  }
  if (v.deferred && geteuid() != 0)
    return run.stop(Status::skip("needs root: the deferred split shrinker is run through /proc/sys/vm/drop_caches"));
  if (v.unshared_only && p.sharers > 0)
    return run.stop(
        Status::skip("MADV_COLD/MADV_PAGEOUT leave folios that other processes map alone: unshared folios only"));
  const size_t folio_bytes = static_cast<size_t>(p.kb) * 1024;
  if (folio_bytes < 4 * mm::page_size())
    return run.stop(Status::skip(fmt::format("{} kB folios are too small (anonymous THPs start at 4 pages)", p.kb)));
  std::vector<std::string> notes;
  auto guards = mm::thp::allow_size(p.kb, &notes);
  for (auto& n : notes) run.note(std::move(n));
  if (!guards) return run.stop(Status::skip(guards.status().message()));
  const long folios = mm::thp::folios_per_iteration(folio_bytes);
  // No safety::Watchdog here: its thread would put the other CPUs into our
  // mm_cpumask, and every TLB flush of the timed operation (the split walks
  // our mm too) would then IPI them: about 15 us more per flush in a VM.
  // The waits here are on our own children doing bounded work.
  const bool corrupt = mm::test_corruption_requested("thp_split");
  mm::thp::ThpEvents events;
  uint32_t seed = 11;
  const bool timed = run.time(
      [&] { return split_once(run, v, p, folios, corrupt, seed++, debugfs_path, events); }, static_cast<double>(folios),
      kAttempts);
  if (!timed) return;
  const double n = static_cast<double>(std::max(1L, run.iterations()));
  report_metric(state, kFolioSplitUs, run.timed_ns() / 1e3 / n / static_cast<double>(folios));
  if (v.deferred) report_metric(state, kShrinkersIdleUs, run.sum("idle_ns") / 1e3 / n);
  report_metric(state, kSplitDeclined, static_cast<double>(run.declined()) / n);
  mm::thp::report_events(state, events, run.iterations(), p.sharers);
  run.report_counts(static_cast<double>(folios));  // per folio split, like the timing
  run.note(fmt::format("{} folios of {} kB per iteration", folios, p.kb));
  run.finish();
}

// The sizes a sweep registers: PMD first, then the given mTHP sizes below it.
std::vector<long> size_sweep(Registrar& r) {
  const long pmd_kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  std::vector<long> quick = {pmd_kb > 0 ? pmd_kb : 2048, 64};
  std::vector<long> full = quick;
  for (long kb : {1024, 512, 256, 128, 32, 16})
    if (kb < full.front()) full.push_back(kb);
  return r.sweep("thp_kb", quick, full);
}

void register_thp_split(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const std::vector<long> sharers = r.sweep("sharers", {0, 4, 16}, {0, 1, 2, 4, 8, 16, 32, 64});
  const std::vector<long> sizes = size_sweep(r);
  const long pmd_kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  auto points = [&](const Variant& v) {
    std::vector<std::pair<std::string, Point>> out;
    for (long kb : sizes)
      for (long s : sharers) {
        if (v.unshared_only && s != 0) continue;
        // Quick: mTHP sizes only through the deferred split (the path every host has).
        if (quick && kb != pmd_kb && !v.all_sizes_quick) continue;
        out.emplace_back(fmt::format("/folio:{}kB/sharers:{}", kb, s), Point{kb, s});
      }
    return out;
  };
  add_variants(r, kVariants, points, run, quick ? 2 : 20);
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
                                   "subtracted), or by MADV_COLD / MADV_PAGEOUT of a subrange (unshared folios).",
                    .oracle = "no page of the range is in a large folio in any process (kpageflags, AnonHugePages), "
                              "every byte intact in every sharer, COW isolation after the split; no page reads as a KSM "
                              "page (kpageflags: anonymous and KSM folios not confused).",
                    .parameters = "sharers: processes besides us mapping the folios (quick 0,4,16; full 0..64); "
                                  "thp_kb: folio size in kB (quick PMD, and 64 for the deferred split only; full PMD and the mTHP "
                                  "sizes 1024..16 for every trigger)",
                    .needs = {{"transparent huge pages", mm::thp::unavailable}},
                    .register_benchmarks = register_thp_split});

}  // namespace rmapbench
