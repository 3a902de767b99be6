// Memory failure of a page mapped by S+1 processes. MADV_HWPOISON runs
// memory_failure(): collect_procs_anon() goes over every task and, in each,
// over the anon_vma interval tree of the page to find the processes to
// signal, then try_to_unmap() (the rmap walk) unmaps the page from every
// mapper. MADV_SOFT_OFFLINE runs soft_offline_page(): the page migrates to a
// new frame in every mapper (try_to_migrate, remove_migration_ptes) and the
// old frame is retired. Both grow with the mappers.
//
// Destructive: each iteration poisons one page (unpoisoned afterwards through
// hwpoison_inject where the kernel allows it), so the workload runs only with
// `run --allow-destructive` (a QEMU guest passes it).
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "benchmarks/harness/agents.hpp"
#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/hwpoison.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/host/host_facts.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kHwpoisonUs, {"hwpoison_us", "us", Better::lower, MetricKind::statistical,
                               "madvise(MADV_HWPOISON) of one page mapped by S+1 processes: collect_procs over "
                               "every task, try_to_unmap, the early-kill signals (per page)"});
RMAPBENCH_METRIC(kSoftOfflineUs, {"soft_offline_us", "us", Better::lower, MetricKind::statistical,
                                  "madvise(MADV_SOFT_OFFLINE) of one page mapped by S+1 processes: its migration "
                                  "away from every mapper and the old frame retired (per page)"});
RMAPBENCH_METRIC(kLeftPoisonedKb, {"left_poisoned_kb", "kB", Better::lower, MetricKind::exact,
                                   "memory this benchmark left poisoned on the host (no unpoison-pfn: "
                                   "hwpoison_inject not loaded, or debugfs unavailable)"});

namespace {

using mm::hwpoison::Injection;

enum Op { kPing = 1, kInject, kVerify, kCorrupt };

// What every process of an iteration holds: the page (inherited by fork)
// and the seed of its contents. The bystander forked first has no page.
struct Held {
  char* page = nullptr;
  uint32_t seed = 0;
};

char pattern_byte(uint32_t seed, size_t i) { return static_cast<char>((seed * 2654435761u + i * 131u) >> 7); }

// A pending SIGBUS is delivered before the process reads its next request:
// after one round trip with each process, the board holds every signal the
// kernel sent.
Result<harness::Figures> ping(Held&, long) { return harness::Figures{}; }

Result<harness::Figures> inject(Held& h, long how) {
  auto ns = mm::hwpoison::inject(static_cast<Injection>(how), h.page);
  if (!ns) return ns.status();
  return harness::Figures{static_cast<double>(*ns)};
}

// Soft offline only: a hard-poisoned page must never be touched again.
Result<harness::Figures> verify(Held& h, long) {
  for (size_t i = 0; i < mm::page_size(); ++i)
    if (h.page[i] != pattern_byte(h.seed, i))
      return Status::error(fmt::format("byte {} of the page reads {:#04x}, expected {:#04x}", i,
                                       static_cast<unsigned char>(h.page[i]),
                                       static_cast<unsigned char>(pattern_byte(h.seed, i))));
  return harness::Figures{};
}

// The oracle's test hook (RMAPBENCH_TEST_CORRUPT=memory_failure): sharer 0
// writes to the page before the injection, so it maps its own copy (COW)
// and not the page that is poisoned; the oracle must name it.
Result<harness::Figures> corrupt(Held& h, long) {
  h.page[0] = static_cast<char>(~h.page[0]);
  return harness::Figures{};
}

constexpr harness::Request<Held> kRequests[] = {
    {kPing, ping}, {kInject, inject}, {kVerify, verify}, {kCorrupt, corrupt}};

// One process of an iteration, in the order they were forked: the page's
// anon_vma interval tree holds their VMAs in that order.
struct Member {
  std::string who;
  bool mapper;  // maps the page when it is poisoned
  mm::Agent agent;
};

Result<Member> spawn_member(std::string who, bool mapper, bool drop_copy, const Held& held,
                            mm::hwpoison::SigbusSlot* slot) {
  auto state = std::make_shared<Held>(held);
  auto agent = mm::Agent::spawn(
      1,
      [state, slot, drop_copy]() -> Status {
        if (Status s = mm::hwpoison::catch_sigbus(slot); s.failed()) return s;
        // Its VMA stays in the page's anon_vma tree: the rmap walk visits it
        // and must see that the page is not mapped there.
        if (drop_copy && madvise(state->page, mm::page_size(), MADV_DONTNEED) != 0)
          return Status::from_errno("madvise(MADV_DONTNEED)");
        return Status::ok();
      },
      harness::serve(state, kRequests));
  if (!agent) return agent.status().context(who);
  return Member{std::move(who), mapper, std::move(*agent)};
}

// The page every process maps: private anonymous, written by us (an anon
// folio, not the zero page), alone in a VM_NOHUGEPAGE VMA so it stays one
// base page that merges with no neighbour.
class Page {
 public:
  static Result<Page> create(uint32_t seed) {
    const size_t ps = mm::page_size();
    void* p = mmap(nullptr, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::from_errno("mmap of the page");
    Page page(static_cast<char*>(p));
    if (madvise(p, ps, MADV_NOHUGEPAGE) != 0) return Status::from_errno("madvise(MADV_NOHUGEPAGE)");
    for (size_t i = 0; i < ps; ++i) page.bytes_[i] = pattern_byte(seed, i);
    return page;
  }
  Page(Page&& o) noexcept : bytes_(std::exchange(o.bytes_, nullptr)) {}
  Page& operator=(Page&&) = delete;
  ~Page() {
    if (bytes_) munmap(bytes_, mm::page_size());
  }
  char* bytes() const { return bytes_; }

 private:
  explicit Page(char* bytes) : bytes_(bytes) {}
  char* bytes_ = nullptr;
};

struct Variant {
  const char* name;
  Injection how;
  const Metric* metric;
  const char* note;
};

const Variant kVariants[] = {
    {"hard", Injection::hard, &kHwpoisonUs,
     "MADV_HWPOISON in a mapper: memory_failure() signals every early-kill mapper (prctl PR_MCE_KILL_EARLY) and "
     "unmaps the page from all; timed: the madvise"},
    {"soft", Injection::soft, &kSoftOfflineUs,
     "MADV_SOFT_OFFLINE in a mapper: the page migrates to a new frame in every mapper, the old frame is retired; "
     "timed: the madvise"},
};

struct Point {
  long sharers;
};

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : "; ") + i;
  return out;
}

// Where the page is now in each mapper, as the variant expects it: hard,
// mapped nowhere; soft, mapped everywhere from the frame the poisoner's page
// moved to, the data intact. Every mapper that is not as expected is named.
Status check_mappers(const Variant& v, std::vector<Member>& members, uintptr_t addr, uint64_t old_pfn) {
  std::vector<std::string> wrong;
  auto poisoners = mm::hwpoison::pagemap_entry(members.back().agent.pid(), addr);
  const uint64_t new_pfn = poisoners && poisoners->present ? poisoners->pfn : 0;
  for (Member& m : members) {
    if (!m.mapper) continue;
    const pid_t pid = m.agent.pid();
    const std::string name = fmt::format("{} (pid {})", m.who, pid);
    auto e = mm::hwpoison::pagemap_entry(pid, addr);
    if (!e) {
      wrong.push_back(fmt::format("{}: {}", name, e.status().message()));
      continue;
    }
    if (v.how == Injection::hard) {
      if (e->present) wrong.push_back(fmt::format("{} still maps it (PFN {:#x})", name, e->pfn));
      continue;
    }
    if (!e->present) {
      wrong.push_back(fmt::format("{} no longer maps it", name));
      continue;
    }
    if (e->pfn == old_pfn)
      wrong.push_back(fmt::format("{} still maps the old frame {:#x}", name, old_pfn));
    else if (e->pfn != new_pfn)
      wrong.push_back(fmt::format("{} maps frame {:#x}, the poisoner {:#x} (no longer shared)", name, e->pfn, new_pfn));
    if (auto r = m.agent.call({kVerify, 0}); !r) wrong.push_back(fmt::format("{}: {}", name, r.status().message()));
  }
  if (wrong.empty()) return Status::ok();
  return Status::error(fmt::format("after {}: {}", mm::hwpoison::advice_name(v.how), join(wrong)));
}

// What an iteration leaves for the benchmark's notes and metrics.
struct Tally {
  double left_kb = 0;       // poisoned and not given back
  int poisoner_code = 0;    // si_code of the poisoner's own SIGBUS (hard)
};

// The injection and its oracle; `members` still live. Returns the timed ns.
Result<int64_t> inject_and_check(const Variant& v, std::vector<Member>& members, mm::hwpoison::SigbusBoard& board,
                                 uintptr_t addr, uint64_t old_pfn, long long corrupted_before_kb, Tally& tally) {
  const char* advice = mm::hwpoison::advice_name(v.how);
  Member& poisoner = members.back();
  auto reply = poisoner.agent.call({kInject, static_cast<long>(v.how)});
  if (!reply && reply.status().skipped()) return reply.status();
  std::vector<std::string> problems;
  if (!reply) problems.push_back(fmt::format("the poisoner's {}", reply.status().message()));

  for (Member& m : members)
    if (auto r = m.agent.call({kPing, 0}); !r)
      problems.push_back(fmt::format("{} (pid {}): {}", m.who, m.agent.pid(), r.status().message()));
  std::vector<mm::hwpoison::ExpectedSigbus> expected;
  std::vector<mm::hwpoison::ReceivedSigbus> got;
  for (size_t i = 0; i < members.size(); ++i) {
    const Member& m = members[i];
    // The poisoner itself gets "action required" where the kernel passes
    // MF_ACTION_REQUIRED for MADV_HWPOISON (6.12 does, 6.1 does not).
    std::vector<int> codes = {mm::hwpoison::kMceErrAo};
    if (&m == &poisoner) codes.push_back(mm::hwpoison::kMceErrAr);
    expected.push_back({m.who, m.agent.pid(), v.how == Injection::hard && m.mapper, addr, codes});
    got.push_back(mm::hwpoison::received(*board.slot(i), m.agent.pid()));
  }
  if (got.back().count > 0) tally.poisoner_code = got.back().code;
  if (Status s = mm::hwpoison::check_sigbus(expected, got, fmt::format("SIGBUS after {}", advice)); s.failed())
    problems.push_back(s.message());
  if (Status s = check_mappers(v, members, addr, old_pfn); s.failed()) problems.push_back(s.message());

  // What the kernel says it retired: the old frame, one page.
  auto flags = mm::kpageflags(old_pfn);
  if (!flags) return flags.status();
  if (!mm::hwpoison::poisoned(*flags))
    problems.push_back(fmt::format("after {}: the old frame {:#x} is not poisoned (kpageflags {:#x}, no KPF_HWPOISON)",
                                   advice, old_pfn, *flags));
  auto corrupted = mm::hwpoison::hardware_corrupted_kb();
  if (!corrupted) return corrupted.status();
  const long long page_kb = static_cast<long long>(mm::page_size() / 1024);
  if (*corrupted - corrupted_before_kb != page_kb)
    problems.push_back(fmt::format("after {}: HardwareCorrupted went from {} kB to {} kB, expected +{} kB", advice,
                                   corrupted_before_kb, *corrupted, page_kb));
  if (!problems.empty()) return Status::error(join(problems));
  return static_cast<int64_t>(reply->values[0]);
}

// After every process that mapped the page exited: the old frame back, and
// HardwareCorrupted where it was. Adds what could not be given back to
// `left_kb`.
Status restore(uint64_t old_pfn, long long corrupted_before_kb, const Result<std::string>& unpoison_at,
               Tally& tally) {
  auto flags = mm::kpageflags(old_pfn);
  if (!flags) return flags.status();
  if (mm::hwpoison::poisoned(*flags)) {
    if (!unpoison_at) {
      tally.left_kb += static_cast<double>(mm::page_size()) / 1024;
      return Status::ok();
    }
    if (Status s = mm::hwpoison::unpoison(*unpoison_at, old_pfn); s.failed()) {
      tally.left_kb += static_cast<double>(mm::page_size()) / 1024;
      return s;
    }
    auto after = mm::kpageflags(old_pfn);
    if (!after) return after.status();
    if (mm::hwpoison::poisoned(*after))
      return Status::error(fmt::format("frame {:#x} is still poisoned after unpoison-pfn", old_pfn));
  }
  auto corrupted = mm::hwpoison::hardware_corrupted_kb();
  if (!corrupted) return corrupted.status();
  if (*corrupted != corrupted_before_kb)
    return Status::error(fmt::format("HardwareCorrupted is {} kB after the unpoison, {} kB before the iteration",
                                     *corrupted, corrupted_before_kb));
  return Status::ok();
}

// One iteration: the processes, the page, the injection, the oracle, then
// the processes gone and the page unpoisoned, whatever the oracle said.
Result<int64_t> poison_once(const Variant& v, const Point& p, mm::hwpoison::SigbusBoard& board,
                            const Result<std::string>& unpoison_at, uint32_t seed, bool corrupt, Tally& tally) {
  board.clear();
  auto corrupted_before = mm::hwpoison::hardware_corrupted_kb();
  if (!corrupted_before) return Status::skip(corrupted_before.status().message());
  std::vector<Member> members;
  size_t slot = 0;
  auto add = [&](std::string who, bool mapper, bool drop_copy, const Held& held) -> Status {
    auto m = spawn_member(std::move(who), mapper, drop_copy, held, board.slot(slot++));
    if (!m) return m.status();
    members.push_back(std::move(*m));
    return Status::ok();
  };
  if (Status s = add("bystander forked before the page existed", false, false, Held{}); s.failed()) return s;
  uintptr_t addr = 0;
  {
    auto page = Page::create(seed);
    if (!page) return page.status();
    const Held held{page->bytes(), seed};
    addr = reinterpret_cast<uintptr_t>(page->bytes());
    // The bystander that dropped its copy comes first in the interval tree,
    // the poisoner last: a walk that loses the last VMA loses a mapper.
    if (Status s = add("bystander that dropped its copy (MADV_DONTNEED)", false, true, held); s.failed()) return s;
    for (long i = 0; i < p.sharers; ++i)
      if (Status s = add(fmt::format("sharer {}", i), true, false, held); s.failed()) return s;
    if (Status s = add("poisoner", true, false, held); s.failed()) return s;
  }  // unmapped here: the benchmark process is no mapper
  if (corrupt && p.sharers > 0)
    if (auto r = members[2].agent.call({kCorrupt, 0}); !r) return r.status();
  // The frame the poisoner's madvise acts on.
  auto frame = mm::hwpoison::pagemap_entry(members.back().agent.pid(), addr);
  if (!frame) return frame.status();
  if (!frame->present) return Status::error("the poisoner does not map the page before the injection (pagemap)");
  const uint64_t old_pfn = frame->pfn;

  Result<int64_t> timed = inject_and_check(v, members, board, addr, old_pfn, *corrupted_before, tally);
  members.clear();  // every process exits: nothing maps or holds the page any more
  const double left_before = tally.left_kb;
  Status restored = restore(old_pfn, *corrupted_before, unpoison_at, tally);
  if (!timed && restored && tally.left_kb > left_before)
    return Status::error(fmt::format("{}; frame {:#x} left poisoned: {}", timed.status().message(), old_pfn,
                                     unpoison_at ? "unpoison-pfn refused it" : unpoison_at.status().message()));
  if (restored.failed()) {
    const std::string then = fmt::format("restoring frame {:#x}: {}", old_pfn, restored.message());
    return timed ? Status::error(then) : Status::error(fmt::format("{}; then {}", timed.status().message(), then));
  }
  return timed;
}

void run(benchmark::State& state, const Variant& v, const Point& p) {
  harness::Run run(state, {v.note});
  const long slots = p.sharers + 3;  // two bystanders, the sharers, the poisoner
  auto board = mm::hwpoison::SigbusBoard::create(static_cast<size_t>(slots));
  if (!board) return run.stop(board.status());
  const Result<std::string> unpoison_at = mm::hwpoison::unpoison_path();
  auto corrupted_at_start = mm::hwpoison::hardware_corrupted_kb();
  if (!corrupted_at_start) return run.stop(Status::skip(corrupted_at_start.status().message()));
  const bool corrupt = mm::test_corruption_requested("memory_failure");
  Tally tally;
  uint32_t seed = 71;
  const bool timed = run.time([&] { return poison_once(v, p, *board, unpoison_at, seed++, corrupt, tally); });
  if (tally.left_kb > 0)
    run.note(fmt::format("left {} kB poisoned on this host until reboot: cannot unpoison ({})", tally.left_kb,
                         unpoison_at ? "unpoison-pfn refused it" : unpoison_at.status().message()));
  if (auto corrupted_at_end = mm::hwpoison::hardware_corrupted_kb())
    run.note(fmt::format("HardwareCorrupted {} kB before this benchmark, {} kB after", *corrupted_at_start,
                         *corrupted_at_end));
  if (!timed) return;
  const double n = static_cast<double>(std::max(1L, run.iterations()));
  report_metric(state, *v.metric, run.timed_ns() / 1e3 / n);
  report_metric(state, kLeftPoisonedKb, tally.left_kb);
  run.note(fmt::format("{} mapper{} (the sharers and the poisoner), 2 bystanders that must get no SIGBUS",
                       p.sharers + 1, p.sharers > 0 ? "s" : ""));
  if (tally.poisoner_code)
    run.note(fmt::format("the poisoner got {} (the other mappers BUS_MCEERR_AO)",
                         mm::hwpoison::sigbus_code_name(tally.poisoner_code)));
  run.finish();
}

void register_memory_failure(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const std::vector<long> sharers = r.sweep("sharers", {0, 4}, {0, 4, 16, 64});
  auto points = [&](const Variant&) {
    std::vector<std::pair<std::string, Point>> out;
    for (long s : sharers) out.emplace_back(fmt::format("/sharers:{}", s), Point{s});
    return out;
  };
  add_variants(r, kVariants, points, run, quick ? 4 : 10);
}

std::optional<std::string> memory_failure_unavailable() {
  if (!host::running_as_root())
    return "needs root: MADV_HWPOISON and MADV_SOFT_OFFLINE need CAP_SYS_ADMIN, and the oracle reads page frames "
           "(pagemap, kpageflags)";
  const host::HostFacts& h = host::facts();
  if (!h.config.empty() && !host::config_enabled("CONFIG_MEMORY_FAILURE"))
    return fmt::format("CONFIG_MEMORY_FAILURE not set ({})", h.config_source);
  return std::nullopt;
}

}  // namespace

RMAPBENCH_WORKLOAD(memory_failure,
                   {.name = "memory_failure",
                    .kernel_path = "madvise_inject_error -> memory_failure -> hwpoison_user_mappings: "
                                   "collect_procs_anon (every task x the anon_vma interval tree), try_to_unmap, "
                                   "kill_procs; soft_offline_page -> soft_offline_in_use_page -> migrate_pages",
                    .description = "One page, written by us, is shared by fork with S sharers and a poisoner, "
                                   "each early-kill (prctl PR_MCE_KILL_EARLY) with a SIGBUS handler that records "
                                   "si_code and si_addr; then we unmap it ourselves. Two bystanders must get no "
                                   "signal: one forked before the page existed, one that dropped its copy "
                                   "(MADV_DONTNEED: its VMA stays in the page's anon_vma tree). Timed, in the "
                                   "poisoner: madvise(MADV_HWPOISON) (hard) or madvise(MADV_SOFT_OFFLINE) (soft) "
                                   "of the page. Every process then exits and the old frame is unpoisoned through "
                                   "hwpoison_inject's unpoison-pfn. Destructive: runs only with "
                                   "run --allow-destructive.",
                    .oracle = "hard: every mapper got one SIGBUS BUS_MCEERR_AO (the poisoner AO or AR) at its "
                              "address of the page, no bystander any; no mapper maps the page any more (pagemap). "
                              "soft: no SIGBUS anywhere, every mapper on one new frame with its data intact. Both: "
                              "the old frame has KPF_HWPOISON and HardwareCorrupted grew by one page; after the "
                              "unpoison both are back (else left_poisoned_kb says what stayed poisoned).",
                    .parameters = "sharers: processes besides the poisoner mapping the page (quick 0,4; full "
                                  "0,4,16,64)",
                    .needs = {destructive_opt_in("poisons memory"),
                              {"CONFIG_MEMORY_FAILURE, root", memory_failure_unavailable}},
                    .register_benchmarks = register_memory_failure});

}  // namespace rmapbench
