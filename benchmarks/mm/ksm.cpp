#include "benchmarks/mm/ksm.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/page_census.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/procfs/ksm_users.hpp"
#include "kernels/procfs/sysfs_text.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/signals.hpp"

namespace rmapbench::mm::ksm {

namespace {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr uint64_t kStep = 0xD6E8FEB86659FD93ull;

bool parse_ll(std::string_view s, long long& out) {
  s = sysfs::trim(s);
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

std::string knob(const char* name) { return std::string(kKsmDir) + "/" + name; }

}  // namespace

// ------------------------------------------------------------ counters

Result<long long> read_counter(const std::string& name) {
  auto text = sysfs::read_file(std::string(kKsmDir) + "/" + name, 256);
  if (!text) return text.status();
  long long v = 0;
  if (!parse_ll(*text, v)) return Status::error(fmt::format("{}/{}: not a number: '{}'", kKsmDir, name, *text));
  return v;
}

Result<CounterFile> CounterFile::open(const std::string& name) { return open_path(std::string(kKsmDir) + "/" + name); }

Result<CounterFile> CounterFile::open_path(const std::string& path) {
  CounterFile f;
  f.path_ = path;
  f.fd_ = ::open(f.path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) return Status::from_errno(f.path_);
  return f;
}

CounterFile::~CounterFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<long long> CounterFile::read() const {
  char buf[64];
  ssize_t n = pread(fd_, buf, sizeof buf - 1, 0);
  if (n < 0) return Status::from_errno(path_);
  long long v = 0;
  if (!parse_ll(std::string_view(buf, static_cast<size_t>(n)), v))
    return Status::error(fmt::format("{}: not a number: '{}'", path_, std::string_view(buf, static_cast<size_t>(n))));
  return v;
}

Result<MergingPages> MergingPages::open(const std::vector<pid_t>& pids) {
  MergingPages m;
  for (pid_t pid : pids) {
    auto f = CounterFile::open_path(fmt::format("/proc/{}/ksm_merging_pages", pid));
    if (!f) return f.status();
    m.files_.push_back(std::move(*f));
  }
  return m;
}

Result<std::vector<long long>> MergingPages::each() const {
  std::vector<long long> out;
  for (const auto& f : files_) {
    auto v = f.read();
    if (!v) return v.status();
    out.push_back(*v);
  }
  return out;
}

Result<long long> MergingPages::sum() const {
  long long n = 0;
  for (const auto& f : files_) {
    auto v = f.read();
    if (!v) return v.status();
    n += *v;
  }
  return n;
}

Result<Counters> read_counters() {
  Counters c;
  struct Field {
    const char* name;
    long long* dst;
    bool required;
  } fields[] = {{"pages_shared", &c.pages_shared, true},         {"pages_sharing", &c.pages_sharing, true},
                {"pages_unshared", &c.pages_unshared, false},    {"pages_volatile", &c.pages_volatile, false},
                {"full_scans", &c.full_scans, true},             {"stable_node_chains", &c.stable_node_chains, false},
                {"stable_node_dups", &c.stable_node_dups, false}};
  for (const Field& f : fields) {
    auto v = read_counter(f.name);
    if (v) *f.dst = *v;
    else if (f.required) return v.status();
  }
  return c;
}

// ------------------------------------------------------------ pure parsers

Result<long long> parse_stat_cpu_ticks(std::string_view stat) {
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return Status::error("/proc/<pid>/stat: no ')' after the command name");
  // After ")": field 3 (state) onwards, separated by single spaces.
  std::string_view rest = stat.substr(paren + 1);
  long long utime = 0, stime = 0;
  int field = 2;
  size_t pos = 0;
  while (field < 15) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    if (pos >= rest.size()) return Status::error(fmt::format("/proc/<pid>/stat: only {} fields", field));
    size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    std::string_view token = rest.substr(pos, end - pos);
    if (field == 14 && !parse_ll(token, utime))
      return Status::error(fmt::format("/proc/<pid>/stat: utime '{}' is not a number", token));
    if (field == 15 && !parse_ll(token, stime))
      return Status::error(fmt::format("/proc/<pid>/stat: stime '{}' is not a number", token));
    pos = end;
  }
  return utime + stime;
}

Result<long long> parse_schedstat_ns(std::string_view schedstat) {
  std::string_view t = sysfs::trim(schedstat);
  const size_t space = t.find(' ');
  long long ns = 0;
  if (space == std::string_view::npos || !parse_ll(t.substr(0, space), ns) || ns < 0)
    return Status::error(fmt::format("/proc/<pid>/schedstat: malformed '{}'", t));
  return ns;
}

Result<long long> parse_ksm_stat_field(std::string_view text, std::string_view name) {
  for (std::string_view line : sysfs::split_lines(text)) {
    if (line.substr(0, name.size()) != name || line.size() <= name.size() || line[name.size()] != ' ') continue;
    long long v = 0;
    if (!parse_ll(line.substr(name.size() + 1), v))
      return Status::error(fmt::format("ksm_stat: {} is not a number: '{}'", name, line));
    return v;
  }
  return Status::error(fmt::format("ksm_stat has no {}", name));
}

Result<long long> ksm_stat_field(pid_t pid, const std::string& name) {
  const std::string path = fmt::format("/proc/{}/ksm_stat", pid);
  auto text = sysfs::read_file(path, 4096);
  if (!text) return text.status();
  auto v = parse_ksm_stat_field(*text, name);
  if (!v) return v.status().context(path);
  return v;
}

Expected expected_merge(const std::vector<long long>& mappers_per_content, long max_page_sharing) {
  Expected e;
  const long long cap = std::max(2L, max_page_sharing);
  for (long long n : mappers_per_content) {
    if (n < 2) continue;  // a content seen once stays unshared
    const long long pages = (n + cap - 1) / cap;
    e.shared += pages;
    e.sharing += n - pages;
  }
  return e;
}

std::vector<long long> mappers_per_content(long processes, long pages, long contents) {
  std::vector<long long> out(static_cast<size_t>(std::max(1L, contents)), 0);
  for (long j = 0; j < pages; ++j) out[static_cast<size_t>(j % contents)] += processes;
  return out;
}

// ------------------------------------------------------------ ksmd

Result<pid_t> find_ksmd() {
  DIR* d = opendir("/proc");
  if (!d) return Status::from_errno("/proc");
  pid_t found = -1;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0) continue;
    auto comm = sysfs::read_file(fmt::format("/proc/{}/comm", pid), 64);
    if (comm && sysfs::trim(*comm) == "ksmd") {
      found = static_cast<pid_t>(pid);
      break;
    }
  }
  closedir(d);
  if (found < 0) return Status::error("no ksmd thread in /proc (kernel without CONFIG_KSM?)");
  return found;
}

Result<KsmdClock> KsmdClock::open() {
  auto pid = find_ksmd();
  if (!pid) return pid.status();
  KsmdClock c;
  c.pid_ = *pid;
  auto text = sysfs::read_file(fmt::format("/proc/{}/schedstat", c.pid_), 256);
  c.schedstat_ = text && parse_schedstat_ns(*text);
  c.source_ = c.schedstat_ ? "schedstat" : "stat (clock ticks)";
  if (!c.cpu_ns()) return c.cpu_ns().status();
  return c;
}

Result<int64_t> KsmdClock::cpu_ns() const {
  if (schedstat_) {
    auto text = sysfs::read_file(fmt::format("/proc/{}/schedstat", pid_), 256);
    if (!text) return text.status();
    auto ns = parse_schedstat_ns(*text);
    if (!ns) return ns.status();
    return static_cast<int64_t>(*ns);
  }
  auto text = sysfs::read_file(fmt::format("/proc/{}/stat", pid_), 4096);
  if (!text) return text.status();
  auto ticks = parse_stat_cpu_ticks(*text);
  if (!ticks) return ticks.status();
  return static_cast<int64_t>(*ticks * (1'000'000'000LL / sysconf(_SC_CLK_TCK)));
}

namespace {
// Who maps a KSM page right now, by pagemap and kpageflags: the processes
// KSM knows (ksm_merging_pages) are not all of them: a process forked from a
// KSM user maps its KSM pages before ksmd ever scans it.
// Processes in exit (PF_EXITING) now: their address space may be mapped
// still while /proc/<pid>/maps and pagemap already read empty.
std::string exiting_processes() {
  constexpr unsigned long kPfExiting = 0x4, kPfKthread = 0x00200000;
  std::string out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto stat = sysfs::read_file("/proc/" + name + "/stat", 4096);
    if (!stat) continue;
    // pid (comm) state ppid pgrp session tty_nr tpgid flags ...: comm may hold spaces.
    const size_t close = stat->rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat->substr(close + 1));
    std::string state;
    long long skip = 0;
    unsigned long flags = 0;
    if (!(rest >> state >> skip >> skip >> skip >> skip >> skip >> flags)) continue;
    if ((flags & kPfKthread) || !(flags & kPfExiting)) continue;
    out += fmt::format(" pid {} {} state {};", name, stat->substr(stat->find('('), close - stat->find('(') + 1), state);
  }
  if (out.empty()) return "none";
  out.pop_back();
  return out.substr(1);
}

std::string describe_ksm_page_holders() {
  auto holders = ksm_page_holders();
  if (!holders) return "Processes mapping KSM pages: unknown (" + holders.status().message() + ")";
  if (holders->empty())
    return "No process maps a KSM page now (pagemap/kpageflags of every private mapping of every process); "
           "processes exiting now: " + exiting_processes();
  std::string out = "Processes mapping KSM pages now (pagemap/kpageflags):";
  for (const auto& h : *holders) out += fmt::format(" pid {} ({}) {} pages;", h.pid, h.comm, h.ksm_pages);
  out.pop_back();
  return out;
}
}  // namespace

Result<Tuning> Tuning::apply(const Options& o, std::vector<std::string>* notes) {
  auto run = safety::read_knob(knob("run"));
  if (!run) return run.status();
  auto counters = read_counters();
  if (!counters) return counters.status();
  auto mps = read_counter("max_page_sharing");
  Tuning t;
  t.max_page_sharing_ = mps ? static_cast<long>(*mps) : 256;
  // Another process that opted in (a VM's RAM, say) would merge as soon as
  // ksmd runs: the host is not ours alone even when nothing is merged yet.
  const auto others = host::other_ksm_users();
  const bool nothing_merged = *run == "0" && counters->pages_shared == 0 && counters->pages_sharing == 0;
  t.exclusive_ = nothing_merged && others.empty();
  t.other_users_ = others.empty() ? "" : host::describe_ksm_users(others);
  if (o.max_page_sharing && *o.max_page_sharing != t.max_page_sharing_ && !nothing_merged)
    return Status::error(fmt::format("max_page_sharing can only change while no page is merged, and this host uses KSM "
                                     "(run={}, pages_shared={}{})",
                                     *run, counters->pages_shared,
                                     t.other_users_.empty() ? "" : "; other KSM users: " + t.other_users_));
  auto set = [&t](const char* name, const std::string& value) -> Status {
    auto g = safety::KnobGuard::set(knob(name), value);
    if (!g) return g.status();
    t.guards_.push_back(std::move(*g));
    return Status::ok();
  };
  // run=2 first: the guard of run=1 below then restores to 2 (unmerge all)
  // before the older guards, max_page_sharing among them, are restored.
  if (nothing_merged)
    if (Status s = set("run", "2"); s.failed()) return s;
  if (o.max_page_sharing && *o.max_page_sharing != t.max_page_sharing_) {
    // KSM pages this process maps without knowing (page_census.hpp) keep
    // their stable nodes mapped, and the knob refused.
    auto unshared = unshare_own_ksm_pages();
    if (!unshared) return unshared.status();
    if (unshared->pages > 0 && notes)
      notes->push_back(fmt::format("{} KSM page(s) mapped by this process (shared by COW with an agent that opted in) "
                                   "copied before max_page_sharing changed",
                                   unshared->pages));
    if (unshared->too_large > 0 && notes)
      notes->push_back(fmt::format("{} mapping(s) of this process too large to search page by page (a sanitizer's "
                                   "shadow) hold KSM pages: not copied",
                                   unshared->too_large));
    if (Status s = set("max_page_sharing", std::to_string(*o.max_page_sharing)); s.failed()) {
      if (s.err() != EBUSY) return s;
      // Who still maps a KSM page: this run's own KSM processes are reaped
      // before the next benchmark starts, so it is another process - one
      // that uses KSM now, or one that used it and is still exiting.
      const auto now = host::other_ksm_users();
      return Status::error(
          s.message() + " (KSM refuses max_page_sharing while any KSM page is still mapped, even after run=2 "
              "unmerged every process KSM knows; this run's own KSM processes were reaped before it started. " +
              (now.empty() ? std::string("No other process uses KSM now: one that did was still exiting (its memory "
                                         "being torn down) during those 10 s")
                           : "Other KSM users now: " + host::describe_ksm_users(now)) +
              (t.other_users_.empty() ? std::string() : "; when this benchmark started: " + t.other_users_) +
              ". " + describe_ksm_page_holders() + ")",
          EBUSY);
    }
    t.max_page_sharing_ = *o.max_page_sharing;
  }
  if (Status s = set("pages_to_scan", std::to_string(o.pages_to_scan)); s.failed()) return s;
  if (Status s = set("sleep_millisecs", std::to_string(o.sleep_ms)); s.failed()) return s;
  if (Status s = set("run", "1"); s.failed()) return s;
  if (notes) {
    notes->push_back(fmt::format("ksmd tuned for the run: pages_to_scan={} sleep_millisecs={}{} run=1 (originals "
                                 "restored after{})",
                                 o.pages_to_scan, o.sleep_ms,
                                 o.max_page_sharing ? fmt::format(" max_page_sharing={}", *o.max_page_sharing) : "",
                                 nothing_merged ? ", unmerging through run=2 first" : ""));
    if (!t.exclusive_)
      notes->push_back(fmt::format("KSM was in use on this host (run={}, pages_shared={}{}): the system-wide counters "
                                   "include other processes' merging; merges are judged from this run's processes",
                                   *run, counters->pages_shared,
                                   t.other_users_.empty() ? "" : "; other KSM users: " + t.other_users_));
  }
  return t;
}

Status Tuning::pause() {
  if (pause_) return Status::ok();
  auto g = safety::KnobGuard::set(knob("run"), "0");
  if (!g) return g.status().context("pausing ksmd");
  pause_.emplace(std::move(*g));
  return Status::ok();
}

Status Tuning::resume() {
  if (!pause_) return Status::ok();
  Status s = pause_->restore();
  pause_.reset();
  return s.context("resuming ksmd");
}

Status Tuning::restore() {
  Status first = resume();
  while (!guards_.empty()) {
    Status s = guards_.back().restore();
    if (s.failed() && !first.failed()) first = s;
    guards_.pop_back();
  }
  return first;
}

Tuning::~Tuning() {
  Status s = restore();
  if (s.failed()) fmt::print(stderr, "rmapbench: ksm: {}\n", s.message());
}

Result<int64_t> wait_until(const std::function<Result<bool>()>& done, std::chrono::milliseconds timeout,
                           std::chrono::microseconds poll, const std::string& what,
                           const std::function<std::string()>& state) {
  const int64_t deadline = monotonic_ns() + static_cast<int64_t>(timeout.count()) * 1'000'000;
  for (;;) {
    auto d = done();
    const int64_t now = monotonic_ns();
    if (!d) return d.status();
    if (*d) return now;
    if (safety::interrupted())
      return Status::error(fmt::format("{}: interrupted by {}", what, safety::signal_name(safety::interrupt_signal())));
    if (now > deadline)
      return Status::error(fmt::format("{} did not complete within {:.1f} s: {}", what,
                                       static_cast<double>(timeout.count()) / 1000, state ? state() : ""));
    std::this_thread::sleep_for(poll);
  }
}

// ------------------------------------------------------------ the pages

Result<KsmRegion> KsmRegion::create(long pages, long contents, uint32_t seed) {
  if (pages < 1 || contents < 1) return Status::error("bad KSM region");
  KsmRegion r;
  r.pages_ = pages;
  r.contents_ = contents;
  r.seed_ = seed;
  void* p = mmap(nullptr, r.bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::from_errno(fmt::format("mmap {} pages", pages));
  r.base_ = static_cast<char*>(p);
  madvise(p, r.bytes(), MADV_NOHUGEPAGE);  // KSM merges base pages
  const size_t words = page_size() / sizeof(uint64_t);
  for (long j = 0; j < pages; ++j) {
    auto* w = reinterpret_cast<uint64_t*>(r.base_ + static_cast<size_t>(j) * page_size());
    const uint64_t b = r.base_word(j);
    for (size_t i = 0; i < words; ++i) w[i] = b + i * kStep;
  }
  return r;
}

KsmRegion::KsmRegion(KsmRegion&& o) noexcept : base_(o.base_), pages_(o.pages_), contents_(o.contents_), seed_(o.seed_) {
  o.base_ = nullptr;
}

KsmRegion::~KsmRegion() {
  if (base_) munmap(base_, bytes());
}

size_t KsmRegion::bytes() const { return static_cast<size_t>(pages_) * page_size(); }

uint64_t KsmRegion::base_word(long page) const {
  return mix64((static_cast<uint64_t>(seed_) << 32) ^ static_cast<uint64_t>(page % contents_)) | 1;
}

Status KsmRegion::verify(const std::function<bool(long)>& marked, const std::string& who) const {
  const size_t words = page_size() / sizeof(uint64_t);
  for (long j = 0; j < pages_; ++j) {
    const auto* w = reinterpret_cast<const uint64_t*>(base_ + static_cast<size_t>(j) * page_size());
    const uint64_t b = base_word(j);
    const bool own = marked && marked(j);
    uint64_t diff = own ? (w[0] ^ ~b) : (w[0] ^ b);
    for (size_t i = 1; i < words; ++i) diff |= w[i] ^ (b + i * kStep);
    if (diff == 0) continue;
    for (size_t i = 0; i < words; ++i) {
      const uint64_t want = i == 0 && own ? ~b : b + i * kStep;
      if (w[i] == want) continue;
      const char* what = i == 0 && own                 ? "this process's own write is missing"
                         : i == 0 && !own && w[0] == ~b ? "another process's write leaked in (COW isolation broken)"
                                                        : "content lost or corrupted";
      return Status::error(fmt::format("{}: page {} (content {}) word {} is 0x{:016x}, expected 0x{:016x} ({})", who, j,
                                       j % contents_, i, w[i], want, what));
    }
  }
  return Status::ok();
}

void KsmRegion::mark(long page) {
  *reinterpret_cast<volatile uint64_t*>(base_ + static_cast<size_t>(page) * page_size()) = ~base_word(page);
}

void KsmRegion::corrupt_one_byte_for_test(long page) {
  volatile char* p = base_ + static_cast<size_t>(page) * page_size() + 200;
  *p = static_cast<char>(*p ^ 0x3c);
}

}  // namespace rmapbench::mm::ksm
