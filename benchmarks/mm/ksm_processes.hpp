// The processes a KSM benchmark merges: P agents, each our child holding a
// KsmRegion, asked through the harness's request protocol to fill a fresh
// region, opt it in (MADV_MERGEABLE or PR_SET_MEMORY_MERGE), unmerge it,
// write it, move it to another node, and verify it. On top of them: the
// merge and the wait for its completion, what a merge left in these
// processes (never the system-wide counters, which include any other KSM
// user), and the wait until ksmd dropped everything of theirs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/harness/agents.hpp"
#include "benchmarks/mm/ksm.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm::ksm {

enum class OptIn { madvise, prctl };

inline constexpr const char* kPrctlUnsupported = "PR_SET_MEMORY_MERGE unsupported by this kernel (needs 6.4+)";

// One merge, from opt-in until the layout's pages_sharing was reached.
struct Merge {
  int64_t ns = 0;
  int64_t ksmd_ns = 0;
  Counters delta;  // system-wide, after - before: context (it includes other KSM users)
};

// What a merge left in this run's own processes.
struct OwnMerge {
  bool checked = false;  // false: the kernel cannot say per process (no ksm_merging_pages / census)
  long long shared = 0, sharing = 0;
  std::string per_process;  // "512, 512, ..."
};

// How long a merge of `total_pages` may take at the given ksmd tuning.
std::chrono::milliseconds merge_timeout(long long total_pages, long pages_to_scan, long sleep_ms);

// The processes live for a whole benchmark run; each iteration gives them a
// fresh region (fill) and drops it at the end (drop).
class MergingProcesses {
 public:
  static Result<MergingProcesses> spawn(long processes, long pages, long contents);
  const std::vector<pid_t>& pids() const { return agents_.pids(); }
  size_t size() const { return agents_.size(); }

  Status fill(uint32_t seed);  // in parallel
  Status drop();               // and PR_SET_MEMORY_MERGE off
  // Opt in every process, then wait until the merge is complete.
  //
  // `paused`: when the merge is only the setup of another operation, every
  // process opts in while ksmd is stopped, so all their pages start KSM's
  // phases in the same pass. With smart_scan (Linux 6.7+) an rmap item that
  // went unmerged for a few passes is skipped on most passes; two processes
  // that opted in a few passes apart can then skip in different phases and a
  // content mapped once in each may never meet in the unstable tree (seen
  // here: 0 of 64 merged after 290,000 full scans; never with smart_scan=0).
  Result<Merge> merge(OptIn mode, const Expected& e, const Counters& base, const KsmdClock& clock,
                      std::chrono::milliseconds timeout, long region_pages, bool exclusive, Tuning* paused = nullptr);
  Result<OwnMerge> own_merge(OptIn mode);
  // The merge's oracle on what this run's own processes map (never the
  // system-wide counters, which include any other KSM user on the host):
  // each process's merged pages (/proc/<pid>/ksm_merging_pages) and the
  // distinct KSM pages behind all their regions (pagemap + kpageflags) as `e`
  // expects. Without per-process counts (Linux < 6.1, or no census) the
  // system-wide delta of `m`, and only while nobody else uses KSM
  // (`exclusive`). What they map, or the error naming the difference.
  Result<OwnMerge> check_own_merge(OptIn mode, const Expected& e, const Merge& m, long pages, long contents,
                                   long max_page_sharing, bool exclusive);

  Result<int64_t> unmerge_each();         // the sum of every process's MADV_UNMERGEABLE (ns)
  Result<int64_t> write_first();          // process 0 writes every page: COW breaks (ns)
  Status corrupt_first();                 // one byte in process 0 (the oracle test hook)
  // move_pages of process 0's pages to the next NUMA node (ns); then every
  // process must see all its pages there (they share the KSM pages).
  Result<int64_t> migrate_first();
  Status verify_each();
  // Every process's region has want(i) KSM pages (kpageflags), or says who not.
  Status check_ksm_pages(const std::function<long(size_t)>& want, const char* when);
  // After an operation on merged pages: content intact in every process
  // (verify_each), then want(i) KSM pages in each (check_ksm_pages).
  Status check_after(const std::function<long(size_t)>& want, const char* when);

 private:
  explicit MergingProcesses(harness::AgentGroup agents) : agents_(std::move(agents)) {}
  harness::AgentGroup agents_;
  std::vector<std::pair<uintptr_t, size_t>> ranges_;  // each process's region
};

// After the regions were dropped: ksmd drops their rmap items; waits until
// the counters are back where they were and KSM holds no rmap item of our
// processes (/proc/<pid>/ksm_stat), so the next iteration starts clean. An
// rmap item left over at an address the next region reuses would carry its
// smart_scan age: such items are scanned only every few passes, and two of
// them out of phase may never meet in the unstable tree.
Status wait_clean(const Counters& base, bool exclusive, const std::vector<pid_t>& pids);

}  // namespace rmapbench::mm::ksm
