// Page migration between NUMA nodes, the way user space asks for it:
// move_pages(2) of a range, mbind(2) with MPOL_MF_MOVE(_ALL), migrate_pages(2)
// of a whole process. Each replaces every mapping of a folio by a migration
// entry (try_to_migrate: an rmap walk over every mapper), copies the folio,
// and restores the mappings (remove_migration_ptes: the walk again). So the
// cost grows with the mappers, and a walk that misses one leaves the folio
// mapped: the kernel cannot move it, and says so only as an errno per page
// (move_pages status) or a count (a positive return). Nothing here counts a
// page as moved unless the kernel put it on the target node.
//
// Also: /proc/vmstat's migration counters, the migration-entry tracepoints
// (one event per mapping replaced and per mapping restored: an oracle on the
// rmap walk itself), the page frames behind a range per process, and a
// scoped allocation policy to lay out a range on a chosen node.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kernels/perf/perf_events.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm::migration {

// ------------------------------------------------------------ pure

// "EBUSY" for EBUSY (or -EBUSY); "errno N" for one this suite does not name.
std::string errno_name(int err);

// A move_pages(2) status array decoded: how many pages are on `target`, on
// another node, or not moved with which negative errno (-EBUSY, -EAGAIN,
// -ENOENT, -EFAULT, -EACCES, -ENOMEM...).
struct MoveOutcome {
  long pages = 0, on_target = 0, elsewhere = 0;
  std::map<int, long> not_moved_by_errno;  // negative errno -> pages
  int target = -1;
  // move_pages(2) returns how many pages it could not migrate, and leaves
  // their statuses unwritten (mm/migrate.c do_pages_move): where they are is
  // then looked up again (elsewhere); this is the count the kernel gave.
  long kernel_not_migrated = 0;

  long not_moved() const { return pages - on_target; }
  bool all_moved() const { return pages > 0 && on_target == pages; }
  // "64 of 64 pages on node 1", or "3 of 64 pages not moved to node 1: 2
  // EBUSY, 1 EAGAIN" (+ ", 4 still on another node", + "; the kernel reported
  // 4 pages it could not migrate").
  std::string summary() const;
};
MoveOutcome decode_statuses(const std::vector<int>& status, int target);

// Frames of one range in several processes, page by page (0: not present).
// "" when every page is present with one frame shared by all, else the first
// page that differs, naming the processes (`who[k]` for row k).
std::string frame_disagreement(const std::vector<std::vector<uint64_t>>& frames, const std::vector<std::string>& who);

// /proc/vmstat's migration counters (pgmigrate_success/fail count base
// pages; thp_migration_* count THPs; -1: this kernel has no such line).
struct Stats {
  long long success = 0, fail = 0;
  long long thp_success = -1, thp_fail = -1, thp_split = -1;
};
Stats stats_from_vmstat(const std::map<std::string, long long>& vmstat);
Stats operator-(const Stats& after, const Stats& before);  // -1 stays -1

// Tracepoint counts of migration entries set and removed: migrate:
// set_migration_pte / remove_migration_pte (one per PTE mapping replaced /
// restored), thp:set_migration_pmd / remove_migration_pmd (one per PMD
// mapping). -1: the event is not counted on this kernel.
struct EntryCounts {
  long long set_pte = 0, remove_pte = 0;
  long long set_pmd = -1, remove_pmd = -1;
};
EntryCounts operator-(const EntryCounts& after, const EntryCounts& before);
// What is wrong with the counts of one migration that moved every folio,
// replacing `pte_mappings` PTE mappings and `pmd_mappings` PMD mappings (the
// folios' mappings summed over every mapper); "" when they are exact. A
// migration entry set and not removed, or a mapping the walk never replaced,
// is named with the numbers.
std::string entry_count_problem(const EntryCounts& delta, long long pte_mappings, long long pmd_mappings);

// ------------------------------------------------------------ the kernel

// move_pages(pid, ...) of `pages` pages of size page_size from `start` to
// `target` (MPOL_MF_MOVE_ALL when `all`, needed for pages other processes
// map; CAP_SYS_NICE), retrying pages the kernel could not move up to
// `attempts` times in all; returns the outcome of the last attempt and the ns
// spent inside move_pages (all attempts). A positive return or a negative
// status is never counted as moved.
struct Timed {
  MoveOutcome outcome;
  int64_t ns = 0;
  int attempts = 0;
};
Result<Timed> move_range(pid_t pid, void* start, long pages, int target, bool all, int attempts);
// The same for `count` addresses `step` bytes apart: one per folio. The
// kernel moves a THP whole from any address in it, and reports the other
// addresses of a folio it has already isolated as -EBUSY (add_page_for_
// migration / add_folio_for_migration), so a THP range is moved by its first
// addresses. The outcome counts the addresses.
Result<Timed> move_range(pid_t pid, void* start, long count, size_t step, int target, bool all, int attempts);

// mbind(MPOL_BIND to `target`, MPOL_MF_MOVE_ALL or MPOL_MF_MOVE, and
// MPOL_MF_STRICT) of our range, retried while pages are not on the target;
// the outcome from nodes_of() after the last attempt, the ns inside mbind.
Result<Timed> mbind_range(void* start, long pages, int target, bool all, int attempts);

// migrate_pages(pid, {from} -> {to}): every page of the process on `from`
// (with CAP_SYS_NICE also those other processes map) moves. Retried while
// pages of [start, start + pages) are not on `to`; the outcome is theirs
// (nodes_of), the ns those of migrate_pages.
Result<Timed> migrate_process(pid_t pid, int from, int to, const void* start, long pages, int attempts);

// migrate_pages(0, every node -> {node}): this process's pages, untimed (a
// layout that migrate_pages must not find on the source node).
Status move_this_process_to(int node);

// move_pages(pid, nodes=NULL): the node of each page (negative errno where
// not present).
Result<std::vector<int>> nodes_of(pid_t pid, const void* start, long pages);

// The page frame behind each page (/proc/<pid>/pagemap, 0 = us; root: PFNs
// are hidden from others). 0 where not present.
Result<std::vector<uint64_t>> frames_of(pid_t pid, const void* start, long pages);

// Another node than `node` to move to (the next one with memory), or a skip
// Status with "needs >= 2 NUMA nodes (this host has N)".
Result<int> other_node(int node);

// vmstat's migration counters now.
Result<Stats> read_stats();

// The migration-entry tracepoints, counted in this process only (where
// move_pages, mbind and migrate_pages do their walks), not in children.
class EntryTracepoints {
 public:
  // Fails with why (no tracefs, an event missing, perf refused). Without
  // the PMD events (Linux < 5.19) only the PTE ones are counted.
  static Result<EntryTracepoints> open();
  Result<EntryCounts> read() const;

 private:
  std::vector<perf::Counter> counters_;  // set_pte, remove_pte[, set_pmd, remove_pmd]
};

// This thread's allocations go to `node` (set_mempolicy MPOL_BIND) while it
// lives; the policy before is restored when it dies.
class AllocationsOn {
 public:
  static Result<AllocationsOn> node(int node);
  AllocationsOn(AllocationsOn&& other) noexcept;
  AllocationsOn& operator=(AllocationsOn&&) = delete;
  ~AllocationsOn();

 private:
  AllocationsOn() = default;
  bool active_ = false;
  int mode_ = 0;
  std::vector<unsigned long> mask_;
};

}  // namespace rmapbench::mm::migration
