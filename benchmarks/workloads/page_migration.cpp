// Page migration: folios faulted by the benchmark process and shared with S
// forked sharers (each folio mapped S+1 times), or with a fork chain of depth
// D (we fork A1, A1 forks A2, ... AD; each folio mapped D+1 times through the
// fork-of-fork anon_vma hierarchy, so the walk visits anon_vmas of several
// levels), are migrated to another NUMA node. Migrating a folio replaces every mapping by a migration entry
// (try_to_migrate: an rmap walk over every mapper), copies it, and restores
// every mapping (remove_migration_ptes: the walk again), so the cost grows
// with the mappers, and a walk that misses one leaves the folio mapped: the
// kernel cannot move it.
//
// Timed (kVariants): move_pages(2) with MPOL_MF_MOVE_ALL, mbind(2) MPOL_BIND
// with MPOL_MF_MOVE_ALL, migrate_pages(2) of the whole process. Folio kinds
// (Kind): 4 KiB anonymous pages, PMD THPs. The chain rows are move_pages'
// only: the walk is the same whichever call asked for it. KSM pages are ksm_merge/migrate's.
// Every iteration builds a fresh layout on the source node, so each timed
// call moves the same thing in the same direction.
#include <fmt/core.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/budget.hpp"
#include "benchmarks/mm/migration.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/thp.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/safety/knob_guard.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kUsPerPage, {"migrate_us_per_page", "us", Better::lower, MetricKind::statistical,
                              "the migration system call per base page moved, every mapper remapped"});
RMAPBENCH_METRIC(kUsPerFolio, {"migrate_us_per_folio", "us", Better::lower, MetricKind::statistical,
                               "the migration system call per folio moved (a base page or a THP), every mapper "
                               "remapped"});
RMAPBENCH_METRIC(kSuccessPerFolio, {"pgmigrate_success_per_folio", "pages", Better::higher, MetricKind::exact,
                                    "/proc/vmstat pgmigrate_success per folio moved (base pages: 512 for a PMD THP; "
                                    "system-wide)"});
RMAPBENCH_METRIC(kFailPerFolio, {"pgmigrate_fail_per_folio", "pages", Better::lower, MetricKind::exact,
                                 "/proc/vmstat pgmigrate_fail per folio moved (system-wide; retried pages included)"});
RMAPBENCH_METRIC(kAttempts, {"migrate_attempts", "calls", Better::lower, MetricKind::statistical,
                             "system calls per iteration until every page was on the target node (1 = all at once)"});

namespace {

using mm::migration::Timed;

// Pages the kernel could not move are submitted again, this many calls in
// all, before the iteration is an error: a page busy for a moment (an extra
// reference) moves on the next call, a mapping the rmap walk misses never.
constexpr int kAttemptsPerMove = 3;

// ------------------------------------------------------------ the layout

enum class Kind { base, thp };

struct Point {
  Kind kind;
  long folios;
  long sharers;    // forked by us, side by side
  long depth = 0;  // a fork chain below us instead (0: none)

  long mappers() const { return 1 + sharers + depth; }
  std::string others() const {
    return depth > 0 ? fmt::format("a fork chain of depth {}", depth) : fmt::format("{} sharers", sharers);
  }
};

// The intermediate processes of a chain wait for the level below and run
// nothing of ours: their bytes are read from here (we are root) and compared
// with ours, verified before.
Status same_bytes_as_ours(pid_t pid, char* start, size_t bytes, const std::string& who) {
  std::vector<char> theirs(bytes);
  iovec local{theirs.data(), bytes}, remote{start, bytes};
  const ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
  if (n < 0) return Status::from_errno(who + ": process_vm_readv of the range");
  if (static_cast<size_t>(n) != bytes) return Status::error(fmt::format("{}: read {} of {} bytes", who, n, bytes));
  const auto differs = std::mismatch(theirs.begin(), theirs.end(), start).first;
  if (differs != theirs.end())
    return Status::error(fmt::format("{}: byte {} of the range differs from ours after the migration", who,
                                     differs - theirs.begin()));
  return Status::ok();
}

// The folios an iteration moves: one VMA of base pages, or PMD THPs.
class Layout {
 public:
  static Result<Layout> create(Kind kind, long folios, uint32_t seed) {
    Layout l;
    if (kind == Kind::base) {
      auto a = mm::AnonLayout::create(1, folios, seed);
      if (!a) return a.status().context("base pages");
      l.base_.emplace(std::move(*a));
      l.start_ = l.base_->vma_start(0);
      l.pages_ = folios;
    } else {
      auto r = mm::thp::ThpRegion::create(mm::thp::pmd_size(), folios, seed);
      if (!r) return r.status().context("THP region");
      if (Status s = mm::thp::confirm_thps(*r); s.failed()) return Status::skip(s.message());
      l.thp_.emplace(std::move(*r));
      l.start_ = l.thp_->folio(0);
      l.pages_ = folios * l.thp_->pages_per_folio();
    }
    l.folios_ = folios;
    return l;
  }

  char* start() const { return start_; }
  long pages() const { return pages_; }
  long folios() const { return folios_; }
  long pages_per_folio() const { return pages_ / folios_; }
  size_t folio_bytes() const { return static_cast<size_t>(pages_per_folio()) * mm::page_size(); }
  bool thp() const { return thp_.has_value(); }

  Status verify(const std::string& who) const {
    if (base_) return base_->verify().context(who);
    return thp_->verify([](long, long) { return mm::thp::PageExpect::pattern; }, who);
  }
  void corrupt_one_byte_for_test() {
    if (base_)
      base_->corrupt_one_byte_for_test(0, pages_ / 2);
    else
      thp_->corrupt_one_byte_for_test(0, 3);
  }
  // Every folio still a PMD-mapped THP in `pid` (smaps AnonHugePages).
  Status check_still_thps(pid_t pid, const std::string& who) const {
    if (!thp_) return Status::ok();
    const long long want = static_cast<long long>(folios_) * static_cast<long long>(mm::thp::pmd_size() / 1024);
    auto kb = mm::thp::anon_huge_kb(pid, thp_->start(), thp_->end() - thp_->start());
    if (!kb) return kb.status().context(who);
    if (*kb != want)
      return Status::error(fmt::format("{}: AnonHugePages {} kB of {} kB after the migration: the THPs were split or "
                                       "not mapped by PMD",
                                       who, *kb, want));
    return Status::ok();
  }

 private:
  Layout() = default;
  std::optional<mm::AnonLayout> base_;
  std::optional<mm::thp::ThpRegion> thp_;
  char* start_ = nullptr;
  long pages_ = 0, folios_ = 0;
};

// ------------------------------------------------------------ the variants

struct Nodes {
  int source, target;
};

// One address per folio (see move_range).
Result<Timed> by_move_pages(Layout& l, Nodes n) {
  return mm::migration::move_range(0, l.start(), l.folios(), l.folio_bytes(), n.target, true, kAttemptsPerMove);
}
Result<Timed> by_mbind(Layout& l, Nodes n) {
  return mm::migration::mbind_range(l.start(), l.pages(), n.target, true, kAttemptsPerMove);
}
Result<Timed> by_migrate_pages(Layout& l, Nodes n) {
  return mm::migration::migrate_process(0, n.source, n.target, l.start(), l.pages(), kAttemptsPerMove);
}

struct Variant {
  const char* name;
  Result<Timed> (*migrate)(Layout&, Nodes);
  const char* note;
  bool whole_process;  // moves every page of ours on the source node
};

const Variant kVariants[] = {
    {"move_pages", by_move_pages, "timed: move_pages(2) of the range to the target node, MPOL_MF_MOVE_ALL", false},
    {"mbind", by_mbind,
     "timed: mbind(2) of the range, MPOL_BIND to the target node, MPOL_MF_MOVE_ALL | MPOL_MF_STRICT", false},
    {"migrate_pages", by_migrate_pages,
     "timed: migrate_pages(2) of the whole benchmark process from the source to the target node (its page tables "
     "are walked whole); everything else of the process was moved to the target node first and allocates there, so "
     "the range is all it finds on the source node",
     true},
};

// ------------------------------------------------------------ one iteration

// What one migration moved and found.
struct Moved {
  Timed timed;
  mm::migration::Stats stats;
  std::optional<mm::migration::EntryCounts> entries;  // when counted
};

// A fresh layout on the source node shared with the sharers or the chain,
// migrated to the target, checked. `entries` (the counting pass) counts the
// migration-entry tracepoints around the call; `op_counters` runs the call
// inside Run::count (the per-operation counters).
class Iteration {
 public:
  Iteration(const Variant& v, const Point& p, Nodes nodes, bool corrupt) : v_(v), p_(p), nodes_(nodes), corrupt_(corrupt) {}

  // The layout on the source node, then the sharers or the chain.
  Status set_up(uint32_t seed) {
    auto l = Layout::create(p_.kind, p_.folios, seed);
    if (!l) return l.status();
    layout_.emplace(std::move(*l));
    // Wherever it was faulted: moved to the source node now, untimed, while
    // we are its only mapper.
    auto placed = mm::migration::move_range(0, layout_->start(), layout_->folios(), layout_->folio_bytes(),
                                            nodes_.source, false, kAttemptsPerMove);
    if (!placed) return placed.status().context("placing the layout on the source node");
    if (!placed->outcome.all_moved())
      return Status::error("placing the layout on the source node: " + placed->outcome.summary());
    if (Status s = layout_->check_still_thps(0, "the benchmark process, on the source node"); s.failed()) return s;
    Layout* shared = &*layout_;
    const int target = nodes_.target;
    const long pages = layout_->pages();
    const bool corrupt = corrupt_;
    // What every sharer sees after the migration, in itself.
    auto sharer_check = [shared, target, pages, corrupt](long i) -> Status {
      auto here = mm::migration::nodes_of(0, shared->start(), pages);
      if (!here) return here.status();
      const auto o = mm::migration::decode_statuses(*here, target);
      if (!o.all_moved()) return Status::error(fmt::format("sharer {} sees {}", i, o.summary()));
      // After the node query: the COW copy the write makes may be anywhere.
      if (corrupt && i == 0) shared->corrupt_one_byte_for_test();
      return shared->verify("its data after the migration");
    };
    if (p_.depth > 0) {
      // The deepest process runs the sharers' check on request.
      auto check_in_deepest = [sharer_check](const mm::AgentRequest&) { return mm::reply_status(sharer_check(0)); };
      auto chain = mm::Agent::spawn(static_cast<int>(p_.depth), {}, check_in_deepest);
      if (!chain) return chain.status().context("the fork chain");
      chain_.emplace(std::move(*chain));
      return Status::ok();
    }
    auto group = mm::ChildGroup::spawn(p_.sharers, {}, sharer_check);
    if (!group) return group.status();
    group_.emplace(std::move(*group));
    return Status::ok();
  }

  // The timed call (with the tracepoints counted when `count_entries`).
  Status migrate(bool count_entries) {
    std::optional<mm::migration::EntryTracepoints> tracepoints;
    if (count_entries) {
      auto t = mm::migration::EntryTracepoints::open();
      if (!t) {
        entries_unavailable_ = t.status().message();
      } else {
        tracepoints.emplace(std::move(*t));
      }
    }
    auto before = mm::migration::read_stats();
    if (!before) return before.status();
    std::optional<mm::migration::EntryCounts> entries_before;
    if (tracepoints) {
      auto e = tracepoints->read();
      if (!e) return e.status();
      entries_before = *e;
    }
    auto timed = v_.migrate(*layout_, nodes_);
    if (!timed) return timed.status();
    if (tracepoints) {
      auto e = tracepoints->read();
      if (!e) return e.status();
      moved_.entries = *e - *entries_before;
    }
    auto after = mm::migration::read_stats();
    if (!after) return after.status();
    moved_.timed = *timed;
    moved_.stats = *after - *before;
    return Status::ok();
  }

  // Every process sees every page on the target node, on the same frames,
  // every byte intact; the tracepoints (when counted) saw one entry set and
  // removed per mapping.
  Status check() {
    const auto& o = moved_.timed.outcome;
    if (!o.all_moved())
      return Status::error(fmt::format("{} of {} {} with {}, after {} calls: {}{} (pgmigrate_fail +{})", v_.name,
                                       layout_->folios(), layout_->thp() ? "PMD THPs" : "base pages", p_.others(),
                                       moved_.timed.attempts, o.summary(),
                                       layout_->thp() && v_.migrate == by_move_pages ? " (one address per THP)" : "",
                                       moved_.stats.fail));
    const std::vector<pid_t>& others = chain_ ? chain_->chain() : group_->pids();
    std::vector<pid_t> pids = {0};
    pids.insert(pids.end(), others.begin(), others.end());
    std::vector<std::string> who;
    std::vector<std::vector<uint64_t>> frames;
    const bool pfns = !mm::census_unavailable();
    for (size_t k = 0; k < pids.size(); ++k) {
      if (k == 0)
        who.push_back("the benchmark process");
      else if (chain_)
        who.push_back(fmt::format("chain level {} of {} (pid {})", k, p_.depth, pids[k]));
      else
        who.push_back(fmt::format("sharer {} (pid {})", k - 1, pids[k]));
      auto nodes = mm::migration::nodes_of(pids[k], layout_->start(), layout_->pages());
      if (!nodes) return nodes.status().context(who.back());
      const auto seen = mm::migration::decode_statuses(*nodes, nodes_.target);
      if (!seen.all_moved())
        return Status::error(fmt::format("after {}: {} sees {}", v_.name, who.back(), seen.summary()));
      if (Status s = layout_->check_still_thps(pids[k], who.back()); s.failed()) return s;
      if (pfns) {
        auto f = mm::migration::frames_of(pids[k], layout_->start(), layout_->pages());
        if (!f) return f.status().context(who.back());
        frames.push_back(std::move(*f));
      }
    }
    if (const std::string d = mm::migration::frame_disagreement(frames, who); !d.empty())
      return Status::error(fmt::format("after {}, the mappers disagree on the frames (pagemap): {}", v_.name, d));
    if (Status s = layout_->verify("the benchmark process after the migration"); s.failed()) return s;
    if (chain_) {
      const size_t bytes = static_cast<size_t>(layout_->pages()) * mm::page_size();
      for (size_t k = 1; k + 1 < pids.size(); ++k)
        if (Status s = same_bytes_as_ours(pids[k], layout_->start(), bytes, who[k]); s.failed()) return s;
      if (auto r = chain_->call({0, 0}); !r) return r.status().context(who.back());
    } else if (Status s = group_->check(); s.failed()) {
      return s;
    }
    // With no sharer the corruption hook acts on us.
    if (corrupt_ && p_.mappers() == 1) {
      layout_->corrupt_one_byte_for_test();
      if (Status s = layout_->verify("the benchmark process after the migration"); s.failed()) return s;
    }
    // A correct kernel that needed another call (a page busy for a moment)
    // set and removed entries for the failed tries too: counts then are not
    // exact, and only the call that needed one try is held to them.
    if (moved_.entries && moved_.timed.attempts > 1)
      entries_unavailable_ = fmt::format("the counted migration needed {} calls", moved_.timed.attempts);
    else if (moved_.entries) {
      const long long mappings = static_cast<long long>(p_.mappers());
      const long long pte = layout_->thp() ? 0 : layout_->pages() * mappings;
      const long long pmd = layout_->thp() ? layout_->folios() * mappings : 0;
      if (const std::string e = mm::migration::entry_count_problem(*moved_.entries, pte, pmd); !e.empty())
        return Status::error(fmt::format("{} of {} folios with {}: the rmap walk did not replace and restore "
                                         "every mapping once: {}",
                                         v_.name, layout_->folios(), p_.others(), e));
    }
    if (chain_) {
      chain_.reset();
      return Status::ok();
    }
    return group_->release();
  }

  const Moved& moved() const { return moved_; }
  const std::string& entries_unavailable() const { return entries_unavailable_; }

 private:
  const Variant& v_;
  Point p_;
  Nodes nodes_;
  bool corrupt_;
  std::optional<Layout> layout_;
  std::optional<mm::ChildGroup> group_;
  std::optional<mm::Agent> chain_;
  Moved moved_;
  std::string entries_unavailable_;
};

// ------------------------------------------------------------ one benchmark

void run(benchmark::State& state, const Variant& v, const Point& p) {
  harness::Run run(state, {v.note});
  if (!host::running_as_root())
    return run.stop(Status::skip("needs root: MPOL_MF_MOVE_ALL (pages other processes map) needs CAP_SYS_NICE"));
  // The source: node 0, or the first with memory.
  std::vector<int> with_memory;
  for (const auto& n : host::facts().numa_nodes)
    if (n.memory_bytes > 0) with_memory.push_back(n.id);
  const int source = with_memory.empty() ? 0 : *std::min_element(with_memory.begin(), with_memory.end());
  auto target = mm::migration::other_node(source);
  if (!target) return run.stop(target.status());
  const Nodes nodes{source, *target};
  std::optional<std::vector<safety::KnobGuard>> thp_guards;
  if (p.kind == Kind::thp) {
    if (auto why = mm::thp::unavailable()) return run.stop(Status::skip(*why));
    std::vector<std::string> notes;
    auto g = mm::thp::allow_size(static_cast<long>(mm::thp::pmd_size() / 1024), &notes);
    for (auto& n : notes) run.note(std::move(n));
    if (!g) return run.stop(Status::skip(g.status().message()));
    thp_guards.emplace(std::move(*g));
  }
  const long pages = p.folios * (p.kind == Kind::thp ? static_cast<long>(mm::thp::pmd_size() / mm::page_size()) : 1);
  const mm::Need processes = p.depth > 0 ? mm::grows_with("depth", p.depth) : mm::grows_with("sharers", p.sharers);
  if (!mm::within_budget(state, {processes, mm::fixed(1), mm::fixed(pages)})) return;
  // migrate_pages moves every page of ours on the source node: everything
  // but the layout lives and allocates on the target (the policy is ours
  // until the benchmark ends).
  std::optional<mm::migration::AllocationsOn> elsewhere;
  if (v.whole_process) {
    auto a = mm::migration::AllocationsOn::node(nodes.target);
    if (!a) return run.stop(a.status());
    elsewhere.emplace(std::move(*a));
    if (Status s = mm::migration::move_this_process_to(nodes.target); s.failed()) return run.stop(s);
  }
  const bool corrupt = mm::test_corruption_requested("page_migration");
  const double folios = static_cast<double>(p.folios);
  const long pages_per_folio = p.kind == Kind::thp ? static_cast<long>(mm::thp::pmd_size() / mm::page_size()) : 1;
  uint32_t seed = 17;
  const bool timed = run.time(
      [&]() -> Result<int64_t> {
        Iteration it(v, p, nodes, corrupt);
        if (Status s = it.set_up(seed++); s.failed()) return s;
        if (Status s = it.migrate(false); s.failed()) return s;
        if (Status s = it.check(); s.failed()) return s;
        const Moved& m = it.moved();
        run.add("attempts", m.timed.attempts);
        run.add("success", static_cast<double>(m.stats.success));
        run.add("fail", static_cast<double>(m.stats.fail));
        return m.timed.ns;
      },
      folios);
  if (!timed) return;
  // The counting pass, apart from the timing: the per-operation counters and
  // the migration-entry tracepoints (each event costs the call a little).
  Iteration counted(v, p, nodes, corrupt);
  Status c = run.count(
      1, [&] { return counted.migrate(true); }, [&] { return counted.set_up(seed++); });
  if (c.failed()) return run.stop(c);
  if (Status s = counted.check(); s.failed()) return run.stop(s);
  if (counted.entries_unavailable().empty())
    run.note(fmt::format("rmap walk checked once by tracepoints: {} PTE and {} PMD migration entries set and removed, "
                         "one per mapping",
                         counted.moved().entries->set_pte, std::max(0LL, counted.moved().entries->set_pmd)));
  else
    run.note("rmap walk not checked by tracepoints: " + counted.entries_unavailable());

  const double n = static_cast<double>(std::max(1L, run.iterations()));
  const double per_folio_us = run.timed_ns() / 1e3 / n / folios;
  report_metric(state, kUsPerFolio, per_folio_us);
  report_metric(state, kUsPerPage, per_folio_us / static_cast<double>(pages_per_folio));
  report_metric(state, kSuccessPerFolio, run.sum("success") / n / folios);
  report_metric(state, kFailPerFolio, run.sum("fail") / n / folios);
  report_metric(state, kAttempts, run.sum("attempts") / n);
  run.report_counts(folios);
  run.note(fmt::format("{} {} per iteration, node {} -> node {}, {}", p.folios,
                       p.kind == Kind::thp ? "PMD THPs" : "base pages", nodes.source, nodes.target, p.others()));
  run.finish();
}

void register_page_migration(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const std::vector<long> sharers = r.sweep("sharers", {0, 4}, {0, 4, 16, 64});
  const std::vector<long> base_pages = r.sweep("base_pages", {64}, {64, 512});
  const std::vector<long> thps = r.sweep("thps", {2}, {2, 8});
  const std::vector<long> depths = r.sweep("depth", {4}, {1, 4, 16});
  auto points = [&](const Variant& v) {
    std::vector<std::pair<std::string, Point>> out;
    for (long n : base_pages)
      for (long s : sharers) out.emplace_back(fmt::format("/base/pages:{}/sharers:{}", n, s), Point{Kind::base, n, s});
    for (long n : thps)
      for (long s : sharers) out.emplace_back(fmt::format("/thp/folios:{}/sharers:{}", n, s), Point{Kind::thp, n, s});
    if (v.migrate != by_move_pages) return out;
    for (long n : base_pages)
      for (long d : depths) out.emplace_back(fmt::format("/base/pages:{}/depth:{}", n, d), Point{Kind::base, n, 0, d});
    for (long n : thps)
      for (long d : depths) out.emplace_back(fmt::format("/thp/folios:{}/depth:{}", n, d), Point{Kind::thp, n, 0, d});
    return out;
  };
  add_variants(r, kVariants, points, run, quick ? 2 : 10);
}

std::optional<std::string> fewer_than_two_nodes() {
  if (host::numa_node_count() < 2)
    return fmt::format("needs >= 2 NUMA nodes (this host has {})", host::numa_node_count());
  return std::nullopt;
}

std::optional<std::string> not_root() {
  if (!host::running_as_root()) return "needs root: MPOL_MF_MOVE_ALL (pages other processes map) needs CAP_SYS_NICE";
  return std::nullopt;
}

}  // namespace

RMAPBENCH_WORKLOAD(page_migration,
                   {.name = "page_migration",
                    .kernel_path = "migrate_pages -> migrate_pages_batch: migrate_folio_unmap (try_to_migrate: "
                                   "rmap_walk over every mapper), move_to_new_folio, remove_migration_ptes (the walk "
                                   "again); from move_pages(2) (do_pages_move), mbind(2) (do_mbind) and "
                                   "migrate_pages(2) (do_migrate_pages)",
                    .description = "Each iteration faults a fresh region (64 base pages, or PMD THPs through "
                                   "MADV_HUGEPAGE) with a seeded pattern, places it on the source node and shares it "
                                   "with S forked sharers, so every folio is mapped S+1 times (move_pages also: with a "
                                   "fork chain of depth D, every process of it keeping the mappings, D+1 times over "
                                   "the fork-of-fork anon_vma hierarchy). Timed: its migration to "
                                   "the other node by move_pages(2) (MPOL_MF_MOVE_ALL), mbind(2) (MPOL_BIND, "
                                   "MPOL_MF_MOVE_ALL) or migrate_pages(2) of the whole process; pages the kernel could "
                                   "not move are submitted again, 3 calls in all. A counting pass on a layout of its "
                                   "own counts the per-operation counters and the migration-entry tracepoints.",
                    .oracle = "every page on the target node as every process sees it (move_pages queries, in each "
                              "sharer or the deepest of the chain, and by pid), on the same page frames in every "
                              "process (pagemap), THPs still PMD-mapped, every byte intact in every process (the "
                              "chain's intermediate levels read with process_vm_readv); a page not moved is an error "
                              "naming the errnos; migrate:set_migration_pte / remove_migration_pte "
                              "(thp:*_migration_pmd for THPs) counted once per mapping (pages x (S+1), or x (D+1)) "
                              "where tracefs allows.",
                    .parameters = "sharers: processes besides us mapping the folios (quick 0,4; full 0,4,16,64); "
                                  "base_pages: 4 KiB pages of the base kind (quick 64; full 64,512); thps: PMD THPs "
                                  "of the thp kind (quick 2; full 2,8); depth: the fork chain mapping the folios "
                                  "instead of sharers, move_pages only (quick 4; full 1,4,16)",
                    .needs = {{">= 2 NUMA nodes", fewer_than_two_nodes},
                              {"root (CAP_SYS_NICE for MPOL_MF_MOVE_ALL)", not_root}},
                    .register_benchmarks = register_page_migration});

}  // namespace rmapbench
