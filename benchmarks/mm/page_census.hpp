// What backs the pages of a range, page by page: /proc/<pid>/pagemap gives
// each page's frame, /proc/kpageflags the frame's flags (THP, compound head,
// KSM). THP workloads check that folios were split (or not); KSM counts the
// KSM pages each process maps and the distinct KSM pages behind them.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::mm {

// /proc/self/<file> for pid 0, else /proc/<pid>/<file>.
std::string proc_file(pid_t pid, const char* file);

// /proc/<pid>/pagemap entry (fs/proc/task_mmu.c).
struct PagemapEntry {
  bool present = false;
  bool swapped = false;
  uint64_t pfn = 0;  // 0 when not present, or when PFNs are hidden (not CAP_SYS_ADMIN)
};
PagemapEntry decode_pagemap(uint64_t raw);

// The pagemap entries of `ranges` (start, bytes) in process `pid` (0 = us),
// page by page, in order. A present page whose frame number reads 0 is an
// error: PFNs are hidden from a caller without CAP_SYS_ADMIN.
Result<std::vector<PagemapEntry>> pagemap_entries(pid_t pid, const std::vector<std::pair<uintptr_t, size_t>>& ranges);
// /proc/kpageflags of one frame.
Result<uint64_t> kpageflags(uint64_t pfn);

// /proc/kpageflags bits (include/uapi/linux/kernel-page-flags.h).
inline constexpr uint64_t kKpfCompoundHead = 1ull << 15;
inline constexpr uint64_t kKpfCompoundTail = 1ull << 16;
inline constexpr uint64_t kKpfHwpoison = 1ull << 19;
inline constexpr uint64_t kKpfKsm = 1ull << 21;
inline constexpr uint64_t kKpfThp = 1ull << 22;

// What the pages of a range are backed by.
struct FolioCensus {
  long pages = 0;        // pages looked at
  long present = 0;      // mapped (pagemap present bit)
  long thp_pages = 0;    // part of a THP / mTHP folio (KPF_THP)
  long thp_heads = 0;    // first page of such a folio (KPF_THP + KPF_COMPOUND_HEAD)
  long ksm_pages = 0;    // KSM pages (KPF_KSM)
};
// Counts one page given its kpageflags (nullopt: not present).
void census_add(FolioCensus& c, std::optional<uint64_t> kpageflags);

// The census of `ranges` (start, bytes) in each process of `pids` (0 = us),
// from /proc/<pid>/pagemap and /proc/kpageflags (root: PFNs are hidden from
// others). Flags of a PFN are read once for all processes.
Result<std::vector<FolioCensus>> census(const std::vector<pid_t>& pids,
                                        const std::vector<std::pair<uintptr_t, size_t>>& ranges);
// The number of distinct KSM page frames (KPF_KSM) backing range i of process
// i, over all i: the KSM pages these processes map, however many map each.
// Same needs as census().
Result<long> distinct_ksm_frames(const std::vector<pid_t>& pids, const std::vector<std::pair<uintptr_t, size_t>>& ranges);
// kpageflags consistency: pages this run never offered to KSM must not read
// as KSM pages (KPF_KSM). Anonymous and KSM folios are told apart by the low
// bits of folio->mapping, which anon_vma redesigns reuse (a lazy anon_vma
// tagged with the KSM bit); a kernel that confuses the two is caught by every
// workload that takes a census. `who(k)` names process k of the census.
Status check_never_merged(const std::vector<FolioCensus>& census, const std::function<std::string(size_t)>& who,
                          const std::string& when);
// Gives this process a private copy of every KSM page it maps; returns how
// many. It maps KSM pages it never offered: an agent forked from it that
// turns on PR_SET_MEMORY_MERGE makes mergeable the anonymous pages it still
// shares with us by COW, and KSM turns such a page into a KSM page in place
// - in our page tables too. No rmap_item of ours points at it, so run=2 does
// not unmerge it, and while it stays mapped KSM refuses max_page_sharing
// (EBUSY; about 1 of 10 quick ksm_merge runs until 2026-12). Each such
// page's first byte is written back through /proc/self/mem (FOLL_FORCE:
// read-only mappings such as RELRO too), which breaks the COW without
// opting us into KSM. A mapping too large to read page by page (a
// sanitizer's shadow: terabytes) is not searched; `too_large` counts those
// smaps says hold KSM pages. (Opting the process in and out again with
// PR_SET_MEMORY_MERGE would unmerge them, but the kernel then breaks KSM
// address by address over the whole shadow: minutes of system time.)
// Needs what census() needs; without it, 0.
struct Unshared {
  long pages = 0;      // KSM pages copied
  long too_large = 0;  // mappings with KSM pages not searched
};
Result<Unshared> unshare_own_ksm_pages();

// The private mappings of a /proc/<pid>/smaps text that can hold KSM pages,
// file-backed ones too: KSM merges the anonymous (COWed) pages of any
// private mapping that is mergeable, and PR_SET_MEMORY_MERGE makes a
// process's .data and its libraries' mergeable. Left out: [vsyscall]
// (outside what pagemap reads), mappings with nothing resident, those
// whose smaps "KSM:" line says 0 kB, and those larger than kScanLimit,
// which `too_large_with_ksm` (if given) counts when they hold KSM pages.
inline constexpr size_t kKsmScanLimit = size_t{1} << 30;
std::vector<std::pair<uintptr_t, size_t>> ksm_candidate_ranges(const std::string& smaps, long* too_large_with_ksm = nullptr);
// Every process that maps KSM pages now, by pagemap and kpageflags (needs
// root), with its comm and how many: who keeps KSM from changing
// max_page_sharing (EBUSY while any KSM page is mapped). Processes that
// exit while they are looked at are left out.
struct KsmPageHolder {
  pid_t pid = 0;
  std::string comm;
  long ksm_pages = 0;
};
Result<std::vector<KsmPageHolder>> ksm_page_holders();
// Why census() cannot work here, or nullopt when it can.
std::optional<std::string> census_unavailable();

}  // namespace rmapbench::mm
