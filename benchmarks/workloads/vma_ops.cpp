// VMA operations under rmap: a faulted anonymous VMA of PMD THPs is moved
// (mremap), grown, shrunk, split and merged (mprotect), partly unmapped and
// merged with a new neighbour, inherited by a fork of a fork, or inherited by
// processes whose parent exited first. Each variant is one such sequence; the
// sequence is timed, so a patch that slows these paths (vma_merge, the
// anon_vma interval tree updates of __split_vma / vma_expand, move_vma,
// anon_vma_fork, unlink_anon_vmas) shows. Then an operation that walks the rmap
// of every folio runs (rmap_probe.hpp), and its effect must show in every
// process that maps the folio: an rmap that lost a mapping through the
// sequence is an error, not a number.
#include <fmt/core.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "benchmarks/harness/agents.hpp"
#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/fork_timing.hpp"
#include "benchmarks/mm/processes.hpp"
#include "benchmarks/mm/rmap_probe.hpp"
#include "benchmarks/mm/thp.hpp"
#include "kernels/procfs/sysfs_text.hpp"
#include "kernels/safety/children.hpp"

namespace rmapbench {

RMAPBENCH_METRIC(kSequenceUs, {"sequence_us", "us", Better::lower, MetricKind::statistical,
                               "the timed sequence of VMA operations, per iteration (the iteration time)"});
RMAPBENCH_METRIC(kWalkUs, {"walk_us", "us", Better::lower, MetricKind::statistical,
                           "the rmap-walking operation after the sequence (the split or the migration of every "
                           "folio), its first attempt, per iteration"});

namespace {

using mm::rmap_probe::Piece;
using mm::rmap_probe::Remap;
using mm::rmap_probe::Shape;
using mm::rmap_probe::View;

// Folios of the layout: few, because every process of the run verifies all
// of them after every iteration, and the guests that can run the migration
// walk are emulated.
constexpr long kFolios = 4;
constexpr uint32_t kParentSeed = 1;
constexpr uint32_t kNeighbourSeed = 2;  // munmap_then_merge: the new neighbour's pages
constexpr uint32_t kChildSeed = 3;      // fork_of_fork, orphaned: the intermediate process's own layout

size_t pmd() { return mm::thp::pmd_size(); }
long pages_per_folio() { return static_cast<long>(pmd() / mm::page_size()); }
size_t layout_bytes() { return static_cast<size_t>(kFolios) * pmd(); }

// ------------------------------------------------------------ address space

// A PROT_NONE reservation, PMD-aligned, in which the layout is mapped and
// moved: holes a move leaves are plugged with PROT_NONE again, so nothing
// else is ever mapped inside, and unmapping the reservation unmaps exactly
// what the sequence left. PROT_NONE neighbours never merge with the layout.
class Space {
 public:
  static Result<Space> reserve(long pmds) {
    const size_t bytes = static_cast<size_t>(pmds + 1) * pmd();
    void* raw = mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return Status::from_errno(fmt::format("mmap {} bytes of address space", bytes));
    Space s;
    s.raw_ = static_cast<char*>(raw);
    s.bytes_ = bytes;
    s.base_ = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + pmd() - 1) & ~(pmd() - 1));
    return s;
  }
  Space(Space&& o) noexcept : raw_(std::exchange(o.raw_, nullptr)), bytes_(o.bytes_), base_(o.base_) {}
  Space& operator=(Space&&) = delete;
  ~Space() {
    if (raw_) munmap(raw_, bytes_);
  }
  char* slot(long pmd_index) const { return base_ + static_cast<size_t>(pmd_index) * pmd(); }

 private:
  Space() = default;
  char* raw_ = nullptr;
  size_t bytes_ = 0;
  char* base_ = nullptr;
};

// A private anonymous VMA at `at` that wants THPs.
Status map_thp_vma(char* at, size_t bytes) {
  if (mmap(at, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
    return Status::from_errno("mmap the layout");
  if (madvise(at, bytes, MADV_HUGEPAGE) != 0) return Status::from_errno("madvise(MADV_HUGEPAGE)");
  return Status::ok();
}

Status plug(uintptr_t at, size_t bytes) {
  if (mmap(reinterpret_cast<void*>(at), bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
           0) == MAP_FAILED)
    return Status::from_errno("mmap PROT_NONE over the hole a move left");
  return Status::ok();
}

// The layout's folios are PMD THPs here; otherwise there is nothing for the
// split walk to split, and the skip says why.
Status confirm_pmd_thps(const Piece& p) {
  const size_t bytes = static_cast<size_t>(p.pages) * mm::page_size();
  auto huge = mm::thp::anon_huge_kb(0, p.start, bytes);
  if (!huge) return huge.status().context("checking for THPs");
  if (*huge * 1024 != static_cast<long long>(bytes))
    return Status::skip(fmt::format("no THPs after the fault: AnonHugePages {} kB of {} kB (transparent_hugepage/"
                                    "enabled={}, defrag={}); memory may be too fragmented",
                                    *huge, bytes / 1024, sysfs::read_knob(std::string(mm::thp::kThpDir) + "/enabled"),
                                    sysfs::read_knob(std::string(mm::thp::kThpDir) + "/defrag")));
  return Status::ok();
}

// A fresh layout of kFolios PMD THPs at `at`, filled with `seed`'s pattern.
Result<Shape> fault_layout(char* at, uint32_t seed) {
  if (Status s = map_thp_vma(at, layout_bytes()); s.failed()) return s;
  const Shape shape{reinterpret_cast<uintptr_t>(at), seed, kFolios, pages_per_folio(), mm::page_size()};
  const Piece all = mm::rmap_probe::whole(shape).front();
  mm::rmap_probe::fill(all);
  if (Status s = confirm_pmd_thps(all); s.failed()) return s;
  return shape;
}

// VMAs of /proc/self/maps that overlap [start, end): 1 once a split VMA merged back.
Result<long> vmas_in(uintptr_t start, uintptr_t end) {
  auto maps = sysfs::read_file("/proc/self/maps");
  if (!maps) return maps.status();
  long n = 0;
  for (std::string_view line : sysfs::split_lines(*maps)) {
    uintptr_t lo = 0, hi = 0;
    if (std::sscanf(std::string(line.substr(0, line.find(' '))).c_str(), "%lx-%lx", &lo, &hi) != 2) continue;
    if (lo < end && hi > start) ++n;
  }
  return n;
}

Status expect_one_vma(const Shape& s, const char* after) {
  const uintptr_t end = s.start + s.bytes();
  auto n = vmas_in(s.start, end);
  if (!n) return n.status();
  if (*n != 1)
    return Status::error(fmt::format("after {} the range 0x{:x}-0x{:x} is {} VMAs, not the one merged VMA", after,
                                     s.start, end, *n));
  return Status::ok();
}

// ------------------------------------------------------------ the processes

// What every process of the run holds and does on request: its view (a copy
// of its parent's at fork, changed by its own operations) and, in the child
// of fork_of_fork, its own layout and the grandchildren it forked.
struct Held {
  View view;
  bool corrupt = false;  // RMAPBENCH_TEST_CORRUPT: flip a byte before verifying
  bool corrupt_first_child = false;
  std::optional<Space> own_space;
  std::optional<harness::AgentGroup> children;
};

enum Op : int { kPid, kPrepare, kVerify, kOwnLayoutAndFork, kChildPid, kReleaseChildren };

mm::Agent::Handler handler_for(std::shared_ptr<Held> held);

Result<harness::Figures> pid_of(Held&, long) { return harness::Figures{static_cast<double>(getpid())}; }

Status forward(Held& h, const mm::AgentRequest& r) {
  if (!h.children) return Status::ok();
  auto replies = h.children->call_all(r);
  return replies ? Status::ok() : replies.status();
}

// Before the walk: no collapse from here on (khugepaged could rebuild a THP
// from a split range before the oracle looks), and, for the deferred split,
// the page of each folio this process drops.
Status prepare_view(const View& v, bool drop) {
  const size_t ps = mm::page_size();
  for (const Piece& p : v.pieces)
    if (madvise(reinterpret_cast<void*>(p.start), static_cast<size_t>(p.pages) * ps, MADV_NOHUGEPAGE) != 0)
      return Status::from_errno("madvise(MADV_NOHUGEPAGE)");
  if (drop)
    for (uintptr_t a : mm::rmap_probe::drop_addresses(v, pages_per_folio(), ps))
      if (madvise(reinterpret_cast<void*>(a), ps, MADV_DONTNEED) != 0) return Status::from_errno("madvise(MADV_DONTNEED)");
  return Status::ok();
}

Status verify_view(const View& v, bool dropped) {
  const size_t ps = mm::page_size();
  return mm::rmap_probe::verify(v, dropped ? mm::rmap_probe::drop_addresses(v, pages_per_folio(), ps)
                                           : std::vector<uintptr_t>{});
}

Result<harness::Figures> prepare(Held& h, long drop) {
  if (Status s = prepare_view(h.view, drop != 0); s.failed()) return s;
  if (Status s = forward(h, {kPrepare, drop}); s.failed()) return s;
  return harness::Figures{};
}

Result<harness::Figures> verify(Held& h, long dropped) {
  if (h.corrupt) mm::rmap_probe::corrupt_one_byte_for_test(h.view);
  View self = h.view;
  self.who = fmt::format("{} (pid {})", h.view.who, getpid());
  if (Status s = verify_view(self, dropped != 0); s.failed()) return s;
  if (Status s = forward(h, {kVerify, dropped}); s.failed()) return s;
  return harness::Figures{};
}

Result<harness::AgentGroup> spawn_agents(long count, const std::vector<Piece>& pieces, const char* role,
                                         bool corrupt_first) {
  return harness::AgentGroup::spawn(count, [&](long i) -> Result<mm::Agent> {
    auto held = std::make_shared<Held>();
    held->view = {fmt::format("{} {}", role, i), 0, pieces};
    held->corrupt = corrupt_first && i == 0;
    auto a = mm::Agent::spawn(1, {}, handler_for(held));
    if (!a) return a.status().context(fmt::format("{} {} of {}", role, i + 1, count));
    return a;
  });
}

// The forks of the child of fork_of_fork, timed by fork handlers around the
// fork() itself: timing the spawn of its agents would add each
// grandchild's start-up handshake (a wakeup, scheduling on a loaded host).
// Registered in that child only; a process has no way to drop them, and
// the child exits after the iteration.
struct ForkClock {
  bool on = false;
  int64_t started = 0;
  int64_t ns = 0;
};
ForkClock g_fork_clock;
void fork_clock_before() {
  if (g_fork_clock.on) g_fork_clock.started = mm::monotonic_ns();
}
void fork_clock_after() {
  if (g_fork_clock.on) g_fork_clock.ns += mm::monotonic_ns() - g_fork_clock.started;
}

// In the child of fork_of_fork: a layout of its own, faulted, then `count`
// grandchildren forked (timed: the fork()s). Replies the ns and where its
// layout is.
Result<harness::Figures> own_layout_and_fork(Held& h, long count) {
  auto space = Space::reserve(kFolios + 2);
  if (!space) return space.status();
  h.own_space.emplace(std::move(*space));
  auto own = fault_layout(h.own_space->slot(1), kChildSeed);
  if (!own) return own.status().context("the child's own layout");
  h.view.pieces.push_back(mm::rmap_probe::whole(*own).front());
  // Last registered, so ours is the first prepare handler and the last
  // parent handler: the others' work (recording the pid) is inside.
  if (int err = pthread_atfork(fork_clock_before, fork_clock_after, nullptr); err != 0)
    return Status::from_errno("pthread_atfork", err);
  g_fork_clock = {true, 0, 0};
  auto group = spawn_agents(count, h.view.pieces, "grandchild", h.corrupt_first_child);
  g_fork_clock.on = false;
  if (!group) return group.status();
  h.children.emplace(std::move(*group));
  return harness::Figures{static_cast<double>(g_fork_clock.ns), static_cast<double>(own->start)};
}

Result<harness::Figures> child_pid(Held& h, long i) {
  if (!h.children || i < 0 || static_cast<size_t>(i) >= h.children->size()) return Status::error("no such child");
  auto r = (*h.children)[static_cast<size_t>(i)].call({kPid, 0});
  if (!r) return r.status();
  return harness::Figures{r->values[0]};
}

// An agent leaves its request loop through _exit, without destructors: its
// own children are stopped and reaped here first, or they would stay behind
// as zombies of the run.
Result<harness::Figures> release_children(Held& h, long) {
  h.children.reset();
  return harness::Figures{};
}

constexpr harness::Request<Held> kRequests[] = {
    {kPid, pid_of},         {kPrepare, prepare},
    {kVerify, verify},      {kOwnLayoutAndFork, own_layout_and_fork},
    {kChildPid, child_pid}, {kReleaseChildren, release_children},
};

mm::Agent::Handler handler_for(std::shared_ptr<Held> held) { return harness::serve(std::move(held), kRequests); }

// ------------------------------------------------------------ orphans

// Processes whose parent exited before them: an intermediate process maps a
// layout of its own, forks the orphans, and exits when told (timed); the
// orphans are reparented to us (the child subreaper while they live) and
// serve the same requests as agents, over pipes we made before the fork.
class Orphans {
 public:
  static Result<Orphans> create(long count, const View& parent_view, bool corrupt_first) {
    Orphans o;
    if (prctl(PR_GET_CHILD_SUBREAPER, &o.previous_subreaper_) != 0 || prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
      return Status::from_errno("prctl(PR_SET_CHILD_SUBREAPER): the orphans must be reparented to us");
    o.subreaper_set_ = true;
    std::vector<int> fds;  // per orphan: request read, request write, reply read, reply write
    int report[2], cue[2];
    if (pipe2(report, O_CLOEXEC) != 0 || pipe2(cue, O_CLOEXEC) != 0) return Status::from_errno("pipe");
    auto close_pipes = [&] {
      for (int fd : fds) close(fd);
      for (int fd : {report[0], report[1], cue[0], cue[1]}) close(fd);
    };
    for (long i = 0; i < count; ++i) {
      int req[2], rep[2];
      if (pipe2(req, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
        close_pipes();
        return Status::from_errno("pipe");
      }
      fds.insert(fds.end(), {req[0], req[1], rep[0], rep[1]});
    }
    // The intermediate stamps its exit here, so the figure is its exit until
    // reaped, without the wakeup our cue costs.
    void* page = mmap(nullptr, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) {
      close_pipes();
      return Status::from_errno("mmap the exit stamp page");
    }
    o.exit_stamp_ = static_cast<volatile int64_t*>(page);
    *o.exit_stamp_ = 0;
    const pid_t us = getpid();
    auto intermediate = safety::fork_child_of_run();
    if (!intermediate) {
      close_pipes();
      return intermediate.status().context("forking the orphans' parent");
    }
    if (*intermediate == 0) {
      // Our ends stay ours: the cue is EOF only once no process holds its
      // write end, and the orphans are forked from here.
      close(report[0]);
      close(cue[1]);
      run_intermediate(count, parent_view, corrupt_first, fds, report[1], cue[0], us, o.exit_stamp_);
    }
    o.intermediate_ = *intermediate;
    close(report[1]);
    close(cue[0]);
    report[1] = cue[0] = -1;
    for (long i = 0; i < count; ++i) {
      close(fds[4 * i]);
      close(fds[4 * i + 3]);
      o.request_fds_.push_back(fds[4 * i + 1]);
      o.reply_fds_.push_back(fds[4 * i + 2]);
    }
    fds.clear();
    // What the intermediate reports: its layout's start (0: it failed; the
    // message follows), then the orphans' pids.
    uintptr_t own_start = 0;
    std::vector<pid_t> pids(static_cast<size_t>(count));
    mm::AgentReply failure;
    const bool reported = read_full(report[0], &own_start, sizeof own_start) &&
                          (own_start == 0 ? read_full(report[0], &failure, sizeof failure)
                                          : read_full(report[0], pids.data(), pids.size() * sizeof(pid_t)));
    close(report[0]);
    if (!reported || own_start == 0) {
      close(cue[1]);
      if (!reported) return Status::error("the orphans' parent died before it reported");
      return status_of(failure).context("the orphans' parent");
    }
    o.pids_ = pids;
    o.own_ = {own_start, kChildSeed, kFolios, pages_per_folio(), mm::page_size()};
    // The sequence: the parent of the orphans exits (exit_mmap:
    // unlink_anon_vmas of anon_vmas its children still use), until reaped.
    close(cue[1]);
    int status = 0;
    while (waitpid(o.intermediate_, &status, 0) < 0 && errno == EINTR) {
    }
    const int64_t reaped = mm::monotonic_ns();
    const pid_t intermediate_pid = std::exchange(o.intermediate_, -1);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return safety::classify_wait_status(intermediate_pid, status).as_status("the orphans' parent");
    if (*o.exit_stamp_ <= 0) return Status::error("the orphans' parent exited without its exit stamp");
    o.exit_ns_ = reaped - *o.exit_stamp_;
    return o;
  }

  Orphans(Orphans&& o) noexcept
      : pids_(std::move(o.pids_)),
        request_fds_(std::move(o.request_fds_)),
        reply_fds_(std::move(o.reply_fds_)),
        own_(o.own_),
        exit_ns_(o.exit_ns_),
        intermediate_(std::exchange(o.intermediate_, -1)),
        previous_subreaper_(o.previous_subreaper_),
        subreaper_set_(std::exchange(o.subreaper_set_, false)),
        exit_stamp_(std::exchange(o.exit_stamp_, nullptr)) {
    o.pids_.clear();
  }
  Orphans& operator=(Orphans&&) = delete;

  ~Orphans() {
    for (int fd : request_fds_) close(fd);  // EOF: each orphan exits
    for (int fd : reply_fds_) close(fd);
    for (pid_t pid : pids_) {
      int status;
      // Not our child (reparented elsewhere): it must not outlive us either.
      if (waitpid(pid, &status, 0) < 0 && errno == ECHILD) kill(pid, SIGKILL);
    }
    if (intermediate_ > 0) {
      kill(intermediate_, SIGKILL);
      waitpid(intermediate_, nullptr, 0);
    }
    if (subreaper_set_) prctl(PR_SET_CHILD_SUBREAPER, previous_subreaper_);
    if (exit_stamp_) munmap(const_cast<int64_t*>(exit_stamp_), sizeof(int64_t));
  }

  const std::vector<pid_t>& pids() const { return pids_; }
  const Shape& intermediate_layout() const { return own_; }
  int64_t exit_ns() const { return exit_ns_; }

  Status call_all(const mm::AgentRequest& request) {
    for (int fd : request_fds_)
      if (write(fd, &request, sizeof request) != sizeof request) return Status::from_errno("request to an orphan");
    Status first;
    for (size_t i = 0; i < reply_fds_.size(); ++i) {
      mm::AgentReply r;
      if (!read_full(reply_fds_[i], &r, sizeof r)) {
        if (!first.failed()) first = Status::error(fmt::format("orphan {} (pid {}) died", i, pids_[i]));
        continue;
      }
      if (r.failed && !first.failed()) first = status_of(r);
    }
    return first;
  }

 private:
  Orphans() = default;

  // A failure with its kind (a skip in the orphans' parent stays a skip).
  static Status status_of(const mm::AgentReply& r) {
    const std::string message(r.message, strnlen(r.message, sizeof r.message));
    switch (r.failed - 1) {
      case static_cast<int>(Status::Kind::skip): return Status::skip(message);
      case static_cast<int>(Status::Kind::declined): return Status::declined(message);
    }
    return Status::error(message);
  }

  static bool read_full(int fd, void* buf, size_t len) {
    char* p = static_cast<char*>(buf);
    while (len > 0) {
      ssize_t n = read(fd, p, len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      p += n;
      len -= static_cast<size_t>(n);
    }
    return true;
  }

  [[noreturn]] static void run_intermediate(long count, const View& parent_view, bool corrupt_first,
                                            const std::vector<int>& fds, int report, int cue, pid_t us,
                                            volatile int64_t* exit_stamp) {
    auto fail = [&](const Status& s) {
      const uintptr_t none = 0;
      const mm::AgentReply why = mm::reply_status(s);
      (void)!write(report, &none, sizeof none);
      (void)!write(report, &why, sizeof why);
      _exit(1);
    };
    auto space = Space::reserve(kFolios + 2);
    if (!space) fail(space.status());
    auto own = fault_layout(space->slot(1), kChildSeed);
    if (!own) fail(own.status().context("the orphans' parent's own layout"));
    View view{"", 0, parent_view.pieces};
    view.pieces.push_back(mm::rmap_probe::whole(*own).front());
    // One byte from each orphan once its death signal is off: we must not
    // exit before that, or the signal it briefly had would kill it.
    int disarmed[2];
    if (pipe2(disarmed, O_CLOEXEC) != 0) fail(Status::from_errno("pipe"));
    std::vector<pid_t> pids;
    for (long i = 0; i < count; ++i) {
      const pid_t me = getpid();
      const pid_t pid = fork();
      if (pid < 0) fail(mm::fork_failure(errno, "forking an orphan"));
      if (pid == 0) {
        // The run's hygiene for a child, without the death signal: this
        // parent is about to exit on purpose. It is armed again against us
        // once we are the parent.
        safety::become_child_of_run(me);
        prctl(PR_SET_PDEATHSIG, 0);
        close(report);
        close(cue);
        close(disarmed[0]);
        (void)!write(disarmed[1], "d", 1);
        close(disarmed[1]);
        for (size_t k = 0; k < fds.size(); ++k)
          if (!(static_cast<long>(k / 4) == i && (k % 4 == 0 || k % 4 == 3))) close(fds[k]);
        serve_orphan(i, view, corrupt_first && i == 0, fds[4 * i], fds[4 * i + 3], us);
      }
      pids.push_back(pid);
    }
    close(disarmed[1]);
    for (long i = 0; i < count; ++i) {
      char d;
      if (!read_full(disarmed[0], &d, 1)) fail(Status::error("an orphan died before it was ready"));
    }
    close(disarmed[0]);
    const uintptr_t start = own->start;
    (void)!write(report, &start, sizeof start);
    (void)!write(report, pids.data(), pids.size() * sizeof(pid_t));
    char c;
    while (read(cue, &c, 1) < 0 && errno == EINTR) {
    }
    *exit_stamp = mm::monotonic_ns();
    _exit(0);
  }

  [[noreturn]] static void serve_orphan(long index, const View& view, bool corrupt, int requests, int replies,
                                        pid_t us) {
    auto held = std::make_shared<Held>();
    held->view = {fmt::format("orphan {}", index), 0, view.pieces};
    held->corrupt = corrupt;
    const mm::Agent::Handler handler = handler_for(held);
    bool armed = false;
    mm::AgentRequest req;
    while (read_full(requests, &req, sizeof req)) {
      if (!armed) {
        // Requests come only after our parent was reaped: we are reparented.
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != us) _exit(safety::kOrphanedChildExitCode);
        armed = true;
      }
      mm::AgentReply r = handler(req);
      if (write(replies, &r, sizeof r) != sizeof r) break;
    }
    _exit(0);
  }

  std::vector<pid_t> pids_;
  std::vector<int> request_fds_, reply_fds_;
  Shape own_;
  int64_t exit_ns_ = 0;
  pid_t intermediate_ = -1;
  int previous_subreaper_ = 0;
  bool subreaper_set_ = false;
  volatile int64_t* exit_stamp_ = nullptr;
};

// ------------------------------------------------------------ the sequences

// One iteration's state: our reservation and layout, the other processes,
// and what every process maps once the sequence ran (views[0]: us).
struct Iteration {
  Space space;
  Shape shape;  // our layout as faulted, at slot 1
  long sharers = 0;
  bool corrupt = false;
  std::optional<harness::AgentGroup> agents;
  std::optional<mm::Agent> child;  // fork_of_fork
  std::optional<Orphans> orphans;
  std::vector<View> views;

  ~Iteration() {
    if (child) (void)child->call({kReleaseChildren, 0});
  }

  // PMD-aligned, with room for the layout grown by one folio.
  uintptr_t destination() const { return reinterpret_cast<uintptr_t>(space.slot(kFolios + 3)); }
  std::vector<Piece> whole() const { return mm::rmap_probe::whole(shape); }

  // Sharers forked now, each mapping `pieces` (what we map at the fork).
  Status fork_sharers(const std::vector<Piece>& pieces) {
    auto group = spawn_agents(sharers, pieces, "sharer", corrupt);
    if (!group) return group.status();
    agents.emplace(std::move(*group));
    return Status::ok();
  }
  std::vector<pid_t> sharer_pids() const { return agents ? agents->pids() : std::vector<pid_t>{}; }

  Status call_all(const mm::AgentRequest& r) {
    if (agents)
      if (auto replies = agents->call_all(r); !replies) return replies.status();
    if (child)
      if (auto reply = child->call(r); !reply) return reply.status();
    if (orphans) return orphans->call_all(r);
    return Status::ok();
  }
};

// Timed: the mremap alone. The hole a move leaves is plugged and the grown
// folio faulted after.
Result<int64_t> remap(Iteration& it, Remap how) {
  const Shape& s = it.shape;
  const mm::rmap_probe::Remapped r = mm::rmap_probe::remapped(s, how, it.destination());
  void* from = reinterpret_cast<void*>(s.start);
  void* to = reinterpret_cast<void*>(r.start);
  const int64_t t0 = mm::monotonic_ns();
  void* got = how == Remap::shrink ? mremap(from, s.bytes(), r.bytes, 0)
                                   : mremap(from, s.bytes(), r.bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to);
  const int64_t ns = mm::monotonic_ns() - t0;
  if (got == MAP_FAILED) return Status::from_errno(how == Remap::shrink ? "mremap (shrink in place)"
                                                                        : "mremap (MREMAP_MAYMOVE | MREMAP_FIXED)");
  if (got != to) return Status::error(fmt::format("mremap put the layout at {}, not at {}", got, to));
  const Status plugged = how == Remap::shrink ? plug(s.start + r.bytes, s.bytes() - r.bytes) : plug(s.start, s.bytes());
  if (plugged.failed()) return plugged;
  if (how == Remap::grow) mm::rmap_probe::fill(mm::rmap_probe::after_remap(s, how, r.start).back());
  return ns;
}

// Before fork: we remap, then fork the sharers (they inherit the result).
// After fork: the sharers exist, then we remap our copy.
template <Remap how, bool after_fork>
Result<int64_t> remap_sequence(Iteration& it) {
  if (after_fork)
    if (Status s = it.fork_sharers(it.whole()); s.failed()) return s;
  auto ns = remap(it, how);
  if (!ns) return ns;
  const std::vector<Piece> ours = mm::rmap_probe::after_remap(it.shape, how, it.destination());
  if (!after_fork)
    if (Status s = it.fork_sharers(ours); s.failed()) return s;
  it.views = mm::rmap_probe::views_of(ours, after_fork ? it.whole() : ours, it.sharer_pids(), "sharer");
  return ns;
}

// After fork, we mprotect the middle of our VMA read-only (3 VMAs; the
// boundaries inside folios split those PMDs), then back (one VMA again).
Result<int64_t> mprotect_split_merge(Iteration& it) {
  if (Status s = it.fork_sharers(it.whole()); s.failed()) return s;
  const auto [middle, middle_bytes] = mm::rmap_probe::mprotect_middle(it.shape);
  void* at = reinterpret_cast<void*>(middle);
  const int64_t t0 = mm::monotonic_ns();
  const int split = mprotect(at, middle_bytes, PROT_READ);
  const int merge = split == 0 ? mprotect(at, middle_bytes, PROT_READ | PROT_WRITE) : -1;
  const int64_t ns = mm::monotonic_ns() - t0;
  if (split != 0 || merge != 0) return Status::from_errno("mprotect the middle of the layout");
  if (Status s = expect_one_vma(it.shape, "mprotect PROT_READ and back"); s.failed()) return s;
  it.views = mm::rmap_probe::views_of(it.whole(), it.whole(), it.sharer_pids(), "sharer");
  return ns;
}

// After fork, we unmap our last folio, map a new anonymous VMA in its place
// that merges with the rest (once it wants THPs as the rest does), and fault it.
Result<int64_t> munmap_then_merge(Iteration& it) {
  if (Status s = it.fork_sharers(it.whole()); s.failed()) return s;
  const std::vector<Piece> ours = mm::rmap_probe::after_munmap_then_merge(it.shape, kNeighbourSeed);
  const Piece& neighbour = ours.back();
  char* at = reinterpret_cast<char*>(neighbour.start);
  const size_t bytes = static_cast<size_t>(neighbour.pages) * mm::page_size();
  const int64_t t0 = mm::monotonic_ns();
  const int unmapped = munmap(at, bytes);
  const Status mapped = unmapped == 0 ? map_thp_vma(at, bytes) : Status::from_errno("munmap the last folio");
  const int64_t ns = mm::monotonic_ns() - t0;
  if (mapped.failed()) return mapped;
  mm::rmap_probe::fill(neighbour);
  if (Status s = expect_one_vma(it.shape, "munmap and a new neighbour"); s.failed()) return s;
  it.views = mm::rmap_probe::views_of(ours, it.whole(), it.sharer_pids(), "sharer");
  return ns;
}

// A child maps and faults a layout of its own, then forks the grandchildren
// (timed, in the child): they map our folios through a two-level anon_vma
// hierarchy, and the child's through one.
Result<int64_t> fork_of_fork(Iteration& it) {
  auto held = std::make_shared<Held>();
  held->view = {"child", 0, it.whole()};
  held->corrupt_first_child = it.corrupt;
  auto child = mm::Agent::spawn(1, {}, handler_for(held));
  if (!child) return child.status();
  it.child.emplace(std::move(*child));
  auto forked = it.child->call({kOwnLayoutAndFork, it.sharers});
  if (!forked) return forked.status();
  const Shape childs_own{static_cast<uintptr_t>(forked->values[1]), kChildSeed, kFolios, pages_per_folio(),
                         mm::page_size()};
  std::vector<pid_t> grandchildren;
  for (long i = 0; i < it.sharers; ++i) {
    auto pid = it.child->call({kChildPid, i});
    if (!pid) return pid.status();
    grandchildren.push_back(static_cast<pid_t>(pid->values[0]));
  }
  it.views = mm::rmap_probe::views_of_fork_of_fork(it.shape, childs_own, it.child->pid(), grandchildren);
  return static_cast<int64_t>(forked->values[0]);
}

// The parent of the sharers maps and faults a layout of its own, forks them
// and exits before them (timed: its exit until reaped).
Result<int64_t> orphaned(Iteration& it) {
  auto orphans = Orphans::create(it.sharers, {"", 0, it.whole()}, it.corrupt);
  if (!orphans) return orphans.status();
  it.orphans.emplace(std::move(*orphans));
  it.views = mm::rmap_probe::views_of_orphaned(it.shape, it.orphans->intermediate_layout(), it.orphans->pids());
  return it.orphans->exit_ns();
}

struct Variant {
  const char* name;
  Result<int64_t> (*sequence)(Iteration&);
  const char* note;
};

const Variant kVariants[] = {
    {"mremap_move_before_fork", remap_sequence<Remap::move, false>,
     "timed: mremap of the layout to a PMD-aligned address (MREMAP_MAYMOVE|MREMAP_FIXED), then the sharers fork"},
    {"mremap_move_after_fork", remap_sequence<Remap::move, true>,
     "timed: the sharers exist; mremap of our copy to a PMD-aligned address (MREMAP_MAYMOVE|MREMAP_FIXED)"},
    {"mremap_grow_before_fork", remap_sequence<Remap::grow, false>,
     "timed: mremap of the layout to a PMD-aligned address, one PMD larger (the new folio is faulted untimed), "
     "then the sharers fork"},
    {"mremap_grow_after_fork", remap_sequence<Remap::grow, true>,
     "timed: the sharers exist; mremap of our copy to a PMD-aligned address, one PMD larger (the new folio, "
     "faulted untimed, is ours alone)"},
    {"mremap_shrink_before_fork", remap_sequence<Remap::shrink, false>,
     "timed: mremap shrinking the layout in place by half a folio (its last folio half unmapped), then the "
     "sharers fork"},
    {"mremap_shrink_after_fork", remap_sequence<Remap::shrink, true>,
     "timed: the sharers exist; mremap shrinking our copy in place by half a folio"},
    {"mprotect_split_merge", mprotect_split_merge,
     "timed: the sharers exist; mprotect PROT_READ of the middle of our VMA (from inside the first folio to inside "
     "the last: 3 VMAs), then PROT_READ|PROT_WRITE (merged back into one, checked in /proc/self/maps)"},
    {"munmap_then_merge", munmap_then_merge,
     "timed: the sharers exist; munmap of our last folio, mmap of a new anonymous VMA in its place and "
     "MADV_HUGEPAGE, which merges it with the rest (checked in /proc/self/maps); its folio faulted untimed"},
    {"fork_of_fork", fork_of_fork,
     "timed: a child, having mapped and faulted a layout of its own, forks `sharers` grandchildren (the fork()s, "
     "summed); they map our folios through two levels of anon_vma and the child's through one"},
    {"orphaned", orphaned,
     "timed: the sharers' parent, which mapped a layout of its own, exits before them (from its exit stamp until "
     "reaped); the sharers, reparented to us, still map its folios and ours"},
};

// One iteration: a fresh layout, the sequence (timed), the walk, the oracles.
Result<int64_t> sequence_once(harness::Run& run, const Variant& v, const mm::rmap_probe::Walk& walk, long sharers,
                              bool corrupt) {
  auto space = Space::reserve(2 * kFolios + 6);
  if (!space) return space.status();
  auto layout = fault_layout(space->slot(1), kParentSeed);
  if (!layout) return layout.status();
  Iteration it{std::move(*space), *layout, sharers, corrupt, {}, {}, {}, {}};
  auto ns = v.sequence(it);
  if (!ns) return ns;
  const bool drop = walk.mappers_drop_pages();
  if (Status s = prepare_view(it.views.front(), drop); s.failed()) return s;
  if (Status s = it.call_all({kPrepare, drop}); s.failed()) return s.context("preparing the walk");
  auto walked = walk.run(it.views, pages_per_folio());
  if (!walked) return walked.status().context(v.name);
  if (Status s = verify_view(it.views.front(), drop); s.failed()) return s;
  if (Status s = it.call_all({kVerify, drop}); s.failed()) return s;
  run.add("walk_ns", static_cast<double>(*walked));
  return ns;
}

void run(benchmark::State& state, const Variant& v, const long& sharers) {
  harness::Run run(state, {v.note});
  auto walk = mm::rmap_probe::Walk::choose();
  if (!walk) return run.stop(walk.status());
  run.note(walk->note());
  std::vector<std::string> notes;
  auto guards = mm::thp::allow_size(static_cast<long>(pmd() / 1024), &notes);
  for (auto& n : notes) run.note(std::move(n));
  if (!guards) return run.stop(Status::skip(guards.status().message()));
  if (walk->kind() == mm::rmap_probe::Walk::Kind::deferred_split && geteuid() != 0)
    return run.stop(Status::skip("needs root: the deferred split shrinker is run through /proc/sys/vm/drop_caches"));
  const bool corrupt = mm::test_corruption_requested("vma_ops");
  if (!run.time([&] { return sequence_once(run, v, *walk, sharers, corrupt); })) return;
  const double n = static_cast<double>(std::max(1L, run.iterations()));
  report_metric(state, kSequenceUs, run.timed_ns() / 1e3 / n);
  report_metric(state, kWalkUs, run.sum("walk_ns") / 1e3 / n);
  run.note(fmt::format("{} PMD THPs of {} kB per layout", kFolios, pmd() / 1024));
  run.finish();
}

void register_vma_ops(Registrar& r) {
  const bool quick = r.profile() == Profile::quick;
  const std::vector<long> sharers = r.sweep("sharers", {1, 4}, {1, 4, 16});
  auto points = [&](const Variant&) {
    std::vector<std::pair<std::string, long>> out;
    for (long s : sharers) out.emplace_back(fmt::format("/sharers:{}", s), s);
    return out;
  };
  add_variants(r, kVariants, points, run, quick ? 2 : 10);
}

}  // namespace

RMAPBENCH_WORKLOAD(vma_ops,
                   {.name = "vma_ops",
                    .kernel_path = "move_vma / vma_expand / __split_vma / vma_merge (the anon_vma interval tree "
                                   "updates), anon_vma_fork of a fork, unlink_anon_vmas of an exited parent; then an "
                                   "rmap walk over every mapper (split_folio -> unmap_folio, or migration)",
                    .description = "A layout of 4 PMD THPs is faulted with a pattern; each variant is one sequence of "
                                   "VMA operations over it, before or after S sharers fork: mremap move, grow and "
                                   "shrink (to PMD-aligned addresses), mprotect split and merge, munmap and merge "
                                   "with a new neighbour, a child's own layout forked to grandchildren, a parent "
                                   "exiting before its children. Timed: the sequence. Then an operation walks the "
                                   "rmap of every folio: migration to the other node (>= 2 nodes), else a THP split "
                                   "(debugfs split_huge_pages, else the deferred split shrinker after every mapper "
                                   "dropped one page of each folio).",
                    .oracle = "the walk's effect shows in every process that maps a folio (no page of its views in "
                              "a large folio, kpageflags), whatever the sequence did to the VMAs; every byte intact "
                              "in every process; merged VMAs are one VMA in /proc/self/maps.",
                    .parameters = "sharers: processes besides us mapping the folios (grandchildren for fork_of_fork, "
                                  "orphans for orphaned; quick 1,4; full 1,4,16)",
                    .needs = {{"transparent huge pages", mm::thp::unavailable}},
                    .register_benchmarks = register_vma_ops});

}  // namespace rmapbench
