// Transparent huge pages for the THP workloads: regions whose folios are
// really THPs (PMD-size or mTHP), proof that they are (smaps AnonHugePages,
// /proc/<pid>/pagemap + /proc/kpageflags), the per-size sysfs knobs and
// statistics, and the split triggers user space has:
//
//   - <debugfs>/split_huge_pages "pid,0xstart,0xend[,order]": splits every
//     THP of the range directly; refused under kernel lockdown;
//   - the deferred split shrinker: a folio some of whose pages no process
//     maps any more (MADV_DONTNEED of a subrange in every mapper) is queued on
//     the deferred split list; the shrinker splits it. Without debugfs the
//     shrinkers run from user space through drop_slab(), i.e. writing 2 to
//     /proc/sys/vm/drop_caches (which also frees unused dentries and inodes
//     host-wide, and logs one "drop_caches: 2" line to the kernel log);
//   - MADV_COLD / MADV_PAGEOUT of a subrange of a folio no other process maps:
//     madvise splits it synchronously (folios mapped by others are skipped).
#pragma once

#include <benchmark/benchmark.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "kernels/status.hpp"
#include "kernels/safety/knob_guard.hpp"

namespace rmapbench::mm::thp {

inline constexpr const char* kThpDir = "/sys/kernel/mm/transparent_hugepage";

// ------------------------------------------------------------ sizes, knobs

// hpage_pmd_size (bytes); 0 when the kernel has no THP.
size_t pmd_size();
// Folios a THP workload splits per iteration: about 32 MiB, at least 16,
// at most 256. Many, because the first split after the oracles' untimed work
// (reading the region, smaps, a forked checker) pays for colder caches: in a
// bare C loop on a 2-CPU VM, reading the region back between iterations made
// the PMD splits of the next one 9-28% slower with 4 THPs per iteration, and
// 2-4% slower with 16.
long folios_per_iteration(size_t folio_bytes);
// Why this kernel cannot run a THP workload, for a workload's `needs`.
std::optional<std::string> unavailable();
// The folio sizes sysfs lists (hugepages-<kb>kB), ascending, in kB.
std::vector<long> listed_sizes_kb();
// "/sys/kernel/mm/transparent_hugepage/hugepages-64kB"
std::string size_dir(long kb);

// The mode that applies to MADV_HUGEPAGE regions for a size: the size's own
// `enabled` ("always", "madvise", "never"), with "inherit" resolved to the
// top-level `enabled`. Pure: the two knob values in, the mode out.
std::string effective_mode(const std::string& size_enabled, const std::string& top_enabled);

// Makes folios of `kb` possible in MADV_HUGEPAGE regions: when the size's
// effective mode is "never", its `enabled` is set to "madvise" through a
// KnobGuard (restored when the returned guards die). `notes` gets what was
// changed. Fails with the reason (size not listed, knob refused).
Result<std::vector<safety::KnobGuard>> allow_size(long kb, std::vector<std::string>* notes);

// hugepages-<kb>kB/stats/* (split, split_deferred, split_failed, nr_anon,
// ...): name -> value. Empty map when the kernel has no per-size stats.
std::map<std::string, long long> size_stats(long kb);

// THP event counts: /proc/vmstat (thp_split_pmd, thp_split_page,
// thp_deferred_split_page: PMD-size folios) and the size's own stats (split,
// split_deferred: any size; -1 when the kernel has no per-size stats).
struct ThpEvents {
  long long split_pmd = 0, split_page = 0, deferred_split_page = 0;
  long long size_split = -1, size_split_deferred = -1;
  long samples = 0;  // deltas summed into this one (operator+=)
};
Result<ThpEvents> read_events(long kb);
// after - before, field by field (-1 stays -1).
ThpEvents operator-(const ThpEvents& after, const ThpEvents& before);
// Sums deltas (-1 in either stays -1).
ThpEvents& operator+=(ThpEvents& sum, const ThpEvents& delta);
// Reports `sum` / `iterations` as the counters thp_split_pmd, thp_split_page,
// thp_deferred_split_page, size_split, size_split_deferred, plus sharers.
void report_events(benchmark::State& state, const ThpEvents& sum, long iterations, long sharers);

// ------------------------------------------------------------ pure parsers

// Sum of "AnonHugePages:" (kB) over the VMAs of `smaps` text (the format of
// /proc/<pid>/smaps) that overlap [start, end). smaps accounts per VMA, so a
// VMA that only partly overlaps counts whole: callers map their range as
// VMAs of its own. Malformed text is an error.
Result<long long> parse_smaps_anon_huge_kb(std::string_view smaps, uintptr_t start, uintptr_t end);

// ------------------------------------------------------------ probes

// AnonHugePages (kB) of `pid`'s VMAs overlapping [start, start + len).
Result<long long> anon_huge_kb(pid_t pid, uintptr_t start, size_t len);

// ------------------------------------------------------------ the region

// What a page of a ThpRegion must hold when verified.
enum class PageExpect {
  pattern,  // the region's pattern, every byte
  zero,     // dropped (MADV_DONTNEED): reads back as zeros
  marked,   // first 8 bytes a marker word (written by mark()), the rest the pattern
  skip,     // not looked at (unmapped or irrelevant)
};

// `count` folios of `folio_bytes` each, private anonymous, MADV_HUGEPAGE,
// every byte written (each first touch faults one folio). The PMD size is one
// VMA, aligned; a smaller (mTHP) size gets one VMA per folio, aligned to it and
// separated by PROT_NONE holes, so no larger order fits and the fault takes
// exactly that size. PROT_NONE guards surround the region either way, so it
// never merges with a neighbouring VMA.
class ThpRegion {
 public:
  static Result<ThpRegion> create(size_t folio_bytes, long count, uint32_t seed);
  ThpRegion(ThpRegion&&) noexcept;
  ThpRegion& operator=(ThpRegion&&) = delete;
  ThpRegion(const ThpRegion&) = delete;
  ThpRegion& operator=(const ThpRegion&) = delete;
  ~ThpRegion();

  size_t folio_bytes() const { return folio_bytes_; }
  long count() const { return count_; }
  long pages_per_folio() const;
  char* folio(long i) const { return base_ + static_cast<size_t>(i) * stride_; }
  char* page(long folio_index, long page_index) const;
  // [start, end) covering every folio (holes included, for smaps).
  uintptr_t start() const { return reinterpret_cast<uintptr_t>(base_); }
  uintptr_t end() const { return start() + static_cast<size_t>(count_ - 1) * stride_ + folio_bytes_; }
  // One range per folio (for census()).
  std::vector<std::pair<uintptr_t, size_t>> folio_ranges() const;

  // Every page holds what `expect(folio, page)` says; the first difference is
  // the error, naming `who`, the folio, page and byte.
  Status verify(const std::function<PageExpect(long folio, long page)>& expect, const std::string& who) const;
  // Writes the marker word at the start of one page (a COW fault when shared).
  void mark(long folio_index, long page_index);
  // Test hook: flips one byte of one page (for the oracle tests).
  void corrupt_one_byte_for_test(long folio_index, long page_index);
  // MADV_NOHUGEPAGE on the region: khugepaged must not collapse what a
  // benchmark just split before its oracle looked.
  Status forbid_collapse();

 private:
  ThpRegion() = default;
  uint64_t word(long folio_index, long page_index, size_t w) const;
  uint64_t marker(long folio_index, long page_index) const;
  char* reservation_ = nullptr;
  size_t reservation_bytes_ = 0;
  char* base_ = nullptr;
  size_t folio_bytes_ = 0;
  size_t stride_ = 0;
  long count_ = 0;
  uint32_t seed_ = 0;
};

// Checks that every folio of `region` is a THP of its size in this process:
// kpageflags (every page THP, one head per folio) where readable, and for the
// PMD size also smaps AnonHugePages. The error is the skip reason ("no THP
// after the fault: ...", with the knobs that matter).
Status confirm_thps(const ThpRegion& region);

// The split oracle: no page of the region is in a large folio any more in any
// of `pids` (0 = us; kpageflags where readable) and, for the PMD size, no
// AnonHugePages remain in their ranges. The error names the process.
Status check_split(const ThpRegion& region, const std::vector<pid_t>& pids);

// The COW oracle after a split: we write page `parent_marks` of every folio
// and must see our write (`parent_view(true)`), while a sharer must not. The
// sharer is one of `sharers` or, when that group is empty, one checker forked
// now, after the split, running `late_check`. Releases the groups.
Status check_cow_isolation(ThpRegion& region, long parent_marks, ChildGroup& sharers,
                           const ChildGroup::Body& late_check, const std::function<Status(bool marked)>& parent_view);

// ------------------------------------------------------------ triggers

// Runs the shrinkers once (drop_slab through /proc/sys/vm/drop_caches = 2),
// which includes the deferred split shrinker. Returns the write's duration (ns).
Result<int64_t> run_shrinkers();

// Writes "pid,0xstart,0xend,order" to <debugfs>/split_huge_pages. Returns the
// write's duration (ns).
Result<int64_t> debugfs_split(const std::string& split_huge_pages_path, pid_t pid, uintptr_t start, uintptr_t end,
                              int order);
// <debugfs>/split_huge_pages of this host, or the reason it cannot be used
// (lockdown, debugfs not mounted, not writable).
Result<std::string> debugfs_split_path();

}  // namespace rmapbench::mm::thp
