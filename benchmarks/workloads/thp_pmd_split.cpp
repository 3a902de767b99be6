// PMD split alone: one base page of a PMD-mapped THP changes (mprotect,
// munmap, MADV_DONTNEED), so the kernel replaces that process's PMD mapping
// by a page table of PTEs (__split_huge_pmd), but the folio stays whole and
// the other mappers keep their PMDs. No rmap walk: the cost should not grow
// with the sharers, unlike the folio split (thp_split).
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <optional>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kPmdSplitUs, {"pmd_split_us", "us", Better::lower, MetricKind::statistical,
                               "one PMD mapping split by the operation (its VMA split included for mprotect/munmap)"});

namespace {

using mm::thp::PageExpect;
using mm::thp::ThpRegion;

constexpr long kOpPage = 1;       // the page each operation changes
constexpr long kChildMarks = 2;   // sharer 0 writes this page after the split
constexpr long kParentMarks = 3;  // we write this one

int change_protection(char* page) { return mprotect(page, mm::page_size(), PROT_READ); }
int unmap(char* page) { return munmap(page, mm::page_size()); }
int zap(char* page) { return madvise(page, mm::page_size(), MADV_DONTNEED); }

struct Variant {
  const char* name;
  int (*operation)(char* page);  // on one base page inside a THP
  const char* note;
  bool quick;  // in the quick profile too
  PageExpect op_page_after;  // what a process forked after the operation sees at kOpPage
};

const Variant kVariants[] = {
    {"mprotect", change_protection,
     "timed: mprotect(PROT_READ) of one base page inside each THP (PMD split plus the VMA split into three)", true,
     PageExpect::pattern},
    {"munmap", unmap, "timed: munmap of one base page inside each THP (PMD split plus the VMA split)", false,
     PageExpect::skip},
    {"madv_dontneed", zap,
     "timed: MADV_DONTNEED of one base page inside each THP (PMD split and one PTE zapped, no VMA split)", true,
     PageExpect::zero},
};

// One iteration: fresh THPs shared with the sharers, one base page of each
// changed, checked. Returns the timed ns; adds the events and counts.
Result<int64_t> split_pmds_once(harness::Run& run, const Variant& v, long folios, long sharers, bool corrupt,
                                uint32_t seed, mm::thp::ThpEvents& events) {
  const size_t pmd = mm::thp::pmd_size();
  const long kb = static_cast<long>(pmd / 1024);
  auto region = ThpRegion::create(pmd, folios, seed);
  if (!region) return region.status().context("THP region");
  if (Status s = mm::thp::confirm_thps(*region); s.failed()) return Status::skip(s.message());
  // No collapse from here on: khugepaged may otherwise rebuild a THP from a
  // range whose PMD was split (its PTEs all present) before the
  // oracle looks, and sharers forked below inherit the flag. Existing THPs
  // stay as they are.
  if (Status s = region->forbid_collapse(); s.failed()) return s;
  ThpRegion* shared = &*region;

  // A sharer forked before the operation still has every page; one forked
  // after it inherits our hole (munmap) or our zapped page (DONTNEED).
  auto sharer_check = [shared, corrupt, &v](bool forked_after) {
    return [shared, corrupt, &v, forked_after](long i) -> Status {
      if (corrupt && i == 0) shared->corrupt_one_byte_for_test(0, 5);
      if (i == 0)
        for (long f = 0; f < shared->count(); ++f) shared->mark(f, kChildMarks);
      return shared->verify(
          [&](long, long p) {
            if (p == kOpPage && forked_after) return v.op_page_after;
            if (i == 0 && p == kChildMarks) return PageExpect::marked;
            return PageExpect::pattern;
          },
          fmt::format("sharer {} after the PMD split", i));
    };
  };
  auto group = mm::ChildGroup::spawn(sharers, {}, sharer_check(false));
  if (!group) return group.status();

  auto before = mm::thp::read_events(kb);
  if (!before) return before.status();
  int64_t ns = 0;
  auto timed = [&]() -> Status {
    for (long f = 0; f < folios; ++f) {
      const int64_t t0 = mm::monotonic_ns();
      int rc = v.operation(region->page(f, kOpPage));
      ns += mm::monotonic_ns() - t0;
      if (rc != 0) return Status::from_errno(v.name);
    }
    return Status::ok();
  };
  std::vector<std::string> absent;
  auto counts = mm::count_per_op(1, timed, &absent);
  if (!counts) return counts.status();
  auto after = mm::thp::read_events(kb);
  if (!after) return after.status();
  const mm::thp::ThpEvents delta = *after - *before;

  // Oracle 1: our PMDs were split, the folios were not; the sharers keep
  // their PMD mappings.
  if (delta.split_pmd < folios)
    return Status::error(
        fmt::format("{} split {} of {} PMD mappings (thp_split_pmd)", v.name, delta.split_pmd, folios));
  auto huge = mm::thp::anon_huge_kb(0, region->start(), region->end() - region->start());
  if (!huge) return huge.status();
  if (*huge != 0)
    return Status::error(fmt::format("after {} the benchmark process still maps AnonHugePages {} kB with PMDs",
                                     v.name, *huge));
  for (long i = 0; i < sharers; ++i) {
    const pid_t pid = group->pids()[static_cast<size_t>(i)];
    auto h = mm::thp::anon_huge_kb(pid, region->start(), region->end() - region->start());
    if (!h) return h.status();
    if (*h != folios * kb)
      return Status::error(fmt::format("sharer {} (pid {}) lost its PMD mappings: AnonHugePages {} of {} kB after our "
                                       "{}",
                                       i, pid, *h, folios * kb, v.name));
  }
  if (!mm::census_unavailable()) {
    auto c = mm::census({0}, region->folio_ranges());
    if (!c) return c.status();
    if (Status s = mm::check_never_merged(*c, [](size_t) { return std::string("the benchmark process"); },
                                          fmt::format("after {}", v.name));
        s.failed())
      return s;
    const mm::FolioCensus& got = c->front();
    if (got.thp_pages != got.present || got.thp_heads != folios)
      return Status::error(fmt::format("{} split the folios themselves: {} of {} mapped pages still in THPs, {} of {} "
                                       "heads (kpageflags); only the PMD mappings should split",
                                       v.name, got.thp_pages, got.present, got.thp_heads, folios));
  }
  // Oracle 2: every byte intact; oracle 3: COW isolation after the split.
  auto parent_view = [&](bool marked) {
    return region->verify(
        [&](long, long p) {
          if (p == kOpPage) return v.op_page_after;
          if (marked && p == kParentMarks) return PageExpect::marked;
          return PageExpect::pattern;
        },
        marked ? "benchmark process after its COW write" : "benchmark process after the PMD split");
  };
  if (Status s = parent_view(false); s.failed()) return s;
  if (Status s = mm::thp::check_cow_isolation(*region, kParentMarks, *group, sharer_check(true), parent_view);
      s.failed())
    return s;
  events += delta;
  run.add_counts(*counts, absent);
  return ns;
}

void run(benchmark::State& state, const Variant& v, const long& sharers) {
  harness::Run run(state, {v.note});
  const long kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  const long folios = mm::thp::folios_per_iteration(mm::thp::pmd_size());
  std::vector<std::string> notes;
  auto guards = mm::thp::allow_size(kb, &notes);
  for (auto& n : notes) run.note(std::move(n));
  if (!guards) return run.stop(Status::skip(guards.status().message()));
  // No safety::Watchdog here: its thread would put the other CPUs into our
  // mm_cpumask, and every TLB flush of the timed operation (the split walks
  // our mm too) would then IPI them: about 15 us more per flush in a VM.
  // The waits here are on our own children doing bounded work.
  const bool corrupt = mm::test_corruption_requested("thp_pmd_split");
  mm::thp::ThpEvents events;
  uint32_t seed = 23;
  if (!run.time([&] { return split_pmds_once(run, v, folios, sharers, corrupt, seed++, events); },
                static_cast<double>(folios)))
    return;
  const double per = static_cast<double>(std::max(1L, run.iterations()) * folios);
  report_metric(state, kPmdSplitUs, run.timed_ns() / 1e3 / per);
  mm::thp::report_events(state, events, run.iterations(), sharers);
  run.report_counts(static_cast<double>(folios));
  run.note(fmt::format("{} THPs of {} kB per iteration", folios, kb));
  run.finish();
}

void register_thp_pmd_split(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const std::vector<long> sharers = r.sweep("sharers", {0, 16}, {0, 1, 2, 4, 8, 16, 32, 64});
  auto points = [&](const Variant& v) {
    std::vector<std::pair<std::string, long>> out;
    if (quick && !v.quick) return out;
    for (long s : sharers) out.emplace_back(fmt::format("/sharers:{}", s), s);
    return out;
  };
  add_variants(r, kVariants, points, run, quick ? 2 : 20);
}

}  // namespace

RMAPBENCH_WORKLOAD(thp_pmd_split,
                   {.name = "thp_pmd_split",
                    .kernel_path = "__split_huge_pmd -> __split_huge_pmd_locked (PMD mapping to PTEs; the folio stays "
                                   "whole), via change_protection / zap_pmd_range / __split_vma",
                    .description = "PMD-mapped THPs (32 MiB of them) faulted with a pattern and shared with S forked "
                                   "sharers. "
                                   "Timed, per THP: mprotect(PROT_READ), munmap or MADV_DONTNEED of one base page "
                                   "inside it, which splits only our PMD mapping.",
                    .oracle = "our range has no AnonHugePages left, every sharer still maps its PMDs, the folios are "
                              "still whole and none reads as KSM (kpageflags), every byte intact everywhere, COW isolation "
                              "after the split.",
                    .parameters = "sharers: processes besides us mapping the THPs (quick 0,16; full 0..64); operations: quick "
                                  "mprotect and madv_dontneed, full also munmap",
                    .needs = {{"transparent huge pages", mm::thp::unavailable}},
                    .register_benchmarks = register_thp_pmd_split});

}  // namespace rmapbench
