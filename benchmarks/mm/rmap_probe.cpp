#include "benchmarks/mm/rmap_probe.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/migration.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/thp.hpp"

namespace rmapbench::mm::rmap_probe {

namespace {

constexpr uint64_t kStep = 0x9E3779B97F4A7C15ull;
// The shrinker and split_huge_pages take folio locks with trylock and give
// up on a folio someone holds an extra reference to: a folio left whole once
// is tried again before it counts as a missed mapping.
constexpr int kAttempts = 3;

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += kStep;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

long end_page(const Piece& p) { return p.first_page + p.pages; }

std::string who_with_pid(const View& v) { return v.pid == 0 ? v.who : fmt::format("{} (pid {})", v.who, v.pid); }

}  // namespace

// ------------------------------------------------------------ the expected state

std::map<FolioId, std::vector<size_t>> mappers(const std::vector<View>& views, long ppf) {
  std::map<FolioId, std::vector<size_t>> out;
  for (size_t i = 0; i < views.size(); ++i)
    for (const Piece& p : views[i].pieces) {
      if (p.pages <= 0) continue;
      for (long f = p.first_page / ppf; f <= (end_page(p) - 1) / ppf; ++f) {
        auto& who = out[{p.seed, f}];
        if (who.empty() || who.back() != i) who.push_back(i);
      }
    }
  return out;
}

std::vector<uintptr_t> drop_addresses(const View& view, long ppf, size_t page_bytes) {
  std::vector<uintptr_t> out;
  for (const Piece& p : view.pieces) {
    if (p.pages <= 0) continue;
    for (long f = p.first_page / ppf; f <= (end_page(p) - 1) / ppf; ++f) {
      const long last = std::min(end_page(p), (f + 1) * ppf) - 1;
      out.push_back(p.start + static_cast<uintptr_t>(last - p.first_page) * page_bytes);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<WalkTarget> walk_targets(const std::vector<View>& views, long ppf, size_t page_bytes) {
  std::map<FolioId, WalkTarget> first;
  for (size_t i = 0; i < views.size(); ++i)
    for (const Piece& p : views[i].pieces) {
      if (p.pages <= 0) continue;
      for (long f = p.first_page / ppf; f <= (end_page(p) - 1) / ppf; ++f) {
        const FolioId id{p.seed, f};
        if (first.count(id)) continue;
        const long from = std::max(p.first_page, f * ppf);
        const long to = std::min(end_page(p), (f + 1) * ppf);
        first[id] = {id, i, p.start + static_cast<uintptr_t>(from - p.first_page) * page_bytes, to - from};
      }
    }
  std::vector<WalkTarget> out;
  for (auto& [id, t] : first) out.push_back(t);
  return out;
}

Piece moved(const Piece& p, intptr_t delta) {
  Piece q = p;
  q.start = static_cast<uintptr_t>(static_cast<intptr_t>(p.start) + delta);
  return q;
}

Piece cut(const Piece& p, long pages) {
  Piece q = p;
  q.pages = std::min(p.pages, pages);
  return q;
}

// ------------------------------------------------------------ the sequences' expected states

std::vector<Piece> whole(const Shape& s) { return {{s.start, s.seed, 0, s.folios * s.pages_per_folio}}; }

Remapped remapped(const Shape& s, Remap how, uintptr_t destination) {
  switch (how) {
    case Remap::move: return {destination, s.bytes()};
    case Remap::grow: return {destination, s.bytes() + s.folio_bytes()};
    case Remap::shrink: return {s.start, s.bytes() - s.folio_bytes() / 2};
  }
  return {};
}

std::vector<Piece> after_remap(const Shape& s, Remap how, uintptr_t destination) {
  const Remapped r = remapped(s, how, destination);
  const long pages = static_cast<long>(r.bytes / s.page_bytes);
  const long layout_pages = s.folios * s.pages_per_folio;
  std::vector<Piece> out = {{r.start, s.seed, 0, std::min(pages, layout_pages)}};
  if (pages > layout_pages) out.push_back({r.start + s.bytes(), s.seed, layout_pages, pages - layout_pages});
  return out;
}

std::vector<Piece> after_munmap_then_merge(const Shape& s, uint32_t neighbour_seed) {
  const long kept = (s.folios - 1) * s.pages_per_folio;
  return {{s.start, s.seed, 0, kept},
          {s.start + static_cast<size_t>(kept) * s.page_bytes, neighbour_seed, kept, s.pages_per_folio}};
}

std::pair<uintptr_t, size_t> mprotect_middle(const Shape& s) {
  return {s.start + s.folio_bytes() / 2, s.bytes() - s.folio_bytes()};
}

std::vector<View> views_of(const std::vector<Piece>& ours, const std::vector<Piece>& theirs,
                           const std::vector<pid_t>& pids, const std::string& role) {
  std::vector<View> out = {{"the benchmark process", 0, ours}};
  for (size_t i = 0; i < pids.size(); ++i) out.push_back({fmt::format("{} {}", role, i), pids[i], theirs});
  return out;
}

std::vector<View> views_of_fork_of_fork(const Shape& ours, const Shape& childs_own, pid_t child,
                                        const std::vector<pid_t>& grandchildren) {
  std::vector<Piece> inherited = whole(ours);
  inherited.push_back(whole(childs_own).front());
  std::vector<View> out = views_of(whole(ours), inherited, grandchildren, "grandchild");
  out.insert(out.begin() + 1, View{"child", child, inherited});
  return out;
}

std::vector<View> views_of_orphaned(const Shape& ours, const Shape& parents_own, const std::vector<pid_t>& orphans) {
  std::vector<Piece> inherited = whole(ours);
  inherited.push_back(whole(parents_own).front());
  return views_of(whole(ours), inherited, orphans, "orphan");
}

// ------------------------------------------------------------ the data

uint64_t pattern_word(uint32_t seed, long page, size_t w) {
  return mix64((static_cast<uint64_t>(seed) << 40) ^ static_cast<uint64_t>(page)) + w * kStep;
}

void fill(const Piece& piece) {
  const size_t ps = page_size();
  const size_t words = ps / sizeof(uint64_t);
  for (long i = 0; i < piece.pages; ++i) {
    auto* w = reinterpret_cast<uint64_t*>(piece.start + static_cast<size_t>(i) * ps);
    const long page = piece.first_page + i;
    for (size_t k = 0; k < words; ++k) w[k] = pattern_word(piece.seed, page, k);
  }
}

Status verify(const View& view, const std::vector<uintptr_t>& dropped) {
  const size_t ps = page_size();
  const size_t words = ps / sizeof(uint64_t);
  for (const Piece& p : view.pieces)
    for (long i = 0; i < p.pages; ++i) {
      const uintptr_t address = p.start + static_cast<size_t>(i) * ps;
      const bool zero = std::binary_search(dropped.begin(), dropped.end(), address);
      const long page = p.first_page + i;
      const auto* w = reinterpret_cast<const volatile uint64_t*>(address);
      for (size_t k = 0; k < words; ++k) {
        const uint64_t want = zero ? 0 : pattern_word(p.seed, page, k);
        const uint64_t got = w[k];
        if (got == want) continue;
        size_t byte = 0;
        while (byte < 7 && ((got >> (8 * byte)) & 0xff) == ((want >> (8 * byte)) & 0xff)) ++byte;
        return Status::error(fmt::format(
            "{}: layout {} page {} at 0x{:x}, byte {} is 0x{:02x}, expected 0x{:02x} ({})", who_with_pid(view), p.seed,
            page, address, k * 8 + byte, (got >> (8 * byte)) & 0xff, (want >> (8 * byte)) & 0xff,
            zero ? "a dropped page must read as zeros" : "data lost or corrupted"));
      }
    }
  return Status::ok();
}

void corrupt_one_byte_for_test(const View& view) {
  for (const Piece& p : view.pieces)
    if (p.pages > 0) {
      volatile char* c = reinterpret_cast<char*>(p.start) + 100;
      *c = static_cast<char>(*c ^ 0x5a);
      return;
    }
}

// ------------------------------------------------------------ the walk

Result<std::vector<StillLarge>> pages_in_large_folios(const View& view) {
  const size_t ps = page_size();
  std::vector<std::pair<uintptr_t, size_t>> ranges;
  for (const Piece& p : view.pieces)
    if (p.pages > 0) ranges.emplace_back(p.start, static_cast<size_t>(p.pages) * ps);
  auto entries = pagemap_entries(view.pid, ranges);
  if (!entries) return entries.status();
  int kfd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (kfd < 0) return Status::from_errno("/proc/kpageflags");
  std::vector<StillLarge> out;
  size_t next = 0;  // entries are in piece order
  for (const Piece& p : view.pieces) {
    for (long i = 0; i < p.pages; ++i) {
      const PagemapEntry& e = (*entries)[next++];
      if (!e.present || e.swapped) continue;
      uint64_t flags = 0;
      if (pread(kfd, &flags, sizeof flags, static_cast<off_t>(e.pfn * sizeof(uint64_t))) != sizeof flags) {
        const int err = errno;
        close(kfd);
        return Status::from_errno("/proc/kpageflags", err);
      }
      if (flags & kKpfThp) out.push_back({p.start + static_cast<size_t>(i) * ps, p.seed, p.first_page + i});
    }
  }
  close(kfd);
  return out;
}

Result<Walk> Walk::choose() {
  if (auto why = thp::unavailable()) return Status::skip(*why);
  Walk w;
  auto other = migration::other_node(0);
  if (other && geteuid() == 0) {
    w.kind_ = Kind::migration;
    return w;
  }
  w.why_not_migration_ = other ? "needs root: move_pages MPOL_MF_MOVE_ALL of folios other processes map"
                               : other.status().message();
  if (auto why = census_unavailable())
    return Status::skip(fmt::format("cannot see whether a folio was split in every process: {}", *why));
  auto path = thp::debugfs_split_path();
  if (path) {
    w.kind_ = Kind::debugfs_split;
    w.debugfs_path_ = *path;
  } else {
    w.kind_ = Kind::deferred_split;
    w.why_not_debugfs_ = path.status().message();
  }
  return w;
}

std::string Walk::note() const {
  switch (kind_) {
    case Kind::migration:
      return "rmap walk: migration of every folio to another NUMA node (move_pages MPOL_MF_MOVE_ALL of one address "
             "of the folio, from one of its mappers)";
    case Kind::debugfs_split:
      return fmt::format("rmap walk: THP split by <debugfs>/split_huge_pages over each folio in one of its mappers "
                         "(no migration: {})",
                         why_not_migration_);
    case Kind::deferred_split:
      return fmt::format("rmap walk: THP split by the deferred split shrinker (every mapper MADV_DONTNEEDs the last "
                         "page it maps of each folio, then drop_slab); no migration: {}; debugfs unusable: {}",
                         why_not_migration_, why_not_debugfs_);
  }
  return "";
}

Result<int64_t> Walk::run(const std::vector<View>& views, long ppf) const {
  return kind_ == Kind::migration ? migrate(views, ppf) : split(views, ppf);
}

Misplaced misplaced(const View& view, const std::vector<std::vector<int>>& nodes, const std::map<FolioId, int>& target,
                    long ppf, size_t page_bytes) {
  Misplaced m;
  for (size_t k = 0; k < view.pieces.size() && k < nodes.size(); ++k) {
    const Piece& p = view.pieces[k];
    for (long i = 0; i < p.pages && static_cast<size_t>(i) < nodes[k].size(); ++i) {
      const long page = p.first_page + i;
      auto it = target.find({p.seed, page / ppf});
      const int want = it == target.end() ? -1 : it->second;
      const int got = nodes[k][static_cast<size_t>(i)];
      if (got == want) continue;
      if (m.count++ == 0) m = {1, p.start + static_cast<size_t>(i) * page_bytes, p.seed, page, got, want};
    }
  }
  return m;
}

Result<int64_t> Walk::migrate(const std::vector<View>& views, long ppf) const {
  const size_t ps = page_size();
  const std::vector<WalkTarget> targets = walk_targets(views, ppf, ps);
  std::map<FolioId, int> target_node;
  std::map<FolioId, std::string> outcome;
  int64_t ns = 0;
  // One address per folio: the kernel moves a THP whole from any address
  // in it, through one rmap walk over all its mappers.
  for (const WalkTarget& t : targets) {
    const pid_t pid = views[t.view].pid;
    void* at = reinterpret_cast<void*>(t.start);
    auto from = migration::nodes_of(pid, at, 1);
    if (!from) return from.status();
    if (from->front() < 0)
      return Status::error(fmt::format("{}: layout {} folio {} at 0x{:x} is not present before the migration",
                                       who_with_pid(views[t.view]), t.folio.first, t.folio.second, t.start));
    auto to = migration::other_node(from->front());
    if (!to) return to.status();
    target_node[t.folio] = *to;
    auto moved = migration::move_range(pid, at, 1, ps, *to, true, kAttempts);
    if (!moved) return moved.status();
    ns += moved->ns;
    outcome[t.folio] = moved->outcome.summary();
    // A THP the kernel split to move it (no huge page free on the target)
    // leaves its other pages behind: they are moved too, untimed, so only a
    // mapping the walk missed can keep a page away.
    auto here = migration::nodes_of(pid, at, t.pages);
    if (!here) return here.status();
    if (std::any_of(here->begin(), here->end(), [&](int n) { return n != *to; })) {
      auto rest = migration::move_range(pid, at, t.pages, ps, *to, true, kAttempts);
      if (!rest) return rest.status();
      outcome[t.folio] += "; then its every page: " + rest->outcome.summary();
    }
  }
  size_t off_target_in = 0;
  std::optional<std::pair<size_t, Misplaced>> first;
  for (size_t i = 0; i < views.size(); ++i) {
    std::vector<std::vector<int>> nodes;
    for (const Piece& p : views[i].pieces) {
      auto n = migration::nodes_of(views[i].pid, reinterpret_cast<void*>(p.start), p.pages);
      if (!n) return n.status().context(fmt::format("migration oracle, {}", who_with_pid(views[i])));
      nodes.push_back(std::move(*n));
    }
    const Misplaced m = misplaced(views[i], nodes, target_node, ppf, ps);
    if (m.count == 0) continue;
    ++off_target_in;
    if (!first) first.emplace(i, m);
  }
  if (!first) return ns;
  const Misplaced& m = first->second;
  const auto who_maps = mappers(views, ppf);
  auto it = who_maps.find({m.seed, m.page / ppf});
  return Status::error(fmt::format(
      "rmap walk (migration) missed a mapping: {} still has {} pages off their folio's target node, the first layout "
      "{} page {} (folio {}) at 0x{:x} on node {}, not {} (move_pages from its walker: {}); {} of {} processes have "
      "pages left behind; that folio has {} mappers",
      who_with_pid(views[first->first]), m.count, m.seed, m.page, m.page / ppf, m.address, m.node, m.target,
      outcome[{m.seed, m.page / ppf}], off_target_in, views.size(), it == who_maps.end() ? 0 : it->second.size()));
}

Result<int64_t> Walk::split(const std::vector<View>& views, long ppf) const {
  const size_t ps = page_size();
  const std::vector<WalkTarget> targets = walk_targets(views, ppf, ps);
  auto once = [&]() -> Result<int64_t> {
    if (kind_ == Kind::deferred_split) return thp::run_shrinkers();
    int64_t ns = 0;
    for (const WalkTarget& t : targets) {
      const pid_t pid = views[t.view].pid == 0 ? getpid() : views[t.view].pid;
      auto split = thp::debugfs_split(debugfs_path_, pid, t.start, t.start + static_cast<size_t>(t.pages) * ps, 0);
      if (!split) return split.status();
      ns += *split;
    }
    return ns;
  };
  int64_t first_ns = -1;
  for (int attempt = 1;; ++attempt) {
    auto ns = once();
    if (!ns) return ns.status();
    if (first_ns < 0) first_ns = *ns;
    // Every process, so the error can say how many the walk reached.
    size_t whole_in = 0;
    std::optional<std::pair<size_t, std::vector<StillLarge>>> first;
    for (size_t i = 0; i < views.size(); ++i) {
      auto large = pages_in_large_folios(views[i]);
      if (!large) return large.status().context(fmt::format("split oracle, {}", who_with_pid(views[i])));
      if (large->empty()) continue;
      ++whole_in;
      if (!first) first.emplace(i, std::move(*large));
    }
    if (!first) return first_ns;
    if (attempt < kAttempts) continue;
    const View& v = views[first->first];
    const StillLarge& s = first->second.front();
    const auto who_maps = mappers(views, ppf);
    auto it = who_maps.find({s.seed, s.page / ppf});
    const size_t n_mappers = it == who_maps.end() ? 0 : it->second.size();
    return Status::error(fmt::format(
        "rmap walk ({}) missed a mapping: after {} attempts {} still maps {} pages of large folios, the first layout {} "
        "page {} (folio {}) at 0x{:x}; {} of {} processes still map whole folios; that folio has {} mappers",
        kind_ == Kind::debugfs_split ? "debugfs split_huge_pages" : "deferred split shrinker", kAttempts,
        who_with_pid(v), first->second.size(), s.seed, s.page, s.page / ppf, s.address, whole_in, views.size(),
        n_mappers));
  }
}

}  // namespace rmapbench::mm::rmap_probe
