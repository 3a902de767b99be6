#include "benchmarks/mm/ksm_processes.hpp"

#include <fmt/core.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/procfs/ksm_users.hpp"
#include "kernels/procfs/sysfs_text.hpp"

#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif

namespace rmapbench::mm::ksm {

namespace {

// How often the merge completion is polled: one pread of pages_sharing.
constexpr long kPollUs = 200;

// ------------------------------------------------------------ in each agent

enum Op { kFill = 1, kDrop, kOptIn, kUnmerge, kVerify, kWrite, kCorrupt, kMigrate, kWhere };

struct Held {
  long pages = 0, contents = 1;
  std::optional<KsmRegion> region;
  bool wrote = false;
  bool merge_any = false;  // PR_SET_MEMORY_MERGE is on
};

// Drops the region (and PR_SET_MEMORY_MERGE, which would make the next
// region mergeable before its opt-in).
Result<harness::Figures> drop_region(Held& h, long) {
  h.region.reset();
  h.wrote = false;
  if (h.merge_any && prctl(PR_SET_MEMORY_MERGE, 0, 0, 0, 0) != 0)
    return Status::from_errno("prctl(PR_SET_MEMORY_MERGE, 0)");
  h.merge_any = false;
  return harness::Figures{};
}

Result<harness::Figures> fill_region(Held& h, long seed) {
  if (auto d = drop_region(h, 0); !d) return d;
  auto r = KsmRegion::create(h.pages, h.contents, static_cast<uint32_t>(seed));
  if (!r) return r.status();
  h.region.emplace(std::move(*r));
  return harness::Figures{};
}

Result<KsmRegion*> region_of(Held& h) {
  if (!h.region) return Status::error("no region: reset first");
  return &*h.region;
}

Result<harness::Figures> opt_in(Held& h, long mode) {
  auto r = region_of(h);
  if (!r) return r.status();
  if (mode == static_cast<long>(OptIn::prctl)) {
    if (prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0)
      return errno == EINVAL ? Status::skip(kPrctlUnsupported)
                             : Status::error(fmt::format("prctl(PR_SET_MEMORY_MERGE): {}", std::strerror(errno)));
    h.merge_any = true;
  } else if (madvise((*r)->start(), (*r)->bytes(), MADV_MERGEABLE) != 0) {
    return Status::error(fmt::format("madvise(MADV_MERGEABLE): {}", std::strerror(errno)));
  }
  return harness::Figures{static_cast<double>(reinterpret_cast<uintptr_t>((*r)->start())),
                          static_cast<double>((*r)->bytes())};
}

Result<harness::Figures> unmerge(Held& h, long) {
  auto r = region_of(h);
  if (!r) return r.status();
  const int64_t t0 = monotonic_ns();
  int rc = madvise((*r)->start(), (*r)->bytes(), MADV_UNMERGEABLE);
  const int64_t ns = monotonic_ns() - t0;
  if (rc != 0) return Status::error(fmt::format("madvise(MADV_UNMERGEABLE): {}", std::strerror(errno)));
  return harness::Figures{static_cast<double>(ns)};
}

Result<harness::Figures> verify_region(Held& h, long index) {
  auto r = region_of(h);
  if (!r) return r.status();
  Status s = (*r)->verify([&](long) { return h.wrote; }, fmt::format("process {} ({})", index, getpid()));
  if (s.failed()) return s;
  return harness::Figures{};
}

Result<harness::Figures> write_region(Held& h, long) {
  auto r = region_of(h);
  if (!r) return r.status();
  const int64_t t0 = monotonic_ns();
  for (long j = 0; j < (*r)->pages(); ++j) (*r)->mark(j);
  const int64_t ns = monotonic_ns() - t0;
  h.wrote = true;
  return harness::Figures{static_cast<double>(ns)};
}

Result<harness::Figures> corrupt(Held& h, long) {
  auto r = region_of(h);
  if (!r) return r.status();
  (*r)->corrupt_one_byte_for_test((*r)->pages() / 2);
  return harness::Figures{};
}

// move_pages of every page to `node` (kMigrate), or where they are (kWhere):
// the ns, the pages on `node`, the others.
Result<harness::Figures> move_or_locate(Held& h, long node, bool move) {
  auto r = region_of(h);
  if (!r) return r.status();
  std::vector<void*> pages(static_cast<size_t>((*r)->pages()));
  for (size_t j = 0; j < pages.size(); ++j) pages[j] = (*r)->start() + j * page_size();
  std::vector<int> nodes(pages.size(), static_cast<int>(node)), status(pages.size(), -1);
  const int64_t t0 = monotonic_ns();
  long rc = move_pages(0, pages.size(), pages.data(), move ? nodes.data() : nullptr, status.data(),
                       move ? MPOL_MF_MOVE_ALL : 0);
  const int64_t ns = monotonic_ns() - t0;
  if (rc < 0) return Status::error(fmt::format("move_pages: {}", std::strerror(errno)));
  long on_node = 0, elsewhere = 0;
  for (int s : status) (s == node ? on_node : elsewhere) += 1;
  return harness::Figures{static_cast<double>(ns), static_cast<double>(on_node), static_cast<double>(elsewhere)};
}
Result<harness::Figures> migrate(Held& h, long node) { return move_or_locate(h, node, true); }
Result<harness::Figures> where(Held& h, long node) { return move_or_locate(h, node, false); }

constexpr harness::Request<Held> kRequests[] = {
    {kFill, fill_region}, {kDrop, drop_region}, {kOptIn, opt_in},   {kUnmerge, unmerge}, {kVerify, verify_region},
    {kWrite, write_region}, {kCorrupt, corrupt},  {kMigrate, migrate}, {kWhere, where},
};

std::string describe(const Counters& now, const Counters& base, const Expected& e) {
  return fmt::format("pages_sharing +{} of +{} expected, pages_shared +{} of +{}, full_scans +{}",
                     now.pages_sharing - base.pages_sharing, e.sharing, now.pages_shared - base.pages_shared, e.shared,
                     now.full_scans - base.full_scans);
}

}  // namespace

std::chrono::milliseconds merge_timeout(long long total_pages, long pages_to_scan, long sleep_ms) {
  // ksmd needs about three passes (checksum, unstable tree, stable tree).
  const long long batches = 3 * total_pages / std::max(1L, pages_to_scan) + 3;
  return std::chrono::milliseconds(30'000 + 10 * batches * (sleep_ms + 2));
}

Result<MergingProcesses> MergingProcesses::spawn(long processes, long pages, long contents) {
  auto agents = harness::AgentGroup::spawn(processes, [&](long i) -> Result<Agent> {
    auto held = std::make_shared<Held>();
    held->pages = pages;
    held->contents = contents;
    auto a = Agent::spawn(1, {}, harness::serve(held, kRequests));
    if (!a) return a.status().context(fmt::format("KSM process {} of {}", i + 1, processes));
    return a;
  });
  if (!agents) return agents.status();
  return MergingProcesses(std::move(*agents));
}

Status MergingProcesses::fill(uint32_t seed) {
  if (auto r = agents_.call_all({kFill, static_cast<long>(seed)}); !r) return r.status().context("filling the pages");
  return Status::ok();
}

Status MergingProcesses::drop() {
  if (auto r = agents_.call_all({kDrop, 0}); !r) return r.status().context("dropping the pages");
  return Status::ok();
}

Status MergingProcesses::verify_each() { return agents_.call_each(kVerify); }

Result<int64_t> MergingProcesses::unmerge_each() {
  int64_t ns = 0;
  for (size_t i = 0; i < agents_.size(); ++i) {
    auto r = agents_[i].call({kUnmerge, 0});
    if (!r) return r.status();
    ns += static_cast<int64_t>(r->values[0]);
  }
  return ns;
}

Result<int64_t> MergingProcesses::write_first() {
  auto r = agents_[0].call({kWrite, 0});
  if (!r) return r.status();
  return static_cast<int64_t>(r->values[0]);
}

Status MergingProcesses::corrupt_first() { return agents_[0].call({kCorrupt, 0}).status(); }

Result<int64_t> MergingProcesses::migrate_first() {
  auto where = agents_[0].call({kWhere, 0});
  if (!where) return where.status();
  const long pages = static_cast<long>(ranges_.front().second / page_size());
  const int from = where->values[1] == static_cast<double>(pages) ? 0 : 1;
  const int target = (from + 1) % host::numa_node_count();
  auto moved = agents_[0].call({kMigrate, target});
  if (!moved) return moved.status();
  for (size_t i = 0; i < agents_.size(); ++i) {
    auto there = agents_[i].call({kWhere, target});
    if (!there) return there.status();
    if (there->values[1] != static_cast<double>(pages))
      return Status::error(fmt::format("after move_pages to node {}, process {} sees {} of {} pages there", target, i,
                                       there->values[1], pages));
  }
  return static_cast<int64_t>(moved->values[0]);
}

Status MergingProcesses::check_after(const std::function<long(size_t)>& want, const char* when) {
  if (Status s = verify_each(); s.failed()) return s.context(when);
  return check_ksm_pages(want, when);
}

// A count that is off is looked at again for up to 200 ms before it fails:
// seen once in a quick run, a census read 504 of 512 right after the one
// that ended the merge had found all 512; a page frame that is being
// replaced between the pagemap and the kpageflags reads looks "not KSM".
// A page that really lost its KSM mapping (a COW break, an unmerge) stays
// lost, so a real failure still fails.
Status MergingProcesses::check_ksm_pages(const std::function<long(size_t)>& want, const char* when) {
  if (census_unavailable()) return Status::ok();
  constexpr int kLooks = 11;
  const std::vector<pid_t>& pids = agents_.pids();
  for (size_t i = 0; i < pids.size(); ++i) {
    for (int look = 1; look <= kLooks; ++look) {
      auto c = census({pids[i]}, {ranges_[i]});
      if (!c) return c.status().context("KSM page census");
      const long got = c->front().ksm_pages;
      if (got == want(i)) break;
      if (look == kLooks)
        return Status::error(fmt::format("{}: process {} (pid {}) maps {} KSM pages, expected {} (kpageflags, {} "
                                         "looks over 200 ms)",
                                         when, i, pids[i], got, want(i), kLooks));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return Status::ok();
}

Result<Merge> MergingProcesses::merge(OptIn mode, const Expected& e, const Counters& base, const KsmdClock& clock,
                                      std::chrono::milliseconds timeout, long region_pages, bool exclusive,
                                      Tuning* paused) {
  Merge m;
  if (paused)
    if (Status s = paused->pause(); s.failed()) return s;
  auto c0 = clock.cpu_ns();
  if (!c0) return c0.status();
  int64_t t0 = monotonic_ns();
  auto replies = agents_.call_all({kOptIn, static_cast<long>(mode)});
  if (!replies) return replies.status();
  if (paused) {
    if (Status s = paused->resume(); s.failed()) return s;
    t0 = monotonic_ns();
  }
  ranges_.clear();
  for (const auto& r : *replies)
    ranges_.emplace_back(static_cast<uintptr_t>(r.values[0]), static_cast<size_t>(r.values[1]));
  const std::vector<pid_t>& pids = agents_.pids();
  auto sharing_file = CounterFile::open("pages_sharing");
  if (!sharing_file) return sharing_file.status();
  // Our processes' own merged pages decide completion: the system-wide
  // pages_sharing also counts every other KSM user's merging. It stays a
  // cheap first filter (one pread) while nobody else uses KSM.
  auto ours = MergingPages::open(pids);
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
    if (mode == OptIn::madvise) return true;
    // PR_SET_MEMORY_MERGE makes every VMA mergeable: other pages merge too, so
    // our regions are checked page by page (not more often than every 2 ms).
    const int64_t now = monotonic_ns();
    if (now - last_census < 2'000'000) return false;
    last_census = now;
    auto c = census(pids, ranges_);
    if (!c) return c.status();
    for (const auto& one : *c)
      if (one.ksm_pages < region_pages) return false;
    return true;
  };
  auto state = [&] {
    auto now = read_counters();
    std::string s = now ? describe(*now, base, e) : now.status().message();
    // What KSM knows of each process (/proc/<pid>/ksm_stat, Linux 6.1+).
    for (size_t i = 0; i < pids.size() && i < 8; ++i) {
      auto text = sysfs::read_file(fmt::format("/proc/{}/ksm_stat", pids[i]), 4096);
      if (!text) break;
      std::string compact;
      for (std::string_view line : sysfs::split_lines(*text))
        if (!line.empty()) compact += fmt::format("{}{}", compact.empty() ? "" : ", ", line);
      s += fmt::format("; process {}: {}", i, compact);
    }
    return s;
  };
  auto t1 = wait_until(done, timeout, std::chrono::microseconds(kPollUs), "KSM merge", state);
  if (!t1) return t1.status();
  auto c1 = clock.cpu_ns();
  if (!c1) return c1.status();
  m.ns = *t1 - t0;
  m.ksmd_ns = *c1 - *c0;
  auto after = read_counters();
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

Result<OwnMerge> MergingProcesses::own_merge(OptIn mode) {
  OwnMerge o;
  if (census_unavailable()) return o;
  const std::vector<pid_t>& pids = agents_.pids();
  auto files = MergingPages::open(pids);
  if (!files) return o;  // kernel before 6.1
  auto each = files->each();
  if (!each) return each.status();
  long long merged = 0;
  for (long long v : *each) {
    merged += v;
    o.per_process += fmt::format("{}{}", o.per_process.empty() ? "" : ", ", v);
  }
  if (mode == OptIn::prctl) {
    // The whole process is mergeable: count the pages of our regions only.
    merged = 0;
    for (size_t i = 0; i < pids.size(); ++i) {
      auto c = census({pids[i]}, {ranges_[i]});
      if (!c) return c.status().context("KSM page census");
      merged += c->front().ksm_pages;
    }
  }
  auto frames = distinct_ksm_frames(pids, ranges_);
  if (!frames) return frames.status().context("KSM page census");
  o.shared = *frames;
  o.sharing = merged - o.shared;
  o.checked = true;
  return o;
}

Result<OwnMerge> MergingProcesses::check_own_merge(OptIn mode, const Expected& e, const Merge& m, long pages,
                                                   long contents, long max_page_sharing, bool exclusive) {
  // Looked at again for up to 200 ms, as check_ksm_pages() does. Another KSM
  // user whose pages hold the same contents (a QEMU guest running these very
  // workloads: QEMU merges its RAM by default) may map some of our KSM pages
  // too. Our mappings then spread over more KSM pages, never fewer, and every
  // one of them is still merged: the other process's doing, not the kernel
  // losing a mapping.
  const std::vector<pid_t>& ours = agents_.pids();
  auto as_expected = [&](const OwnMerge& o) {
    if (o.sharing == e.sharing && o.shared == e.shared) return true;
    if (o.sharing + o.shared != e.sharing + e.shared || o.shared < e.shared) return false;
    return !host::other_ksm_users([&](pid_t pid) { return std::find(ours.begin(), ours.end(), pid) != ours.end(); })
                .empty();
  };
  Result<OwnMerge> mine = Status::error("not looked");
  for (int look = 1; look <= 11; ++look) {
    mine = own_merge(mode);
    if (!mine || !mine->checked || as_expected(*mine)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!mine) return mine.status();
  const long processes = static_cast<long>(ours.size());
  if (mine->checked && !as_expected(*mine))
    return Status::error(fmt::format("KSM merged this run's processes to pages_sharing {} / pages_shared {}, expected "
                                     "{} / {} for {} processes x {} pages, {} contents, max_page_sharing {} "
                                     "(per process merged pages: {}; system-wide +{} / +{})",
                                     mine->sharing, mine->shared, e.sharing, e.shared, processes, pages, contents,
                                     max_page_sharing, mine->per_process, m.delta.pages_sharing, m.delta.pages_shared));
  if (!mine->checked && mode == OptIn::madvise && exclusive &&
      (m.delta.pages_sharing != e.sharing || m.delta.pages_shared != e.shared))
    return Status::error(fmt::format("KSM merged to pages_sharing +{} / pages_shared +{} (system-wide, no other KSM "
                                     "user), expected +{} / +{} for {} processes x {} pages, {} contents, "
                                     "max_page_sharing {}",
                                     m.delta.pages_sharing, m.delta.pages_shared, e.sharing, e.shared, processes, pages,
                                     contents, max_page_sharing));
  return mine;
}

Status wait_clean(const Counters& base, bool exclusive, const std::vector<pid_t>& pids) {
  bool per_process = true;
  auto rmap_items = [&]() -> long long {
    long long n = 0;
    for (pid_t pid : pids) {
      auto v = ksm_stat_field(pid, "ksm_rmap_items");
      if (!v) {
        per_process = false;  // kernel without ksm_stat: counters only
        return 0;
      }
      n += *v;
    }
    return n;
  };
  auto merged = [&]() -> long long {
    auto m = MergingPages::open(pids);
    auto s = m ? m->sum() : Result<long long>(Status::error("no ksm_merging_pages"));
    return s ? *s : 0;
  };
  // Our processes' rmap items and merged pages; the system-wide counters only
  // where the kernel has no per-process ones, and only when they are ours.
  auto back = [&]() -> Result<bool> {
    const long long items = rmap_items();
    if (per_process) return items == 0 && merged() == 0;
    if (!exclusive) return true;
    auto c = read_counters();
    if (!c) return c.status();
    return c->pages_shared <= base.pages_shared && c->pages_sharing <= base.pages_sharing;
  };
  auto state = [&] {
    auto c = read_counters();
    return c ? fmt::format("rmap items of our processes {}, their merged pages {}; system-wide pages_shared {} (was {}), "
                           "pages_sharing {} (was {})",
                           rmap_items(), merged(), c->pages_shared, base.pages_shared, c->pages_sharing,
                           base.pages_sharing)
             : c.status().message();
  };
  auto t = wait_until(back, std::chrono::milliseconds(30'000), std::chrono::microseconds(500),
                      "KSM cleanup after the regions were dropped", state);
  if (!t) return t.status();
  return Status::ok();
}

}  // namespace rmapbench::mm::ksm
