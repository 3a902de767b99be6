// KSM merging: P processes each hold M pages with K distinct contents; they
// opt in (MADV_MERGEABLE, or PR_SET_MEMORY_MERGE for the whole process) and
// ksmd merges identical pages into write-protected KSM pages, each the stable
// tree node that rmap walks (rmap_walk_ksm) to find every mapper.
//
// Families:
//   madv_mergeable / prctl_memory_merge  time from opt-in until pages_sharing
//                      reaches the value the layout implies (the expected
//                      value under max_page_sharing), and ksmd's CPU time
//   unmerge            MADV_UNMERGEABLE of every process's merged region
//   cow_break          a write to each KSM page shared by S+1 processes
//   max_page_sharing:X the merge with the cap at X: stable_node_chains/dups
//   migrate            move_pages of merged pages to another node (>= 2 nodes)
// ksmd is tuned through restoring knob guards for each benchmark and stopped
// (run=0; merged pages stay) while an operation other than the merge is timed.
#include <fmt/core.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/ksm.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"
#include "benchmarks/registry.hpp"
#include "kernels/procfs/ksm_users.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/procfs/sysfs_text.hpp"
#include "kernels/safety/children.hpp"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

namespace rmapbench {

RMAPBENCH_METRIC(kMergeMibS, {"merge_mib_s", "MiB/s", Better::higher, MetricKind::statistical,
                              "pages merged per second, from opt-in until pages_sharing reached its expected value"});
RMAPBENCH_METRIC(kKsmdMsPerMib, {"ksmd_cpu_ms_per_mib", "ms/MiB", Better::lower, MetricKind::statistical,
                                 "ksmd CPU time during the merge per MiB merged"});
RMAPBENCH_METRIC(kKsmdShare, {"ksmd_cpu_share", "fraction", Better::higher, MetricKind::statistical,
                              "ksmd CPU time / wall time of the merge (1 = ksmd never slept or waited)"});
RMAPBENCH_METRIC(kPagesSharing, {"pages_sharing", "pages", Better::higher, MetricKind::exact,
                                 "mappings saved in this run's processes: their pages mapped to a KSM page (ksm_merging_pages) minus the distinct KSM pages (pagemap census); system-wide delta only where the kernel cannot say per process", MetricRole::primary});
RMAPBENCH_METRIC(kPagesShared, {"pages_shared", "pages", Better::lower, MetricKind::exact,
                                "distinct KSM pages behind this run's regions (pagemap + kpageflags); system-wide delta only where the kernel cannot say per process", MetricRole::primary});
RMAPBENCH_METRIC(kStableNodeChains, {"stable_node_chains", "nodes", Better::lower, MetricKind::exact,
                                     "stable_node_chains right after the merge (contents with more mappers than max_page_sharing)"});
RMAPBENCH_METRIC(kStableNodeDups, {"stable_node_dups", "nodes", Better::lower, MetricKind::exact,
                                   "stable_node_dups right after the merge (KSM pages in chains)"});
RMAPBENCH_METRIC(kFullScans, {"full_scans", "scans", Better::lower, MetricKind::statistical,
                              "ksmd full scans during the merge"});
RMAPBENCH_METRIC(kUnmergeMibS, {"unmerge_mib_s", "MiB/s", Better::higher, MetricKind::statistical,
                                "MADV_UNMERGEABLE throughput over every process's merged region"});
RMAPBENCH_METRIC(kCowBreakUs, {"cow_break_us", "us", Better::lower, MetricKind::statistical,
                               "one write fault that copies a KSM page shared by S+1 processes"});
RMAPBENCH_METRIC(kMigrateUs, {"ksm_migrate_us", "us", Better::lower, MetricKind::statistical,
                              "move_pages of one KSM page (every mapper remapped) per page"});
RMAPBENCH_METRIC(kPagesToScan, {"ksmd_pages_to_scan", "pages", Better::higher, MetricKind::exact,
                                "ksmd pages_to_scan during the benchmark"});
RMAPBENCH_METRIC(kSleepMs, {"ksmd_sleep_ms", "ms", Better::lower, MetricKind::exact,
                            "ksmd sleep_millisecs during the benchmark"});

namespace {

using mm::ksm::Counters;
using mm::ksm::Expected;
using mm::ksm::KsmRegion;
using mm::ksm::Tuning;

constexpr int kSkipErr = -4242;
constexpr long kCowPages = 64;
// How often the merge completion is polled: one pread of pages_sharing.
constexpr long kPollUs = 200;

enum class Family { madv_mergeable, prctl_memory_merge, unmerge, cow_break, max_page_sharing, migrate };

enum AgentOp { kOpReset = 1, kOpDrop, kOpMerge, kOpUnmerge, kOpVerify, kOpWrite, kOpCorrupt, kOpMigrate, kOpWhere };
enum MergeMode { kMadvise = 0, kPrctl = 1 };

const char* kPrctlUnsupported = "PR_SET_MEMORY_MERGE unsupported by this kernel (needs 6.4+)";

// --------------------------------------------------------------- processes

struct AgentState {
  long pages = 0, contents = 1;
  std::optional<KsmRegion> region;
  bool wrote = false;
  bool merge_any = false;  // PR_SET_MEMORY_MERGE is on
};

// Drops the region (and PR_SET_MEMORY_MERGE, which would make the next
// region mergeable before its opt-in).
Status drop_region(AgentState& st) {
  st.region.reset();
  st.wrote = false;
  if (st.merge_any && prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) != 0)
    return Status::from_errno("prctl(PR_SET_MEMORY_MERGE, 0)");
  st.merge_any = false;
  return Status::ok();
}

mm::AgentReply handle(AgentState& st, const mm::AgentRequest& req) {
  if (req.op == kOpReset || req.op == kOpDrop) {
    if (Status s = drop_region(st); s.failed()) return mm::reply_error(s.message());
    if (req.op == kOpDrop) return mm::reply_ok();
    auto r = KsmRegion::create(st.pages, st.contents, static_cast<uint32_t>(req.arg));
    if (!r) return mm::reply_error(r.status().message());
    st.region.emplace(std::move(*r));
    return mm::reply_ok();
  }
  if (!st.region) return mm::reply_error("no region: reset first");
  KsmRegion& r = *st.region;
  switch (req.op) {
    case kOpMerge: {
      if (req.arg == kPrctl) {
        if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0)
          return mm::reply_error(errno == EINVAL ? kPrctlUnsupported
                                                 : fmt::format("prctl(PR_SET_MEMORY_MERGE): {}", std::strerror(errno)));
        st.merge_any = true;
      } else if (madvise(r.start(), r.bytes(), MADV_MERGEABLE) != 0) {
        return mm::reply_error(fmt::format("madvise(MADV_MERGEABLE): {}", std::strerror(errno)));
      }
      return mm::reply_ok({static_cast<double>(reinterpret_cast<uintptr_t>(r.start())), static_cast<double>(r.bytes())});
    }
    case kOpUnmerge: {
      const int64_t t0 = mm::monotonic_ns();
      int rc = madvise(r.start(), r.bytes(), MADV_UNMERGEABLE);
      const int64_t ns = mm::monotonic_ns() - t0;
      if (rc != 0) return mm::reply_error(fmt::format("madvise(MADV_UNMERGEABLE): {}", std::strerror(errno)));
      return mm::reply_ok({static_cast<double>(ns)});
    }
    case kOpVerify: {
      Status s = r.verify([&](long) { return st.wrote; }, fmt::format("process {} ({})", req.arg, getpid()));
      return s.failed() ? mm::reply_error(s.message()) : mm::reply_ok();
    }
    case kOpWrite: {
      const int64_t t0 = mm::monotonic_ns();
      for (long j = 0; j < r.pages(); ++j) r.mark(j);
      const int64_t ns = mm::monotonic_ns() - t0;
      st.wrote = true;
      return mm::reply_ok({static_cast<double>(ns)});
    }
    case kOpCorrupt:
      r.corrupt_one_byte_for_test(r.pages() / 2);
      return mm::reply_ok();
    case kOpMigrate:
    case kOpWhere: {
      std::vector<void*> pages(static_cast<size_t>(r.pages()));
      for (long j = 0; j < r.pages(); ++j) pages[static_cast<size_t>(j)] = r.start() + static_cast<size_t>(j) * mm::page_size();
      std::vector<int> nodes(pages.size(), static_cast<int>(req.arg)), status(pages.size(), -1);
      const bool move = req.op == kOpMigrate;
      const int64_t t0 = mm::monotonic_ns();
      long rc = move_pages(0, pages.size(), pages.data(), move ? nodes.data() : nullptr, status.data(),
                           move ? MPOL_MF_MOVE_ALL : 0);
      const int64_t ns = mm::monotonic_ns() - t0;
      if (rc < 0) return mm::reply_error(fmt::format("move_pages: {}", std::strerror(errno)));
      long on_node = 0, failed = 0;
      for (int s : status) (s == req.arg ? on_node : failed) += 1;
      return mm::reply_ok({static_cast<double>(ns), static_cast<double>(on_node), static_cast<double>(failed)});
    }
  }
  return mm::reply_error(fmt::format("unknown request {}", req.op));
}

struct Group {
  std::vector<mm::Agent> agents;
  std::vector<std::pair<uintptr_t, size_t>> ranges;  // each agent's region
  std::vector<pid_t> pids;
};

// The processes live for a whole benchmark run; each iteration gives them a
// fresh region (kOpReset, in parallel) and drops it at the end (kOpDrop).
Result<Group> spawn_group(long processes, long pages, long contents) {
  Group g;
  for (long i = 0; i < processes; ++i) {
    auto st = std::make_shared<AgentState>();
    st->pages = pages;
    st->contents = contents;
    auto a = mm::Agent::spawn(1, {}, [st](const mm::AgentRequest& req) { return handle(*st, req); });
    if (!a) return a.status().context(fmt::format("KSM process {} of {}", i + 1, processes));
    g.pids.push_back(a->pid());
    g.agents.push_back(std::move(*a));
  }
  return g;
}

// Sends `op` to every agent, then collects the replies (they work in parallel).
Result<std::vector<mm::AgentReply>> call_all(Group& g, int op, long arg) {
  for (auto& a : g.agents)
    if (Status s = a.send({op, arg}); s.failed()) return s;
  std::vector<mm::AgentReply> replies;
  Status first;
  for (auto& a : g.agents) {
    auto r = a.receive();
    if (!r && !first.failed()) first = r.status();
    if (r) replies.push_back(*r);
  }
  if (first.failed()) return first;
  return replies;
}

Status verify_all(Group& g) {
  for (size_t i = 0; i < g.agents.size(); ++i) {
    auto r = g.agents[i].call({kOpVerify, static_cast<long>(i)});
    if (!r) return r.status();
  }
  return Status::ok();
}

// Every process's region has `want` KSM pages (kpageflags), or says who not.
//
// A count that is off is looked at again for up to 200 ms before it fails:
// seen once in a quick run, a census read 504 of 512 right after the one
// that ended the merge had found all 512; a page frame that is being
// replaced between the pagemap and the kpageflags reads looks "not KSM".
// A page that really lost its KSM mapping (a COW break, an unmerge) stays
// lost, so a real failure still fails.
Status check_ksm_pages(Group& g, const std::function<long(size_t)>& want, const char* when) {
  if (mm::thp::census_unavailable()) return Status::ok();
  constexpr int kLooks = 11;
  for (size_t i = 0; i < g.agents.size(); ++i) {
    for (int look = 1; look <= kLooks; ++look) {
      auto c = mm::thp::census({g.pids[i]}, {g.ranges[i]});
      if (!c) return c.status().context("KSM page census");
      const long got = c->front().ksm_pages;
      if (got == want(i)) break;
      if (look == kLooks)
        return Status::error(fmt::format("{}: process {} (pid {}) maps {} KSM pages, expected {} (kpageflags, {} "
                                         "looks over 200 ms)",
                                         when, i, g.pids[i], got, want(i), kLooks));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return Status::ok();
}

// --------------------------------------------------------------- merging

struct Merge {
  int64_t ns = 0;
  int64_t ksmd_ns = 0;
  Counters delta;  // system-wide, after - before: context (it includes other KSM users)
};

std::string describe(const Counters& now, const Counters& base, const Expected& e) {
  return fmt::format("pages_sharing +{} of +{} expected, pages_shared +{} of +{}, full_scans +{}",
                     now.pages_sharing - base.pages_sharing, e.sharing, now.pages_shared - base.pages_shared, e.shared,
                     now.full_scans - base.full_scans);
}

std::chrono::milliseconds merge_timeout(long long total_pages, long pages_to_scan, long sleep_ms) {
  // ksmd needs about three passes (checksum, unstable tree, stable tree).
  const long long batches = 3 * total_pages / std::max(1L, pages_to_scan) + 3;
  return std::chrono::milliseconds(30'000 + 10 * batches * (sleep_ms + 2));
}

// Opt in every process, then wait until the merge is complete.
//
// `paused`: when the merge is only the setup of another operation, every
// process opts in while ksmd is stopped, so all their pages start KSM's
// phases in the same pass. With smart_scan (Linux 6.7+) an rmap item that
// went unmerged for a few passes is skipped on most passes; two processes
// that opted in a few passes apart can then skip in different phases and a
// content mapped once in each may never meet in the unstable tree (seen
// here: 0 of 64 merged after 290,000 full scans; never with smart_scan=0).
Result<Merge> merge(Group& g, MergeMode mode, const Expected& e, const Counters& base, const mm::ksm::KsmdClock& clock,
                    std::chrono::milliseconds timeout, long region_pages, bool exclusive,
                    Tuning* paused = nullptr) {
  Merge m;
  if (paused)
    if (Status s = paused->pause(); s.failed()) return s;
  auto c0 = clock.cpu_ns();
  if (!c0) return c0.status();
  int64_t t0 = mm::monotonic_ns();
  auto replies = call_all(g, kOpMerge, mode);
  if (!replies) {
    if (replies.status().message().find(kPrctlUnsupported) != std::string::npos)
      return Status::error(kPrctlUnsupported, kSkipErr);
    return replies.status();
  }
  if (paused) {
    if (Status s = paused->resume(); s.failed()) return s;
    t0 = mm::monotonic_ns();
  }
  g.ranges.clear();
  for (const auto& r : *replies)
    g.ranges.emplace_back(static_cast<uintptr_t>(r.values[0]), static_cast<size_t>(r.values[1]));
  auto sharing_file = mm::ksm::CounterFile::open("pages_sharing");
  if (!sharing_file) return sharing_file.status();
  // Our processes' own merged pages decide completion: the system-wide
  // pages_sharing also counts every other KSM user's merging. It stays a
  // cheap first filter (one pread) while nobody else uses KSM.
  auto ours = mm::ksm::MergingPages::open(g.pids);
  if (!ours) return ours.status().context("per-process KSM counts (Linux 6.1+)");
  const long long merged_expected = e.sharing + e.shared;
  int64_t last_census = 0;
  auto done = [&]() -> Result<bool> {
    if (exclusive) {
      auto sharing = sharing_file->read();
      if (!sharing) return sharing.status();
      if (*sharing - base.pages_sharing < e.sharing) return false;
    }
    auto merged = ours->sum();
    if (!merged) return merged.status();
    if (*merged < merged_expected) return false;
    if (mode == kMadvise) return true;
    // PR_SET_MEMORY_MERGE makes every VMA mergeable: other pages merge too, so
    // our regions are checked page by page (not more often than every 2 ms).
    const int64_t now = mm::monotonic_ns();
    if (now - last_census < 2'000'000) return false;
    last_census = now;
    auto c = mm::thp::census(g.pids, g.ranges);
    if (!c) return c.status();
    for (const auto& one : *c)
      if (one.ksm_pages < region_pages) return false;
    return true;
  };
  auto state = [&] {
    auto now = mm::ksm::read_counters();
    std::string s = now ? describe(*now, base, e) : now.status().message();
    // What KSM knows of each process (/proc/<pid>/ksm_stat, Linux 6.1+).
    for (size_t i = 0; i < g.pids.size() && i < 8; ++i) {
      auto text = sysfs::read_file(fmt::format("/proc/{}/ksm_stat", g.pids[i]), 4096);
      if (!text) break;
      std::string compact;
      for (std::string_view line : sysfs::split_lines(*text))
        if (!line.empty()) compact += fmt::format("{}{}", compact.empty() ? "" : ", ", line);
      s += fmt::format("; process {}: {}", i, compact);
    }
    return s;
  };
  auto t1 = mm::ksm::wait_until(done, timeout, std::chrono::microseconds(kPollUs), "KSM merge", state);
  if (!t1) return t1.status();
  auto c1 = clock.cpu_ns();
  if (!c1) return c1.status();
  m.ns = *t1 - t0;
  m.ksmd_ns = *c1 - *c0;
  auto after = mm::ksm::read_counters();
  if (!after) return after.status();
  m.delta.pages_shared = after->pages_shared - base.pages_shared;
  m.delta.pages_sharing = after->pages_sharing - base.pages_sharing;
  m.delta.full_scans = after->full_scans - base.full_scans;
  // Chains and dups absolute: emptied ones linger until ksmd prunes them
  // (stable_node_chains_prune_millisecs), so a difference would undercount.
  m.delta.stable_node_chains = after->stable_node_chains;
  m.delta.stable_node_dups = after->stable_node_dups;
  return m;
}

// What a merge left in this run's own processes.
struct OwnMerge {
  bool checked = false;  // false: the kernel cannot say per process (no ksm_merging_pages / census)
  long long shared = 0, sharing = 0;
  std::string per_process;  // "512, 512, ..."
};

Result<OwnMerge> own_merge(Group& g, MergeMode mode) {
  OwnMerge o;
  if (mm::thp::census_unavailable()) return o;
  auto files = mm::ksm::MergingPages::open(g.pids);
  if (!files) return o;  // kernel before 6.1
  auto each = files->each();
  if (!each) return each.status();
  long long merged = 0;
  for (long long v : *each) {
    merged += v;
    o.per_process += fmt::format("{}{}", o.per_process.empty() ? "" : ", ", v);
  }
  if (mode == kPrctl) {
    // The whole process is mergeable: count the pages of our regions only.
    merged = 0;
    for (size_t i = 0; i < g.pids.size(); ++i) {
      auto c = mm::thp::census({g.pids[i]}, {g.ranges[i]});
      if (!c) return c.status().context("KSM page census");
      merged += c->front().ksm_pages;
    }
  }
  auto frames = mm::thp::distinct_ksm_frames(g.pids, g.ranges);
  if (!frames) return frames.status().context("KSM page census");
  o.shared = *frames;
  o.sharing = merged - o.shared;
  o.checked = true;
  return o;
}

// After the regions were dropped: ksmd drops their rmap items; wait until the
// counters are back where they were and KSM holds no rmap item of our
// processes (/proc/<pid>/ksm_stat), so the next iteration starts clean. An
// rmap item left over at an address the next region reuses would carry its
// smart_scan age: such items are scanned only every few passes, and two of
// them out of phase may never meet in the unstable tree.
Status wait_clean(const Counters& base, bool exclusive, const std::vector<pid_t>& pids) {
  bool per_process = true;
  auto rmap_items = [&]() -> long long {
    long long n = 0;
    for (pid_t pid : pids) {
      auto v = mm::ksm::ksm_stat_field(pid, "ksm_rmap_items");
      if (!v) {
        per_process = false;  // kernel without ksm_stat: counters only
        return 0;
      }
      n += *v;
    }
    return n;
  };
  auto merged = [&]() -> long long {
    auto m = mm::ksm::MergingPages::open(pids);
    auto s = m ? m->sum() : Result<long long>(Status::error("no ksm_merging_pages"));
    return s ? *s : 0;
  };
  // Our processes' rmap items and merged pages; the system-wide counters only
  // where the kernel has no per-process ones, and only when they are ours.
  auto back = [&]() -> Result<bool> {
    const long long items = rmap_items();
    if (per_process) return items == 0 && merged() == 0;
    if (!exclusive) return true;
    auto c = mm::ksm::read_counters();
    if (!c) return c.status();
    return c->pages_shared <= base.pages_shared && c->pages_sharing <= base.pages_sharing;
  };
  auto state = [&] {
    auto c = mm::ksm::read_counters();
    return c ? fmt::format("rmap items of our processes {}, their merged pages {}; system-wide pages_shared {} (was {}), "
                           "pages_sharing {} (was {})",
                           rmap_items(), merged(), c->pages_shared, base.pages_shared, c->pages_sharing,
                           base.pages_sharing)
             : c.status().message();
  };
  auto t = mm::ksm::wait_until(back, std::chrono::milliseconds(30'000), std::chrono::microseconds(500),
                               "KSM cleanup after the regions were dropped", state);
  if (!t) return t.status();
  return Status::ok();
}

// --------------------------------------------------------------- benchmark

struct Params {
  Family family;
  long pages = 512;
  long processes = 2;
  long contents = 1;
  long max_page_sharing = 0;  // 0: the host's
  long pages_to_scan = 1000;
  long sleep_ms = 0;
};

struct Sums {
  double ns = 0, ksmd_ns = 0, merge_ns = 0;
  Counters delta;
  mm::OpCounts counts{0, 0, 0, 0};
  bool own_counts = true;  // pages_sharing/shared are our processes' (else system-wide deltas)
  std::vector<std::string> absent;
  long iterations = 0;
};

// One iteration; returns the timed ns (the figure of the family).
long processes_of(const Params& p) { return p.family == Family::cow_break ? p.processes + 1 : p.processes; }
long pages_of(const Params& p) { return p.family == Family::cow_break ? kCowPages : p.pages; }
long contents_of(const Params& p) { return p.family == Family::cow_break ? kCowPages : p.contents; }

// One iteration over the group's fresh regions; returns the timed ns (the
// figure of the family). The regions are dropped and ksmd has cleaned up
// when it returns successfully.
Result<int64_t> iterate(const Params& p, Group& group, Tuning& tuning, const mm::ksm::KsmdClock& clock, bool corrupt,
                        uint32_t seed, Sums& sums) {
  const long processes = processes_of(p), pages = pages_of(p), contents = contents_of(p);
  const Expected e = mm::ksm::expected_merge(mm::ksm::mappers_per_content(processes, pages, contents),
                                             tuning.max_page_sharing());
  auto base = mm::ksm::read_counters();
  if (!base) return base.status();
  int64_t timed = 0;
  {
    if (auto r = call_all(group, kOpReset, static_cast<long>(seed)); !r) return r.status().context("filling the pages");
    Group* g = &group;
    const MergeMode mode = p.family == Family::prctl_memory_merge ? kPrctl : kMadvise;
    Result<Merge> m = Status::error("not merged");
    auto counted = mm::count_per_op(1, [&] {
      // Timed merges opt in as applications do (one process after another);
      // a merge that only sets up another operation opts in with ksmd stopped.
      const bool timed_merge = p.family == Family::madv_mergeable || p.family == Family::prctl_memory_merge ||
                               p.family == Family::max_page_sharing;
      m = merge(*g, mode, e, *base, clock, merge_timeout(processes * pages, p.pages_to_scan, p.sleep_ms), pages,
                tuning.exclusive(), timed_merge ? nullptr : &tuning);
      return m ? Status::ok() : m.status();
    }, &sums.absent);
    if (!counted) return counted.status();
    // Oracle: what our own processes map (never the system-wide counters,
    // which include any other KSM user on the host): each process's merged
    // pages (/proc/<pid>/ksm_merging_pages) and the distinct KSM pages
    // behind all our regions (pagemap + kpageflags).
    const bool merges = e.sharing > 0;
    if (Status s = check_ksm_pages(*g, [&](size_t) { return merges ? pages : 0L; }, "after the merge"); s.failed())
      return s;
    // Looked at again for up to 200 ms, as check_ksm_pages() does: a frame
    // being replaced between the pagemap and kpageflags reads looks "not KSM".
    // Another KSM user whose pages hold the same contents (a QEMU guest
    // running these very workloads: QEMU merges its RAM by default) may map
    // some of our KSM pages too. Our mappings then spread over more KSM
    // pages, never fewer, and every one of them is still merged: that is
    // the other process's doing, not the kernel losing a mapping.
    auto as_expected = [&](const OwnMerge& o) {
      if (o.sharing == e.sharing && o.shared == e.shared) return true;
      if (o.sharing + o.shared != e.sharing + e.shared || o.shared < e.shared) return false;
      const std::vector<pid_t> ours = g->pids;
      return !host::other_ksm_users([&](pid_t pid) {
                return std::find(ours.begin(), ours.end(), pid) != ours.end();
              }).empty();
    };
    Result<OwnMerge> mine = Status::error("not looked");
    for (int look = 1; look <= 11; ++look) {
      mine = own_merge(*g, mode);
      if (!mine || !mine->checked || as_expected(*mine)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!mine) return mine.status();
    if (mine->checked && !as_expected(*mine))
      return Status::error(fmt::format("KSM merged this run's processes to pages_sharing {} / pages_shared {}, expected "
                                       "{} / {} for {} processes x {} pages, {} contents, max_page_sharing {} "
                                       "(per process merged pages: {}; system-wide +{} / +{})",
                                       mine->sharing, mine->shared, e.sharing, e.shared, processes, pages, contents,
                                       tuning.max_page_sharing(), mine->per_process, m->delta.pages_sharing,
                                       m->delta.pages_shared));
    // Without per-process counts (Linux < 6.1, or no census) the system-wide
    // counters are used, and only while nobody else uses KSM.
    if (!mine->checked && mode == kMadvise && tuning.exclusive() &&
        (m->delta.pages_sharing != e.sharing || m->delta.pages_shared != e.shared))
      return Status::error(fmt::format("KSM merged to pages_sharing +{} / pages_shared +{} (system-wide, no other KSM "
                                       "user), expected +{} / +{} for {} processes x {} pages, {} contents, "
                                       "max_page_sharing {}",
                                       m->delta.pages_sharing, m->delta.pages_shared, e.sharing, e.shared, processes,
                                       pages, contents, tuning.max_page_sharing()));
    if (corrupt)
      if (auto r = g->agents.front().call({kOpCorrupt, 0}); !r) return r.status();
    if (Status s = verify_all(*g); s.failed()) return s.context("after the merge");
    sums.merge_ns += static_cast<double>(m->ns);
    sums.ksmd_ns += static_cast<double>(m->ksmd_ns);
    sums.delta.pages_sharing += mine->checked ? mine->sharing : m->delta.pages_sharing;
    sums.delta.pages_shared += mine->checked ? mine->shared : m->delta.pages_shared;
    sums.own_counts = sums.own_counts && mine->checked;
    sums.delta.full_scans += m->delta.full_scans;
    sums.delta.stable_node_chains += m->delta.stable_node_chains;
    sums.delta.stable_node_dups += m->delta.stable_node_dups;
    sums.counts.page_faults += counted->page_faults;
    sums.counts.context_switches += counted->context_switches;
    sums.counts.cpu_migrations += counted->cpu_migrations;
    sums.counts.sys_us += counted->sys_us;

    switch (p.family) {
      case Family::madv_mergeable:
      case Family::prctl_memory_merge:
      case Family::max_page_sharing:
        timed = m->ns;
        break;
      case Family::unmerge: {
        if (Status s = tuning.pause(); s.failed()) return s;
        for (auto& a : g->agents) {
          auto r = a.call({kOpUnmerge, 0});
          if (!r) return r.status();
          timed += static_cast<int64_t>(r->values[0]);
        }
        if (Status s = verify_all(*g); s.failed()) return s.context("after the unmerge");
        if (Status s = check_ksm_pages(*g, [](size_t) { return 0L; }, "after the unmerge"); s.failed()) return s;
        if (Status s = tuning.resume(); s.failed()) return s;
        break;
      }
      case Family::cow_break: {
        if (Status s = tuning.pause(); s.failed()) return s;
        auto r = g->agents.front().call({kOpWrite, 0});
        if (!r) return r.status();
        timed = static_cast<int64_t>(r->values[0]);
        if (Status s = verify_all(*g); s.failed()) return s.context("after the COW break");
        if (Status s = check_ksm_pages(*g, [&](size_t i) { return i == 0 ? 0L : pages; }, "after the COW break");
            s.failed())
          return s;
        if (Status s = tuning.resume(); s.failed()) return s;
        break;
      }
      case Family::migrate: {
        if (Status s = tuning.pause(); s.failed()) return s;
        auto where = g->agents.front().call({kOpWhere, 0});
        if (!where) return where.status();
        const int nodes = host::numa_node_count();
        const long from = where->values[1] == static_cast<double>(pages) ? 0 : 1;
        const long target = (from + 1) % nodes;
        auto r = g->agents.front().call({kOpMigrate, target});
        if (!r) return r.status();
        timed = static_cast<int64_t>(r->values[0]);
        for (size_t i = 0; i < g->agents.size(); ++i) {
          auto w = g->agents[i].call({kOpWhere, target});
          if (!w) return w.status();
          if (w->values[1] != static_cast<double>(pages))
            return Status::error(fmt::format("after move_pages to node {}, process {} sees {} of {} pages there", target,
                                             i, w->values[1], pages));
        }
        if (Status s = verify_all(*g); s.failed()) return s.context("after the migration");
        if (Status s = check_ksm_pages(*g, [&](size_t) { return pages; }, "after the migration"); s.failed()) return s;
        if (Status s = tuning.resume(); s.failed()) return s;
        break;
      }
    }
    if (auto r = call_all(group, kOpDrop, 0); !r) return r.status().context("dropping the pages");
  }
  if (Status s = tuning.resume(); s.failed()) return s;
  if (Status s = wait_clean(*base, tuning.exclusive(), group.pids); s.failed()) return s;
  return timed;
}

void run(benchmark::State& state, const Params& p) {
  const bool corrupt = mm::test_corruption_requested("ksm_merge");
  std::vector<std::string> notes;
  if (p.family == Family::migrate && host::numa_node_count() < 2)
    return skip(state, fmt::format("needs >= 2 NUMA nodes (this host has {})", host::numa_node_count()));
  if (p.family == Family::cow_break && p.processes < 1)
    return skip(state, "a KSM page needs a second mapper: sharers >= 1");
  if (p.contents < 1 || p.contents > p.pages)
    return skip(state, fmt::format("contents must be 1..pages ({} > {})", p.contents, p.pages));
  if (auto why = mm::thp::census_unavailable()) notes.push_back(fmt::format("KSM pages not counted per process: {}", *why));
  auto clock = mm::ksm::KsmdClock::open();
  if (!clock) return skip(state, clock.status().message());
  if (auto smart = mm::ksm::read_counter("smart_scan"); smart && *smart)
    notes.push_back("smart_scan=1: pages left unmerged for a few passes are skipped on most passes");
  Tuning::Options options{p.pages_to_scan, p.sleep_ms, std::nullopt};
  if (p.family == Family::max_page_sharing) options.max_page_sharing = p.max_page_sharing;
  auto tuning = Tuning::apply(options, &notes);
  if (!tuning) return skip(state, tuning.status().message());
  safety::Watchdog watchdog(std::chrono::minutes(10));
  auto group = spawn_group(processes_of(p), pages_of(p), contents_of(p));
  if (!group) return fail(state, group.status().message());

  Sums sums;
  uint32_t seed = 101;
  for (auto _ : state) {
    auto ns = iterate(p, *group, *tuning, clock.value(), corrupt, seed++, sums);
    if (!ns) {
      if (ns.status().err() == kSkipErr) skip(state, ns.status().message());
      else fail(state, ns.status().message());
      break;
    }
    sums.ns += static_cast<double>(*ns);
    ++sums.iterations;
    double per = static_cast<double>(*ns);
    if (p.family == Family::cow_break) per /= kCowPages;
    if (p.family == Family::migrate) per /= static_cast<double>(p.pages);
    state.SetIterationTime(per / 1e9);
  }
  // Knobs back now (and checked), not at some later scope exit.
  Status restored = tuning->restore();
  if (watchdog.fired()) {
    if (!state.error_occurred()) fail(state, fmt::format("timed out after {} s", watchdog.timeout().count() / 1000));
    return;
  }
  if (state.error_occurred()) return;
  if (restored.failed()) return fail(state, restored.message());

  const double n = static_cast<double>(std::max(1L, sums.iterations));
  const long processes = p.family == Family::cow_break ? p.processes + 1 : p.processes;
  const long pages = p.family == Family::cow_break ? kCowPages : p.pages;
  const double mib = static_cast<double>(processes * pages) * static_cast<double>(mm::page_size()) / (1 << 20);
  if (sums.merge_ns > 0) {
    report_metric(state, kMergeMibS, mib * n / (sums.merge_ns / 1e9));
    report_metric(state, kKsmdMsPerMib, sums.ksmd_ns / 1e6 / n / mib);
    report_metric(state, kKsmdShare, sums.ksmd_ns / sums.merge_ns);
  }
  report_metric(state, kPagesSharing, static_cast<double>(sums.delta.pages_sharing) / n);
  report_metric(state, kPagesShared, static_cast<double>(sums.delta.pages_shared) / n);
  report_metric(state, kStableNodeChains, static_cast<double>(sums.delta.stable_node_chains) / n);
  report_metric(state, kStableNodeDups, static_cast<double>(sums.delta.stable_node_dups) / n);
  report_metric(state, kFullScans, static_cast<double>(sums.delta.full_scans) / n);
  report_metric(state, kPagesToScan, static_cast<double>(p.pages_to_scan));
  report_metric(state, kSleepMs, static_cast<double>(p.sleep_ms));
  if (p.family == Family::unmerge && sums.ns > 0) report_metric(state, kUnmergeMibS, mib * n / (sums.ns / 1e9));
  if (p.family == Family::cow_break) report_metric(state, kCowBreakUs, sums.ns / 1e3 / n / kCowPages);
  if (p.family == Family::migrate) report_metric(state, kMigrateUs, sums.ns / 1e3 / n / static_cast<double>(pages));
  // Counted during the merge (the benchmark process: polling, no faults of its own).
  const bool perf = sums.absent.empty();
  mm::report_op_counts(state, {perf ? sums.counts.page_faults / n : -1, perf ? sums.counts.context_switches / n : -1,
                               perf ? sums.counts.cpu_migrations / n : -1, sums.counts.sys_us / n});
  notes.push_back(fmt::format("merge complete = pages_sharing +{} (expected under max_page_sharing {}); ksmd CPU from {}",
                              static_cast<long long>(sums.delta.pages_sharing / n), tuning->max_page_sharing(),
                              clock->source()));
  if (!sums.own_counts)
    notes.push_back("pages_sharing/pages_shared are system-wide deltas: no per-process KSM counts on this kernel");
  if (!tuning->other_users().empty())
    notes.push_back("other KSM users on this host (judged by this run's processes only; full_scans and the chain "
                    "counts include them): " + tuning->other_users());
  notes.insert(notes.end(), sums.absent.begin(), sums.absent.end());
  set_notes(state, notes);
}

void register_ksm(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const int iterations = quick ? 2 : 10;
  const std::vector<long> pages = r.sweep("ksm_pages", {512}, {512, 4096});
  const std::vector<long> procs = r.sweep("ksm_procs", {2, 8}, {2, 4, 8, 16, 32, 64});
  const std::vector<long> contents = r.sweep("ksm_contents", {1, 64}, {1, 64});
  const std::vector<long> caps = r.sweep("max_page_sharing", {16}, {2, 16, 256});
  const std::vector<long> sharers = r.sweep("sharers", {1, 16}, {1, 4, 16, 64});
  const long p2s = r.sweep("ksm_pages_to_scan", {1000}, {1000}).front();
  const long sleep_ms = r.sweep("ksm_sleep_ms", {0}, {0}).front();
  auto add = [&](const std::string& name, Params p) {
    p.pages_to_scan = p2s;
    p.sleep_ms = sleep_ms;
    r.add(name, [p](benchmark::State& st) { run(st, p); })->Iterations(iterations);
  };
  for (long m : pages)
    for (long k : contents)
      for (long n : procs)
        add(fmt::format("ksm_merge/madv_mergeable/contents:{}/pages:{}/procs:{}", k, m, n),
            {Family::madv_mergeable, m, n, k});
  for (long m : pages)
    for (size_t i = 0; i < procs.size() && (!quick || i < 1); ++i)
      add(fmt::format("ksm_merge/prctl_memory_merge/contents:1/pages:{}/procs:{}", m, procs[i]),
          {Family::prctl_memory_merge, m, procs[i], 1});
  for (long m : pages)
    for (long n : procs) add(fmt::format("ksm_merge/unmerge/pages:{}/procs:{}", m, n), {Family::unmerge, m, n, 1});
  for (long s : sharers)
    add(fmt::format("ksm_merge/cow_break/sharers:{}", s), {Family::cow_break, kCowPages, s, kCowPages});
  for (long cap : caps)
    for (long m : pages)
      for (size_t i = quick ? procs.size() - 1 : 0; i < procs.size(); ++i)
        add(fmt::format("ksm_merge/max_page_sharing:{}/pages:{}/procs:{}", cap, m, procs[i]),
            {Family::max_page_sharing, m, procs[i], 1, cap});
  // Every page its own content, the same in every process: each KSM page
  // then has exactly `procs` mappers, so moving one process's pages moves
  // every KSM page and its rmap walk visits every sharer. (With one content,
  // pages x procs mappings exceed max_page_sharing and KSM keeps several
  // copies, each mapped by a subset: moving process 0's pages then left
  // process 1 with half of its pages on the old node, on every 2-node guest.)
  for (long m : pages)
    add(fmt::format("ksm_merge/migrate/pages:{}/procs:{}", m, procs.front()), {Family::migrate, m, procs.front(), m});
}

std::optional<std::string> ksm_unavailable() {
  if (access("/sys/kernel/mm/ksm/run", F_OK) != 0) return "needs KSM (CONFIG_KSM; /sys/kernel/mm/ksm is absent)";
  if (!host::running_as_root()) return "needs root (ksmd is tuned through /sys/kernel/mm/ksm)";
  return std::nullopt;
}

}  // namespace

RMAPBENCH_WORKLOAD(ksm_merge,
                   {.name = "ksm_merge",
                    .kernel_path = "ksmd: ksm_do_scan -> cmp_and_merge_page -> try_to_merge_one_page (write_protect_page, "
                                   "replace_page), stable_tree_search / stable_node_chain; unmerge: break_ksm; "
                                   "do_wp_page on a KSM page; migration: rmap_walk_ksm",
                    .description = "P forked processes each map M pages with K distinct contents (K=1: all identical) "
                                   "and opt in through MADV_MERGEABLE or PR_SET_MEMORY_MERGE. ksmd is tuned through "
                                   "restoring knob guards (pages_to_scan, sleep_millisecs, run; max_page_sharing for "
                                   "its family). Timed: from opt-in until pages_sharing reaches the value the layout "
                                   "implies under max_page_sharing (with ksmd's CPU time); MADV_UNMERGEABLE of every "
                                   "region; a write to each KSM page shared by S+1 processes (COW break); move_pages "
                                   "of KSM pages (>= 2 NUMA nodes). ksmd is stopped while the non-merge operations "
                                   "are timed. Oracle: the expected pages_sharing/pages_shared, every page of every "
                                   "region a KSM page (kpageflags), content intact in every process after the merge, "
                                   "the COW break and the unmerge.",
                    .parameters = "ksm_pages: M pages per process (quick 512; full 512,4096); ksm_procs: P (quick "
                                  "2,8; full 2..64); ksm_contents: K (1,64); max_page_sharing (quick 16; full "
                                  "2,16,256); sharers for cow_break (quick 1,16; full 1..64); ksm_pages_to_scan "
                                  "(1000), ksm_sleep_ms (0)",
                    .needs = {{"KSM, root", ksm_unavailable}},
                    .register_benchmarks = register_ksm});

}  // namespace rmapbench
