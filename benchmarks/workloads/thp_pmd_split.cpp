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

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"
#include "benchmarks/registry.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kPmdSplitUs, {"pmd_split_us", "us", Better::lower, MetricKind::statistical,
                               "one PMD mapping split by the operation (its VMA split included for mprotect/munmap)"});

namespace {

using mm::thp::PageExpect;
using mm::thp::ThpRegion;

enum class Op { mprotect, munmap, madv_dontneed };

const char* op_name(Op op) {
  switch (op) {
    case Op::mprotect: return "mprotect";
    case Op::munmap: return "munmap";
    case Op::madv_dontneed: return "madv_dontneed";
  }
  return "?";
}

const char* op_note(Op op) {
  switch (op) {
    case Op::mprotect:
      return "timed: mprotect(PROT_READ) of one base page inside each THP (PMD split plus the VMA split into three)";
    case Op::munmap: return "timed: munmap of one base page inside each THP (PMD split plus the VMA split)";
    case Op::madv_dontneed:
      return "timed: MADV_DONTNEED of one base page inside each THP (PMD split and one PTE zapped, no VMA split)";
  }
  return "";
}

constexpr int kSkipErr = -4242;
constexpr long kOpPage = 1;       // the page each operation changes
constexpr long kChildMarks = 2;   // sharer 0 writes this page after the split
constexpr long kParentMarks = 3;  // we write this one

struct Sample {
  int64_t ns = 0;
  mm::thp::ThpEvents events;
  mm::OpCounts counts;
  std::vector<std::string> absent;
};

Result<Sample> split_pmds_once(Op op, long folios, long sharers, bool corrupt, uint32_t seed) {
  const size_t ps = mm::page_size();
  const size_t pmd = mm::thp::pmd_size();
  const long kb = static_cast<long>(pmd / 1024);
  auto region = ThpRegion::create(pmd, folios, seed);
  if (!region) return region.status().context("THP region");
  if (Status s = mm::thp::confirm_thps(*region); s.failed()) return Status::error(s.message(), kSkipErr);
  // No collapse from here on: khugepaged may otherwise rebuild a THP from a
  // range whose PMD was split (its PTEs all present) before the
  // oracle looks, and sharers forked below inherit the flag. Existing THPs
  // stay as they are.
  if (Status s = region->forbid_collapse(); s.failed()) return s;
  ThpRegion* shared = &*region;

  // A sharer forked before the operation still has every page; one forked
  // after it inherits our hole (munmap) or our zapped page (DONTNEED).
  auto sharer_check = [shared, corrupt, op](bool forked_after) {
    return [shared, corrupt, op, forked_after](long i) -> Status {
      if (corrupt && i == 0) shared->corrupt_one_byte_for_test(0, 5);
      if (i == 0)
        for (long f = 0; f < shared->count(); ++f) shared->mark(f, kChildMarks);
      return shared->verify(
          [&](long, long p) {
            if (p == kOpPage && forked_after && op == Op::munmap) return PageExpect::skip;
            if (p == kOpPage && forked_after && op == Op::madv_dontneed) return PageExpect::zero;
            if (i == 0 && p == kChildMarks) return PageExpect::marked;
            return PageExpect::pattern;
          },
          fmt::format("sharer {} after the PMD split", i));
    };
  };
  auto group = mm::ChildGroup::spawn(sharers, {}, sharer_check(false));
  if (!group) return group.status();

  Sample sample;
  auto before = mm::thp::read_events(kb);
  if (!before) return before.status();
  auto timed = [&]() -> Status {
    for (long f = 0; f < folios; ++f) {
      char* p = region->page(f, kOpPage);
      int rc = 0;
      const int64_t t0 = mm::monotonic_ns();
      switch (op) {
        case Op::mprotect: rc = mprotect(p, ps, PROT_READ); break;
        case Op::munmap: rc = munmap(p, ps); break;
        case Op::madv_dontneed: rc = madvise(p, ps, MADV_DONTNEED); break;
      }
      sample.ns += mm::monotonic_ns() - t0;
      if (rc != 0) return Status::from_errno(op_name(op));
    }
    return Status::ok();
  };
  auto counts = mm::count_per_op(1, timed, &sample.absent);
  if (!counts) return counts.status();
  sample.counts = *counts;
  auto after = mm::thp::read_events(kb);
  if (!after) return after.status();
  sample.events = *after - *before;

  // Oracle 1: our PMDs were split, the folios were not; the sharers keep
  // their PMD mappings.
  if (sample.events.split_pmd < folios)
    return Status::error(fmt::format("{} split {} of {} PMD mappings (thp_split_pmd)", op_name(op),
                                     sample.events.split_pmd, folios));
  auto huge = mm::thp::anon_huge_kb(0, region->start(), region->end() - region->start());
  if (!huge) return huge.status();
  if (*huge != 0)
    return Status::error(fmt::format("after {} the benchmark process still maps AnonHugePages {} kB with PMDs",
                                     op_name(op), *huge));
  for (long i = 0; i < sharers; ++i) {
    const pid_t pid = group->pids()[static_cast<size_t>(i)];
    auto h = mm::thp::anon_huge_kb(pid, region->start(), region->end() - region->start());
    if (!h) return h.status();
    if (*h != folios * kb)
      return Status::error(fmt::format("sharer {} (pid {}) lost its PMD mappings: AnonHugePages {} of {} kB after our "
                                       "{}",
                                       i, pid, *h, folios * kb, op_name(op)));
  }
  if (!mm::thp::census_unavailable()) {
    auto c = mm::thp::census({0}, region->folio_ranges());
    if (!c) return c.status();
    const mm::thp::FolioCensus& got = c->front();
    if (got.thp_pages != got.present || got.thp_heads != folios)
      return Status::error(fmt::format("{} split the folios themselves: {} of {} mapped pages still in THPs, {} of {} "
                                       "heads (kpageflags); only the PMD mappings should split",
                                       op_name(op), got.thp_pages, got.present, got.thp_heads, folios));
  }
  // Oracle 2: every byte intact; oracle 3: COW isolation after the split.
  auto parent_view = [&](bool marked) {
    return region->verify(
        [&](long, long p) {
          if (p == kOpPage && op == Op::munmap) return PageExpect::skip;
          if (p == kOpPage && op == Op::madv_dontneed) return PageExpect::zero;
          if (marked && p == kParentMarks) return PageExpect::marked;
          return PageExpect::pattern;
        },
        marked ? "benchmark process after its COW write" : "benchmark process after the PMD split");
  };
  if (Status s = parent_view(false); s.failed()) return s;
  if (Status s = mm::thp::check_cow_isolation(*region, kParentMarks, *group, sharer_check(true), parent_view);
      s.failed())
    return s;
  return sample;
}

void run(benchmark::State& state, Op op, long sharers) {
  const bool corrupt = mm::test_corruption_requested("thp_pmd_split");
  std::vector<std::string> notes = {op_note(op)};
  const long kb = static_cast<long>(mm::thp::pmd_size() / 1024);
  const long folios = mm::thp::folios_per_iteration(mm::thp::pmd_size());
  auto guards = mm::thp::allow_size(kb, &notes);
  if (!guards) return skip(state, guards.status().message());
  // No safety::Watchdog here: its thread would put the other CPUs into our
  // mm_cpumask, and every TLB flush of the timed operation (the split walks
  // our mm too) would then IPI them: about 15 us more per flush in a VM.
  // The waits here are on our own children doing bounded work.
  double ns = 0;
  mm::thp::ThpEvents events;
  mm::OpCounts counts{0, 0, 0, 0};
  std::vector<std::string> absent;
  long iterations = 0;
  uint32_t seed = 23;
  for (auto _ : state) {
    auto s = split_pmds_once(op, folios, sharers, corrupt, seed++);
    if (!s) {
      if (s.status().err() == kSkipErr) skip(state, s.status().message());
      else fail(state, s.status().message());
      break;
    }
    state.SetIterationTime(static_cast<double>(s->ns) / 1e9 / static_cast<double>(folios));
    ns += static_cast<double>(s->ns);
    events += s->events;
    counts.page_faults += s->counts.page_faults;
    counts.context_switches += s->counts.context_switches;
    counts.cpu_migrations += s->counts.cpu_migrations;
    counts.sys_us += s->counts.sys_us;
    if (!s->absent.empty()) absent = s->absent;
    ++iterations;
  }
  if (state.error_occurred()) return;
  const double per = static_cast<double>(std::max(1L, iterations) * folios);
  report_metric(state, kPmdSplitUs, ns / 1e3 / per);
  mm::thp::report_events(state, events, iterations, sharers);
  const bool perf = absent.empty();
  mm::report_op_counts(state, {perf ? counts.page_faults / per : -1, perf ? counts.context_switches / per : -1,
                               perf ? counts.cpu_migrations / per : -1, counts.sys_us / per});
  notes.push_back(fmt::format("{} THPs of {} kB per iteration", folios, kb));
  notes.insert(notes.end(), absent.begin(), absent.end());
  set_notes(state, notes);
}

void register_thp_pmd_split(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const int iterations = quick ? 2 : 20;
  const std::vector<Op> ops = quick ? std::vector<Op>{Op::mprotect, Op::madv_dontneed}
                                    : std::vector<Op>{Op::mprotect, Op::munmap, Op::madv_dontneed};
  for (Op op : ops)
    for (long s : r.sweep("sharers", {0, 16}, {0, 1, 2, 4, 8, 16, 32, 64}))
      r.add(fmt::format("thp_pmd_split/{}/sharers:{}", op_name(op), s),
            [op, s](benchmark::State& st) { run(st, op, s); })
          ->Iterations(iterations);
}

}  // namespace

RMAPBENCH_WORKLOAD(thp_pmd_split,
                   {.name = "thp_pmd_split",
                    .kernel_path = "__split_huge_pmd -> __split_huge_pmd_locked (PMD mapping to PTEs; the folio stays "
                                   "whole), via change_protection / zap_pmd_range / __split_vma",
                    .description = "PMD-mapped THPs (32 MiB of them) faulted with a pattern and shared with S forked "
                                   "sharers. "
                                   "Timed, per THP: mprotect(PROT_READ), munmap or MADV_DONTNEED of one base page "
                                   "inside it, which splits only our PMD mapping. Oracle: our range has no "
                                   "AnonHugePages left, every sharer still maps its PMDs, the folios are still whole "
                                   "(kpageflags), every byte intact everywhere, COW isolation after the split.",
                    .parameters = "sharers: processes besides us mapping the THPs (quick 0,16; full 0..64); operations: quick "
                                  "mprotect and madv_dontneed, full also munmap",
                    .needs = {{"transparent huge pages", mm::thp::unavailable}},
                    .register_benchmarks = register_thp_pmd_split});

}  // namespace rmapbench
