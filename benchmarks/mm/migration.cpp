#include "benchmarks/mm/migration.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <numaif.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/fork_timing.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/procfs/kernel_counters.hpp"

namespace rmapbench::mm::migration {

// ------------------------------------------------------------ pure

std::string errno_name(int err) {
  switch (err < 0 ? -err : err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case E2BIG: return "E2BIG";
    case EAGAIN: return "EAGAIN";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case ESRCH: return "ESRCH";
    case EHWPOISON: return "EHWPOISON";
    case ENOSYS: return "ENOSYS";
    case EINPROGRESS: return "EINPROGRESS (no status from the kernel)";
    default: return fmt::format("errno {}", err < 0 ? -err : err);
  }
}

MoveOutcome decode_statuses(const std::vector<int>& status, int target) {
  MoveOutcome o;
  o.target = target;
  o.pages = static_cast<long>(status.size());
  for (int s : status) {
    if (s == target)
      ++o.on_target;
    else if (s >= 0)
      ++o.elsewhere;
    else
      ++o.not_moved_by_errno[s];
  }
  return o;
}

std::string MoveOutcome::summary() const {
  if (all_moved()) return fmt::format("{} of {} pages on node {}", on_target, pages, target);
  std::string s = fmt::format("{} of {} pages not moved to node {}", not_moved(), pages, target);
  std::string why;
  for (const auto& [err, n] : not_moved_by_errno) why += fmt::format("{}{} {}", why.empty() ? "" : ", ", n, errno_name(err));
  if (elsewhere > 0) why += fmt::format("{}{} still on another node", why.empty() ? "" : ", ", elsewhere);
  if (!why.empty()) s += ": " + why;
  if (kernel_not_migrated > 0)
    s += fmt::format("; the kernel reported {} page{} it could not migrate", kernel_not_migrated,
                     kernel_not_migrated == 1 ? "" : "s");
  return s;
}

std::string frame_disagreement(const std::vector<std::vector<uint64_t>>& frames, const std::vector<std::string>& who) {
  auto name = [&](size_t k) { return k < who.size() ? who[k] : fmt::format("process {}", k); };
  if (frames.empty()) return "";
  for (size_t k = 0; k < frames.size(); ++k)
    if (frames[k].size() != frames[0].size())
      return fmt::format("{} has {} pages, {} has {}", name(k), frames[k].size(), name(0), frames[0].size());
  for (size_t p = 0; p < frames[0].size(); ++p)
    for (size_t k = 0; k < frames.size(); ++k) {
      if (frames[k][p] == 0) return fmt::format("page {} is not present in {}", p, name(k));
      if (frames[k][p] != frames[0][p])
        return fmt::format("page {}: {} maps frame {:#x}, {} maps frame {:#x}", p, name(0), frames[0][p], name(k),
                           frames[k][p]);
    }
  return "";
}

Stats stats_from_vmstat(const std::map<std::string, long long>& vmstat) {
  auto value = [&](const char* name, long long absent) {
    auto it = vmstat.find(name);
    return it == vmstat.end() ? absent : it->second;
  };
  return {value("pgmigrate_success", 0), value("pgmigrate_fail", 0), value("thp_migration_success", -1),
          value("thp_migration_fail", -1), value("thp_migration_split", -1)};
}

namespace {
long long minus(long long a, long long b) { return a < 0 || b < 0 ? -1 : a - b; }
}  // namespace

Stats operator-(const Stats& after, const Stats& before) {
  return {after.success - before.success, after.fail - before.fail, minus(after.thp_success, before.thp_success),
          minus(after.thp_fail, before.thp_fail), minus(after.thp_split, before.thp_split)};
}

EntryCounts operator-(const EntryCounts& after, const EntryCounts& before) {
  return {after.set_pte - before.set_pte, after.remove_pte - before.remove_pte, minus(after.set_pmd, before.set_pmd),
          minus(after.remove_pmd, before.remove_pmd)};
}

std::string entry_count_problem(const EntryCounts& delta, long long pte_mappings, long long pmd_mappings) {
  std::vector<std::string> problems;
  auto check = [&](const char* kind, long long set, long long removed, long long want) {
    if (set < 0) return;  // not counted on this kernel
    if (set != want)
      problems.push_back(fmt::format("{} migration entries set for {} {} mappings (set_migration_{} {}, expected "
                                     "{})",
                                     set, want, kind, kind, set, want));
    if (removed != set)
      problems.push_back(fmt::format("{} {} migration entries set but {} removed (remove_migration_{})", set, kind,
                                     removed, kind));
  };
  check("pte", delta.set_pte, delta.remove_pte, pte_mappings);
  if (delta.set_pmd < 0 && pmd_mappings > 0)
    problems.push_back(fmt::format("{} PMD mappings moved, but this kernel has no set_migration_pmd tracepoint to "
                                   "count them",
                                   pmd_mappings));
  check("pmd", delta.set_pmd, delta.remove_pmd, pmd_mappings);
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// ------------------------------------------------------------ the kernel

namespace {

std::vector<void*> page_addresses(const void* start, long pages) {
  std::vector<void*> out(static_cast<size_t>(pages));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = const_cast<char*>(static_cast<const char*>(start)) + i * page_size();
  return out;
}

// A node mask for the mempolicy calls: bit `node` set, maxnode bits wide.
struct NodeMask {
  std::vector<unsigned long> words;
  unsigned long maxnode;
  explicit NodeMask(std::initializer_list<int> nodes) {
    int top = 0;
    for (int n : nodes) top = std::max(top, n);
    const size_t bits = 8 * sizeof(unsigned long);
    words.assign(static_cast<size_t>(top) / bits + 1, 0);
    for (int n : nodes) words[static_cast<size_t>(n) / bits] |= 1ul << (static_cast<size_t>(n) % bits);
    // The kernel reads maxnode - 1 bits (get_nodes in mm/mempolicy.c).
    maxnode = static_cast<unsigned long>(words.size() * bits) + 1;
  }
};

// Where the range is now, as an outcome against `target`.
Result<MoveOutcome> where_now(pid_t pid, const void* start, long pages, int target) {
  auto nodes = nodes_of(pid, start, pages);
  if (!nodes) return nodes.status();
  return decode_statuses(*nodes, target);
}

// Repeats `attempt` (the ns of one system call, or its failure) until every
// page of the range is on `target`, `attempts` times at most.
Result<Timed> until_moved(pid_t pid, const void* start, long pages, int target, int attempts,
                          const std::function<Result<int64_t>()>& attempt) {
  Timed t;
  for (t.attempts = 1; t.attempts <= std::max(1, attempts); ++t.attempts) {
    auto ns = attempt();
    if (!ns) return ns.status();
    t.ns += *ns;
    auto now = where_now(pid, start, pages, target);
    if (!now) return now.status();
    t.outcome = *now;
    if (t.outcome.all_moved()) return t;
  }
  t.attempts = std::max(1, attempts);
  return t;
}

}  // namespace

namespace {

// move_pages(pid, nodes=NULL) of these addresses.
Result<std::vector<int>> nodes_at(pid_t pid, std::vector<void*>& addresses) {
  std::vector<int> status(addresses.size(), -ENOENT);
  if (move_pages(pid, addresses.size(), addresses.data(), nullptr, status.data(), 0) < 0) {
    if (errno == ENOSYS)  // a kernel without NUMA, or a user-mode emulator (qemu-user)
      return Status::skip("move_pages(2) is not implemented here (ENOSYS)");
    return Status::from_errno(fmt::format("move_pages(pid {}, {} pages, nodes=NULL)", pid, addresses.size()));
  }
  return status;
}

}  // namespace

Result<std::vector<int>> nodes_of(pid_t pid, const void* start, long pages) {
  auto addresses = page_addresses(start, pages);
  return nodes_at(pid, addresses);
}

Result<Timed> move_range(pid_t pid, void* start, long pages, int target, bool all, int attempts) {
  return move_range(pid, start, pages, page_size(), target, all, attempts);
}

Result<Timed> move_range(pid_t pid, void* start, long count, size_t step, int target, bool all, int attempts) {
  std::vector<void*> addresses(static_cast<size_t>(count));
  for (size_t i = 0; i < addresses.size(); ++i) addresses[i] = static_cast<char*>(start) + i * step;
  std::vector<int> status(addresses.size(), -ENOENT);
  Timed t;
  // Each attempt moves the addresses not yet on the target.
  std::vector<size_t> pending(addresses.size());
  for (size_t i = 0; i < pending.size(); ++i) pending[i] = i;
  for (t.attempts = 1; t.attempts <= std::max(1, attempts); ++t.attempts) {
    std::vector<void*> these;
    for (size_t i : pending) these.push_back(addresses[i]);
    std::vector<int> nodes(these.size(), target);
    // A status the kernel does not write must not read as "moved".
    std::vector<int> got(these.size(), -EINPROGRESS);
    const int64_t t0 = monotonic_ns();
    long rc = move_pages(pid, these.size(), these.data(), nodes.data(), got.data(), all ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE);
    t.ns += monotonic_ns() - t0;
    if (rc < 0)
      return Status::from_errno(fmt::format("move_pages(pid {}, {} pages to node {}, {})", pid, these.size(), target,
                                            all ? "MPOL_MF_MOVE_ALL" : "MPOL_MF_MOVE"));
    t.outcome.kernel_not_migrated = rc;
    if (rc > 0) {
      // The statuses of the batch that failed were left unwritten: look again.
      auto now = nodes_at(pid, these);
      if (!now) return now.status();
      got = std::move(*now);
    }
    for (size_t k = 0; k < pending.size(); ++k) status[pending[k]] = got[k];
    std::vector<size_t> left;
    for (size_t k = 0; k < pending.size(); ++k)
      if (got[k] != target) left.push_back(pending[k]);
    pending = std::move(left);
    if (pending.empty()) break;
  }
  t.attempts = std::min(t.attempts, std::max(1, attempts));
  const long not_migrated = t.outcome.kernel_not_migrated;
  t.outcome = decode_statuses(status, target);
  t.outcome.kernel_not_migrated = not_migrated;
  return t;
}

Result<Timed> mbind_range(void* start, long pages, int target, bool all, int attempts) {
  const NodeMask mask{target};
  const unsigned flags = (all ? MPOL_MF_MOVE_ALL : MPOL_MF_MOVE) | MPOL_MF_STRICT;
  const unsigned long bytes = static_cast<unsigned long>(pages) * page_size();
  return until_moved(0, start, pages, target, attempts, [&]() -> Result<int64_t> {
    const int64_t t0 = monotonic_ns();
    long rc = mbind(start, bytes, MPOL_BIND, mask.words.data(), mask.maxnode, flags);
    const int64_t ns = monotonic_ns() - t0;
    // EIO: some pages could not be moved (MPOL_MF_STRICT); where they are
    // is looked up and the call repeated.
    if (rc != 0 && errno != EIO)
      return Status::from_errno(fmt::format("mbind({} pages, MPOL_BIND node {}, {})", pages, target,
                                            all ? "MPOL_MF_MOVE_ALL" : "MPOL_MF_MOVE"));
    return ns;
  });
}

Result<Timed> migrate_process(pid_t pid, int from, int to, const void* start, long pages, int attempts) {
  const NodeMask old_nodes{from}, new_nodes{to};
  const unsigned long maxnode = std::max(old_nodes.maxnode, new_nodes.maxnode);
  // Both masks as wide as maxnode says.
  std::vector<unsigned long> old_words = old_nodes.words, new_words = new_nodes.words;
  old_words.resize(std::max(old_words.size(), new_words.size()));
  new_words.resize(old_words.size());
  long not_migrated = 0;
  auto t = until_moved(pid, start, pages, to, attempts, [&]() -> Result<int64_t> {
    const int64_t t0 = monotonic_ns();
    long rc = migrate_pages(pid, maxnode, old_words.data(), new_words.data());
    const int64_t ns = monotonic_ns() - t0;
    if (rc < 0) return Status::from_errno(fmt::format("migrate_pages(pid {}, node {} -> node {})", pid, from, to));
    not_migrated = rc;
    return ns;
  });
  if (t) t->outcome.kernel_not_migrated = not_migrated;
  return t;
}

Status move_this_process_to(int node) {
  std::vector<int> all;
  for (const auto& n : host::facts().numa_nodes)
    if (n.id != node) all.push_back(n.id);
  for (int from : all) {
    const NodeMask old_nodes{from}, new_nodes{node};
    std::vector<unsigned long> old_words = old_nodes.words, new_words = new_nodes.words;
    old_words.resize(std::max(old_words.size(), new_words.size()));
    new_words.resize(old_words.size());
    if (migrate_pages(0, std::max(old_nodes.maxnode, new_nodes.maxnode), old_words.data(), new_words.data()) < 0)
      return Status::from_errno(fmt::format("migrate_pages(this process, node {} -> node {})", from, node));
  }
  return Status::ok();
}

Result<std::vector<uint64_t>> frames_of(pid_t pid, const void* start, long pages) {
  auto entries = pagemap_entries(pid, {{reinterpret_cast<uintptr_t>(start), static_cast<size_t>(pages) * page_size()}});
  if (!entries) return entries.status();
  std::vector<uint64_t> frames;
  for (const PagemapEntry& e : *entries) frames.push_back(e.present && !e.swapped ? e.pfn : 0);
  return frames;
}

Result<int> other_node(int node) {
  std::vector<int> ids;
  for (const auto& n : host::facts().numa_nodes)
    if (n.memory_bytes > 0) ids.push_back(n.id);
  if (ids.size() < 2)
    return Status::skip(fmt::format("needs >= 2 NUMA nodes (this host has {})", host::numa_node_count()));
  std::sort(ids.begin(), ids.end());
  auto next = std::upper_bound(ids.begin(), ids.end(), node);
  return next == ids.end() ? ids.front() : *next;
}

Result<Stats> read_stats() {
  auto v = read_vmstat();
  if (!v) return v.status();
  return stats_from_vmstat(*v);
}

Result<EntryTracepoints> EntryTracepoints::open() {
  EntryTracepoints t;
  for (const char* name : {"migrate:set_migration_pte", "migrate:remove_migration_pte"}) {
    auto spec = perf::tracepoint(name);
    if (!spec) return spec.status();
    auto c = perf::Counter::open(*spec, 0, false);
    if (!c) return c.status();
    t.counters_.push_back(std::move(*c));
  }
  auto set_pmd = perf::tracepoint("thp:set_migration_pmd");
  auto remove_pmd = perf::tracepoint("thp:remove_migration_pmd");
  if (set_pmd && remove_pmd) {
    auto a = perf::Counter::open(*set_pmd, 0, false);
    if (!a) return a.status();
    auto b = perf::Counter::open(*remove_pmd, 0, false);
    if (!b) return b.status();
    t.counters_.push_back(std::move(*a));
    t.counters_.push_back(std::move(*b));
  }
  return t;
}

Result<EntryCounts> EntryTracepoints::read() const {
  std::vector<long long> v;
  for (const auto& c : counters_) {
    auto n = c.read();
    if (!n) return n.status();
    v.push_back(static_cast<long long>(*n));
  }
  EntryCounts e{v[0], v[1]};
  if (v.size() == 4) {
    e.set_pmd = v[2];
    e.remove_pmd = v[3];
  }
  return e;
}

Result<AllocationsOn> AllocationsOn::node(int node) {
  AllocationsOn a;
  a.mask_.assign(16, 0);  // 1024 nodes
  if (get_mempolicy(&a.mode_, a.mask_.data(), a.mask_.size() * 8 * sizeof(unsigned long), nullptr, 0) != 0)
    return Status::from_errno("get_mempolicy");
  const NodeMask mask{node};
  if (set_mempolicy(MPOL_BIND, mask.words.data(), mask.maxnode) != 0)
    return Status::from_errno(fmt::format("set_mempolicy(MPOL_BIND node {})", node));
  a.active_ = true;
  return a;
}

AllocationsOn::AllocationsOn(AllocationsOn&& other) noexcept
    : active_(std::exchange(other.active_, false)), mode_(other.mode_), mask_(std::move(other.mask_)) {}

AllocationsOn::~AllocationsOn() {
  if (!active_) return;
  // MPOL_DEFAULT takes no nodes; the others their own mask back.
  if (mode_ == MPOL_DEFAULT)
    set_mempolicy(MPOL_DEFAULT, nullptr, 0);
  else
    set_mempolicy(mode_, mask_.data(), mask_.size() * 8 * sizeof(unsigned long));
}

}  // namespace rmapbench::mm::migration
