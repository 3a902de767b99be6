// KSM merging: P processes each hold M pages with K distinct contents; they
// opt in (MADV_MERGEABLE, or PR_SET_MEMORY_MERGE for the whole process) and
// ksmd merges identical pages into write-protected KSM pages, each the stable
// tree node that rmap walks (rmap_walk_ksm) to find every mapper.
//
// Timed (kVariants): the merge, from opt-in until pages_sharing reaches the
// value the layout implies under max_page_sharing (madv_mergeable,
// prctl_memory_merge, max_page_sharing:X with the cap at X); after a merge,
// with ksmd stopped (run=0; merged pages stay): MADV_UNMERGEABLE (unmerge), a
// write to each KSM page shared by S+1 processes (cow_break), move_pages to
// another node (migrate). The processes and the merge: mm/ksm_processes.hpp.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/ksm_processes.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/safety/children.hpp"

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

using mm::ksm::MergingProcesses;
using mm::ksm::OptIn;
using mm::ksm::Tuning;

constexpr long kCowPages = 64;

struct Point {
  long pages = 512, processes = 2, contents = 1;
  long max_page_sharing = 0;  // 0: the host's
  long pages_to_scan = 1000, sleep_ms = 0;
};

// ---------------------------------------------- timed after the merge (ksmd stopped)

// The operation's ns once every process's content is intact and it maps
// want(i) KSM pages.
Result<int64_t> checked(Result<int64_t> ns, MergingProcesses& procs, const std::function<long(size_t)>& want,
                        const char* when) {
  Status s = ns ? procs.check_after(want, when) : ns.status();
  return s.failed() ? Result<int64_t>(s) : ns;
}

Result<int64_t> unmerge(const Point&, MergingProcesses& procs) {
  return checked(procs.unmerge_each(), procs, [](size_t) { return 0L; }, "after the unmerge");
}

Result<int64_t> cow_break(const Point& p, MergingProcesses& procs) {
  return checked(procs.write_first(), procs, [&](size_t i) { return i == 0 ? 0L : p.pages; }, "after the COW break");
}

Result<int64_t> migrate(const Point& p, MergingProcesses& procs) {
  return checked(procs.migrate_first(), procs, [&](size_t) { return p.pages; }, "after the migration");
}

// ---------------------------------------------- the sweep of each variant

struct Sweeps {
  std::vector<long> pages, procs, contents, caps, sharers;
  long pages_to_scan, sleep_ms;
  bool quick;
  Point at(long pages, long procs, long contents, long cap = 0) const {
    return {pages, procs, contents, cap, pages_to_scan, sleep_ms};
  }
};
using Points = std::vector<std::pair<std::string, Point>>;

Points merge_points(const Sweeps& s, const std::vector<long>& contents, const std::vector<long>& procs) {
  Points out;
  for (long m : s.pages)
    for (long k : contents)
      for (long n : procs) out.emplace_back(fmt::format("/contents:{}/pages:{}/procs:{}", k, m, n), s.at(m, n, k));
  return out;
}
Points madv_points(const Sweeps& s) { return merge_points(s, s.contents, s.procs); }
Points prctl_points(const Sweeps& s) {
  return merge_points(s, {1}, s.quick ? std::vector<long>{s.procs.front()} : s.procs);
}
// One content, or every page its own (`distinct`).
Points pages_procs(const Sweeps& s, const std::vector<long>& procs, bool distinct) {
  Points out;
  for (long m : s.pages)
    for (long n : procs) out.emplace_back(fmt::format("/pages:{}/procs:{}", m, n), s.at(m, n, distinct ? m : 1));
  return out;
}
Points unmerge_points(const Sweeps& s) { return pages_procs(s, s.procs, false); }
Points cow_points(const Sweeps& s) {  // S sharers besides the writer
  Points out;
  for (long sh : s.sharers) out.emplace_back(fmt::format("/sharers:{}", sh), s.at(kCowPages, sh + 1, kCowPages));
  return out;
}
Points cap_points(const Sweeps& s) {
  Points out;
  for (long cap : s.caps)
    for (long m : s.pages)
      for (size_t i = s.quick ? s.procs.size() - 1 : 0; i < s.procs.size(); ++i)
        out.emplace_back(fmt::format(":{}/pages:{}/procs:{}", cap, m, s.procs[i]), s.at(m, s.procs[i], 1, cap));
  return out;
}
// Every page its own content, the same in every process: each KSM page then
// has exactly `procs` mappers, so moving one process's pages moves every KSM
// page and its rmap walk visits every sharer. (With one content, pages x
// procs mappings exceed max_page_sharing and KSM keeps several copies, each
// mapped by a subset: moving process 0's pages then left process 1 with half
// of its pages on the old node, on every 2-node guest.)
Points migrate_points(const Sweeps& s) { return pages_procs(s, {s.procs.front()}, true); }

struct Variant {
  const char* name;
  Points (*points)(const Sweeps&);
  OptIn opt_in;
  Result<int64_t> (*after_merge)(const Point&, MergingProcesses&);  // timed instead of the merge
  const Metric* per_page_us;  // the timed operation per page (the iteration time too)
  long min_processes;
  int min_nodes;
};

const Variant kVariants[] = {
    {"madv_mergeable", madv_points, OptIn::madvise, nullptr, nullptr, 1, 1},
    {"prctl_memory_merge", prctl_points, OptIn::prctl, nullptr, nullptr, 1, 1},
    {"unmerge", unmerge_points, OptIn::madvise, unmerge, nullptr, 1, 1},
    {"cow_break", cow_points, OptIn::madvise, cow_break, &kCowBreakUs, 2, 1},
    {"max_page_sharing", cap_points, OptIn::madvise, nullptr, nullptr, 1, 1},
    {"migrate", migrate_points, OptIn::madvise, migrate, &kMigrateUs, 1, 2},
};

// ---------------------------------------------- one iteration

// The merge (timed, or the setup of the variant's operation) and its oracle,
// then the variant's operation. Returns the timed ns; the regions are
// dropped and ksmd has cleaned up when it returns successfully.
Result<int64_t> iterate(harness::Run& run, const Variant& v, const Point& p, MergingProcesses& procs, Tuning& tuning,
                        const mm::ksm::KsmdClock& clock, bool corrupt, uint32_t seed) {
  const auto e = mm::ksm::expected_merge(mm::ksm::mappers_per_content(p.processes, p.pages, p.contents),
                                         tuning.max_page_sharing());
  auto base = mm::ksm::read_counters();
  if (!base) return base.status();
  if (Status s = procs.fill(seed); s.failed()) return s;
  Result<mm::ksm::Merge> m = Status::error("not merged");
  // Timed merges opt in as applications do (one process after another); a
  // merge that only sets up another operation opts in with ksmd stopped.
  Status counted = run.count(1, [&] {
    const auto timeout = mm::ksm::merge_timeout(p.processes * p.pages, p.pages_to_scan, p.sleep_ms);
    m = procs.merge(v.opt_in, e, *base, clock, timeout, p.pages, tuning.exclusive(), v.after_merge ? &tuning : nullptr);
    return m ? Status::ok() : m.status();
  });
  if (counted.failed()) return counted;
  // Oracle: every page of every region a KSM page (kpageflags), the
  // expected pages_sharing/pages_shared in our own processes, content intact.
  const long merged_pages = e.sharing > 0 ? p.pages : 0;
  if (Status s = procs.check_ksm_pages([&](size_t) { return merged_pages; }, "after the merge"); s.failed()) return s;
  auto mine =
      procs.check_own_merge(v.opt_in, e, *m, p.pages, p.contents, tuning.max_page_sharing(), tuning.exclusive());
  if (!mine) return mine.status();
  if (corrupt)
    if (Status s = procs.corrupt_first(); s.failed()) return s;
  if (Status s = procs.verify_each(); s.failed()) return s.context("after the merge");
  run.add("merge_ns", static_cast<double>(m->ns));
  run.add("ksmd_ns", static_cast<double>(m->ksmd_ns));
  run.add("system_wide_counts", mine->checked ? 0 : 1);
  run.add(kPagesSharing, static_cast<double>(mine->checked ? mine->sharing : m->delta.pages_sharing));
  run.add(kPagesShared, static_cast<double>(mine->checked ? mine->shared : m->delta.pages_shared));
  run.add(kFullScans, static_cast<double>(m->delta.full_scans));
  run.add(kStableNodeChains, static_cast<double>(m->delta.stable_node_chains));
  run.add(kStableNodeDups, static_cast<double>(m->delta.stable_node_dups));

  Result<int64_t> timed = m->ns;
  if (v.after_merge) {
    if (Status s = tuning.pause(); s.failed()) return s;
    timed = v.after_merge(p, procs);
    if (!timed) return timed;
    if (Status s = tuning.resume(); s.failed()) return s;
  }
  if (Status s = procs.drop(); s.failed()) return s;
  if (Status s = tuning.resume(); s.failed()) return s;
  if (Status s = mm::ksm::wait_clean(*base, tuning.exclusive(), procs.pids()); s.failed()) return s;
  return timed;
}

// ---------------------------------------------- one benchmark

void run(benchmark::State& state, const Variant& v, const Point& p) {
  harness::Run run(state);
  if (v.min_nodes > 1 && host::numa_node_count() < v.min_nodes)
    return run.stop(Status::skip(fmt::format("needs >= 2 NUMA nodes (this host has {})", host::numa_node_count())));
  if (p.processes < v.min_processes) return run.stop(Status::skip("a KSM page needs a second mapper: sharers >= 1"));
  if (p.contents < 1 || p.contents > p.pages)
    return run.stop(Status::skip(fmt::format("contents must be 1..pages ({} > {})", p.contents, p.pages)));
  if (auto why = mm::census_unavailable()) run.note(fmt::format("KSM pages not counted per process: {}", *why));
  auto clock = mm::ksm::KsmdClock::open();
  if (!clock) return run.stop(Status::skip(clock.status().message()));
  if (auto smart = mm::ksm::read_counter("smart_scan"); smart && *smart)
    run.note("smart_scan=1: pages left unmerged for a few passes are skipped on most passes");
  Tuning::Options options{p.pages_to_scan, p.sleep_ms, std::nullopt};
  if (p.max_page_sharing > 0) options.max_page_sharing = p.max_page_sharing;
  std::vector<std::string> tuning_notes;
  auto tuning = Tuning::apply(options, &tuning_notes);
  for (auto& n : tuning_notes) run.note(std::move(n));
  if (!tuning) return run.stop(Status::skip(tuning.status().message()));
  safety::Watchdog watchdog(std::chrono::minutes(10));
  auto procs = MergingProcesses::spawn(p.processes, p.pages, p.contents);
  if (!procs) return run.stop(procs.status());

  const bool corrupt = mm::test_corruption_requested("ksm_merge");
  uint32_t seed = 101;
  run.time([&] { return iterate(run, v, p, *procs, *tuning, *clock, corrupt, seed++); },
           v.per_page_us ? static_cast<double>(p.pages) : 1);
  // Knobs back now (and checked), not at some later scope exit.
  Status restored = tuning->restore();
  if (watchdog.fired()) {
    if (!run.failed()) run.stop(Status::error(fmt::format("timed out after {} s", watchdog.timeout().count() / 1000)));
    return;
  }
  if (run.failed()) return;
  if (restored.failed()) return run.stop(restored);

  const double n = static_cast<double>(std::max(1L, run.iterations()));
  const double mib = static_cast<double>(p.processes * p.pages) * static_cast<double>(mm::page_size()) / (1 << 20);
  if (const double merge_ns = run.sum("merge_ns"), ksmd_ns = run.sum("ksmd_ns"); merge_ns > 0) {
    report_metric(state, kMergeMibS, mib * n / (merge_ns / 1e9));
    report_metric(state, kKsmdMsPerMib, ksmd_ns / 1e6 / n / mib);
    report_metric(state, kKsmdShare, ksmd_ns / merge_ns);
  }
  for (const Metric* m : {&kPagesSharing, &kPagesShared, &kStableNodeChains, &kStableNodeDups, &kFullScans})
    run.report_mean(*m);
  report_metric(state, kPagesToScan, static_cast<double>(p.pages_to_scan));
  report_metric(state, kSleepMs, static_cast<double>(p.sleep_ms));
  if (v.after_merge == unmerge && run.timed_ns() > 0)
    report_metric(state, kUnmergeMibS, mib * n / (run.timed_ns() / 1e9));
  if (v.per_page_us) report_metric(state, *v.per_page_us, run.timed_ns() / 1e3 / n / static_cast<double>(p.pages));
  // Counted during the merge (the benchmark process: polling, no faults of its own).
  run.report_counts();
  run.note(fmt::format("merge complete = pages_sharing +{} (expected under max_page_sharing {}); ksmd CPU from {}",
                       static_cast<long long>(run.sum(kPagesSharing) / n), tuning->max_page_sharing(),
                       clock->source()));
  if (run.sum("system_wide_counts") > 0)
    run.note("pages_sharing/pages_shared are system-wide deltas: no per-process KSM counts on this kernel");
  if (!tuning->other_users().empty())
    run.note("other KSM users on this host (judged by this run's processes only; full_scans and the chain counts "
             "include them): " + tuning->other_users());
  run.finish();
}

void register_ksm(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const Sweeps sweeps{r.sweep("ksm_pages", {512}, {512, 4096}),
                      r.sweep("ksm_procs", {2, 8}, {2, 4, 8, 16, 32, 64}),
                      r.sweep("ksm_contents", {1, 64}, {1, 64}),
                      r.sweep("max_page_sharing", {16}, {2, 16, 256}),
                      r.sweep("sharers", {1, 16}, {1, 4, 16, 64}),
                      r.sweep("ksm_pages_to_scan", {1000}, {1000}).front(),
                      r.sweep("ksm_sleep_ms", {0}, {0}).front(),
                      quick};
  add_variants(r, kVariants, [&](const Variant& v) { return v.points(sweeps); }, run, quick ? 2 : 10);
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
                                   "are timed.",
                    .oracle = "the expected pages_sharing/pages_shared, every page of every region a KSM page "
                              "(kpageflags), content intact in every process after the merge, the COW break and the "
                              "unmerge.",
                    .parameters = "ksm_pages: M pages per process (quick 512; full 512,4096); ksm_procs: P (quick "
                                  "2,8; full 2..64); ksm_contents: K (1,64); max_page_sharing (quick 16; full "
                                  "2,16,256); sharers for cow_break (quick 1,16; full 1..64); ksm_pages_to_scan "
                                  "(1000), ksm_sleep_ms (0)",
                    .needs = {{"KSM, root", ksm_unavailable}},
                    .register_benchmarks = register_ksm});

}  // namespace rmapbench
