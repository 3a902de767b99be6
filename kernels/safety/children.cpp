#include "kernels/safety/children.hpp"
#include "kernels/safety/signal_safe_format.hpp"
#include "kernels/safety/signals.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fmt/core.h>

namespace rmapbench::safety {

namespace {

// ---------------------------------------------------------------- state

// The pid that called fork(), recorded in the forking thread just before
// every fork() (the child inherits the forking thread's copy).
thread_local pid_t t_pid_before_fork = 0;
void record_pid_before_fork() { t_pid_before_fork = getpid(); }
[[maybe_unused]] const int g_atfork_registered = pthread_atfork(record_pid_before_fork, nullptr, nullptr);

constexpr int kMaxCloseFds = 8;
std::atomic<int> g_close_fds[kMaxCloseFds] = {-1, -1, -1, -1, -1, -1, -1, -1};

std::atomic<bool> g_reaper_active{false};
std::atomic<bool> g_reaper_leads_group{false};

// ---------------------------------------------------------------- async-signal-safe /proc scan


bool parse_long(const char*& p, const char* end, long long& out) {
  bool neg = false;
  if (p < end && *p == '-') {
    neg = true;
    ++p;
  }
  if (p >= end || *p < '0' || *p > '9') return false;
  long long v = 0;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  out = neg ? -v : v;
  return true;
}

struct StatFields {
  char state = '?';
  pid_t ppid = 0;
  pid_t pgrp = 0;
  long long start_time = 0;
};

// Reads /proc/PID/stat with open/read/close only.
bool read_stat_fields(pid_t pid, StatFields& f, bool want_start_time) {
  char path[48] = "/proc/";
  char* e = put_uint(path + 6, static_cast<unsigned long long>(pid));
  std::memcpy(e, "/stat", 6);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return false;
  const char* end = buf + n;
  const char* rp = nullptr;  // the last ')' ends comm, which may contain anything
  for (const char* q = buf; q < end; ++q)
    if (*q == ')') rp = q;
  if (!rp || rp + 2 >= end) return false;
  const char* p = rp + 2;
  f.state = *p++;
  long long v = 0;
  if (p >= end || *p++ != ' ' || !parse_long(p, end, v)) return false;
  f.ppid = static_cast<pid_t>(v);
  if (p >= end || *p++ != ' ' || !parse_long(p, end, v)) return false;
  f.pgrp = static_cast<pid_t>(v);
  if (!want_start_time) return true;
  // Fields after pgrp: session(6) tty_nr tpgid flags minflt cminflt majflt
  // cmajflt utime stime cutime cstime priority nice num_threads itrealvalue
  // starttime(22): skip 16 numbers.
  for (int i = 0; i < 16; ++i) {
    if (p >= end || *p++ != ' ' || !parse_long(p, end, v)) return false;
  }
  if (p >= end || *p++ != ' ' || !parse_long(p, end, v)) return false;
  f.start_time = v;
  return true;
}

using ScanFn = void (*)(pid_t pid, const StatFields& f, void* ctx);

// Calls fn for every process in /proc. Async-signal-safe.
bool scan_proc(ScanFn fn, void* ctx) {
  int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return false;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, dfd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      unsigned short reclen;
      std::memcpy(&reclen, buf + off + 16, sizeof reclen);  // struct linux_dirent64
      const char* name = buf + off + 19;
      off += reclen;
      if (*name < '1' || *name > '9') continue;
      long long pid = 0;
      bool numeric = true;
      for (const char* q = name; *q; ++q) {
        if (*q < '0' || *q > '9') {
          numeric = false;
          break;
        }
        pid = pid * 10 + (*q - '0');
      }
      if (!numeric) continue;
      StatFields f;
      if (!read_stat_fields(static_cast<pid_t>(pid), f, false)) continue;  // gone meanwhile
      fn(static_cast<pid_t>(pid), f, ctx);
    }
  }
  close(dfd);
  return true;
}

struct KillCtx {
  pid_t self;
  bool by_group;
  int sig;
  int count;
};

bool is_ours(pid_t pid, const StatFields& f, pid_t self, bool by_group) {
  if (pid == self) return false;
  return f.ppid == self || (by_group && f.pgrp == self);
}

void kill_one(pid_t pid, const StatFields& f, void* vctx) {
  auto* c = static_cast<KillCtx*>(vctx);
  if (f.state == 'Z' || !is_ours(pid, f, c->self, c->by_group)) return;
  if (kill(pid, c->sig) == 0) ++c->count;
}

struct Survivor {
  pid_t pid;
  pid_t ppid;
  char state;
};

struct CollectCtx {
  pid_t self;
  bool by_group;
  std::vector<Survivor>* out;
};

void collect_one(pid_t pid, const StatFields& f, void* vctx) {
  auto* c = static_cast<CollectCtx*>(vctx);
  if (!is_ours(pid, f, c->self, c->by_group)) return;
  // A zombie someone else will reap is dead already; ours we reap.
  if (f.state == 'Z' && f.ppid != c->self) return;
  c->out->push_back({pid, f.ppid, f.state});
}

void sleep_ms(long ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool in_terminal_foreground_group() {
  pid_t pg = getpgrp();
  for (int fd = 0; fd <= 2; ++fd) {
    if (!isatty(fd)) continue;
    pid_t fg = tcgetpgrp(fd);
    if (fg == pg) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- children

void close_in_children(int fd) {
  if (fd < 0) return;
  for (auto& slot : g_close_fds) {
    int expected = -1;
    if (slot.compare_exchange_strong(expected, fd)) return;
  }
}

void forget_close_in_children(int fd) {
  if (fd < 0) return;
  for (auto& slot : g_close_fds) {
    int expected = fd;
    slot.compare_exchange_strong(expected, -1);
  }
}

void become_child_of_run(pid_t expected_parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died between fork() and prctl(): then nobody would
  // ever send us the death signal.
  if (expected_parent > 0 && getppid() != expected_parent) _exit(kOrphanedChildExitCode);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction cur;
    if (sigaction(sig, nullptr, &cur) != 0) continue;
    bool plain = !(cur.sa_flags & SA_SIGINFO);
    if (plain && (cur.sa_handler == SIG_IGN || cur.sa_handler == SIG_DFL)) continue;  // keep nohup's SIG_IGN
    struct sigaction dfl;
    std::memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, nullptr);
  }
  // Forgotten once closed: the number is free in this child, and a pipe it
  // opens next may get it; its own children must not close that.
  for (auto& slot : g_close_fds) {
    int fd = slot.exchange(-1);
    if (fd >= 0) close(fd);
  }
}

void become_child_of_run() { become_child_of_run(t_pid_before_fork); }

Result<pid_t> fork_child_of_run() {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return Status::from_errno("fork");
  if (pid == 0) become_child_of_run(parent);
  return pid;
}

int kill_run_children(int sig) {
  int saved = errno;
  KillCtx c{getpid(), g_reaper_active.load() && g_reaper_leads_group.load(), sig, 0};
  // Two passes catch a child forked while the first pass ran.
  scan_proc(kill_one, &c);
  scan_proc(kill_one, &c);
  errno = saved;
  return c.count;
}

// ---------------------------------------------------------------- ProcessGroupReaper

Result<ProcessGroupReaper> ProcessGroupReaper::create() { return create(Options{}); }

Result<ProcessGroupReaper> ProcessGroupReaper::create(Options options) {
  bool expected = false;
  if (!g_reaper_active.compare_exchange_strong(expected, true))
    return Status::error("a ProcessGroupReaper is already active in this process");
  ProcessGroupReaper r;
  r.active_ = true;
  pid_t self = getpid();
  if (getpgrp() == self) {
    r.leads_group_ = true;
    r.note_ = fmt::format("leads its process group {}", self);
  } else if (!options.own_group) {
    r.note_ = fmt::format("stays in process group {} (children found by parentage)", getpgrp());
  } else if (in_terminal_foreground_group()) {
    // A new group would no longer be the terminal's foreground group: Ctrl-C
    // would stop reaching us. Stay, and find children by parentage.
    r.note_ = fmt::format("stays in the terminal's foreground process group {} (children found by parentage)",
                          getpgrp());
  } else if (setpgid(0, 0) == 0) {
    r.leads_group_ = true;
    r.note_ = fmt::format("moved to its own process group {}", self);
  } else {
    r.note_ = fmt::format("stays in process group {}: setpgid: {}", getpgrp(), std::strerror(errno));
  }
  r.pgid_ = getpgrp();
  g_reaper_leads_group.store(r.leads_group_);
  if (options.subreaper) {
    int prev = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &prev) == 0 && prctl(PR_SET_CHILD_SUBREAPER, 1) == 0) {
      r.restore_subreaper_ = true;
      r.previous_subreaper_ = prev;
    }
  }
  return r;
}

ProcessGroupReaper::ProcessGroupReaper(ProcessGroupReaper&& o) noexcept
    : active_(o.active_),
      leads_group_(o.leads_group_),
      restore_subreaper_(o.restore_subreaper_),
      previous_subreaper_(o.previous_subreaper_),
      pgid_(o.pgid_),
      note_(std::move(o.note_)) {
  o.active_ = false;
  o.restore_subreaper_ = false;
}

ProcessGroupReaper::~ProcessGroupReaper() {
  if (!active_) return;
  Status st = shutdown();
  if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
}

Status ProcessGroupReaper::shutdown(std::chrono::milliseconds grace) {
  if (!active_) return Status::ok();
  pid_t self = getpid();
  bool by_group = leads_group_;
  auto deadline = std::chrono::steady_clock::now() + grace;
  std::vector<Survivor> left;
  for (;;) {
    left.clear();
    CollectCtx c{self, by_group, &left};
    scan_proc(collect_one, &c);
    for (const auto& s : left) {
      if (s.state != 'Z') kill(s.pid, SIGKILL);
      if (s.ppid == self) {
        int status;
        waitpid(s.pid, &status, WNOHANG);
      }
    }
    if (left.empty() || std::chrono::steady_clock::now() >= deadline) break;
    sleep_ms(2);
  }
  // Reap whatever died after the last scan.
  int status;
  for (const auto& s : left)
    if (s.ppid == self) waitpid(s.pid, &status, WNOHANG);
  if (restore_subreaper_) prctl(PR_SET_CHILD_SUBREAPER, previous_subreaper_);
  restore_subreaper_ = false;
  active_ = false;
  g_reaper_active.store(false);
  g_reaper_leads_group.store(false);
  if (left.empty()) return Status::ok();
  std::string names;
  for (const auto& s : left) {
    if (!names.empty()) names += ", ";
    names += fmt::format("pid {} (state {})", s.pid, s.state);
  }
  return Status::error(fmt::format("{} process(es) of the run did not die within {} ms of SIGKILL: {} "
                                   "(state D: stuck in the kernel; see /proc/PID/stack)",
                                   left.size(), grace.count(), names));
}

// ---------------------------------------------------------------- ChildExit

bool ChildExit::exited() const { return WIFEXITED(status); }
int ChildExit::exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
bool ChildExit::signaled() const { return WIFSIGNALED(status); }
int ChildExit::term_signal() const { return WIFSIGNALED(status) ? WTERMSIG(status) : 0; }
bool ChildExit::core_dumped() const { return WIFSIGNALED(status) && WCOREDUMP(status); }

std::string ChildExit::describe() const {
  if (timed_out) return fmt::format("timed out after {} ms and was killed (SIGKILL)", timeout.count());
  if (exited()) {
    int code = exit_code();
    if (code == 0) return "exited normally";
    if (code == kOrphanedChildExitCode)
      return fmt::format("exited with status {} (its parent died before it could start)", code);
    return fmt::format("exited with status {}", code);
  }
  if (signaled()) {
    int sig = term_signal();
    std::string s = "killed by " + signal_name(sig);
    if (sig == SIGKILL && interrupt_signal() != 0 && oom_kills_meanwhile <= 0) {
      // Our own handler kills the run's children on SIGINT/SIGTERM/SIGHUP.
      s += " by rmapbench: the run was interrupted by " + signal_name(interrupt_signal());
    } else if (sig == SIGKILL) {
      if (oom_kills_meanwhile > 0)
        s += fmt::format(": the OOM killer killed {} process{} meanwhile (see dmesg)", oom_kills_meanwhile,
                         oom_kills_meanwhile == 1 ? "" : "es");
      else if (oom_kills_meanwhile == 0)
        s += " (not by the OOM killer: vmstat oom_kill unchanged)";
      else
        s += " (OOM killer?)";
    }
    if (core_dumped()) s += " (core dumped)";
    return s;
  }
  return fmt::format("ended with wait status {:#x}", status);
}

Status ChildExit::as_status(const std::string& who) const {
  if (success()) return Status::ok();
  return Status::error(fmt::format("{} (pid {}) {}", who, pid, describe()));
}

ChildExit classify_wait_status(pid_t pid, int status, long long oom_kills_before) {
  ChildExit e;
  e.pid = pid;
  e.status = status;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && oom_kills_before >= 0) {
    if (auto now = oom_kill_count()) e.oom_kills_meanwhile = *now - oom_kills_before;
  }
  return e;
}

std::optional<long long> oom_kill_count() {
  std::ifstream in("/proc/vmstat");
  std::string key;
  long long value;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return std::nullopt;
}

namespace {

// Waits for pid until deadline. Returns 1 reaped (status set), 0 deadline, -1 error (errno).
int wait_deadline(pid_t pid, int pidfd, std::chrono::steady_clock::time_point deadline, int& status) {
  long backoff_ms = 1;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return 1;
    if (r < 0 && errno != EINTR) return -1;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return 0;
    long step = static_cast<long>(std::min<long long>(left.count(), 1000));
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(step) + 1);  // EINTR: loop re-checks
    } else {
      sleep_ms(std::min(step, backoff_ms));
      backoff_ms = std::min(backoff_ms * 2, 20L);
    }
  }
}

}  // namespace

Result<ChildExit> wait_until(pid_t pid, std::chrono::steady_clock::time_point deadline,
                             std::optional<long long> oom_kills_before) {
  int pidfd = -1;
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#endif
  auto start = std::chrono::steady_clock::now();
  int status = 0;
  int r = wait_deadline(pid, pidfd, deadline, status);
  bool timed_out = false;
  if (r == 0) {
    kill(pid, SIGKILL);
    r = wait_deadline(pid, pidfd, std::chrono::steady_clock::now() + std::chrono::seconds(5), status);
    if (r == 0) {
      if (pidfd >= 0) close(pidfd);
      return Status::error(fmt::format("pid {} did not die within 5 s of SIGKILL after its timeout "
                                       "(stuck in the kernel? see /proc/{}/stack)",
                                       pid, pid));
    }
    timed_out = r == 1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
  int err = errno;
  if (pidfd >= 0) close(pidfd);
  if (r < 0) return Status::from_errno(fmt::format("waitpid {}", pid), err);
  ChildExit e = classify_wait_status(pid, status, oom_kills_before.value_or(-1));
  e.timed_out = timed_out;
  if (timed_out)
    e.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - start);
  return e;
}

Result<ChildExit> wait_with_timeout(pid_t pid, std::chrono::milliseconds timeout,
                                    std::optional<long long> oom_kills_before) {
  auto r = wait_until(pid, std::chrono::steady_clock::now() + timeout, oom_kills_before);
  if (r && r->timed_out) r->timeout = timeout;
  return r;
}

// ---------------------------------------------------------------- Watchdog

Watchdog::Watchdog(std::chrono::milliseconds timeout, std::function<void()> on_expire)
    : timeout_(timeout), on_expire_(std::move(on_expire)) {
  thread_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, timeout_, [this] { return cancelled_; })) return;
    fired_.store(true);
    lock.unlock();
    if (on_expire_)
      on_expire_();
    else
      kill_run_children(SIGKILL);
  });
}

void Watchdog::cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

Watchdog::~Watchdog() {
  cancel();
  if (thread_.joinable()) thread_.join();
}

// ---------------------------------------------------------------- identity

std::optional<long long> process_start_time(pid_t pid) {
  StatFields f;
  if (pid <= 0 || !read_stat_fields(pid, f, true)) return std::nullopt;
  return f.start_time;
}

bool process_alive(pid_t pid, long long start_time) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  StatFields f;
  if (!read_stat_fields(pid, f, true)) return true;  // exists, /proc hidden from us: assume it is the one
  if (f.state == 'Z' || f.state == 'X') return false;
  return start_time == 0 || f.start_time == start_time;
}

std::string current_boot_id() {
  std::string s = read_small_file("/proc/sys/kernel/random/boot_id");
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string signal_name(int sig) {
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGKILL: return "SIGKILL";
    case SIGUSR1: return "SIGUSR1";
    case SIGSEGV: return "SIGSEGV";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGTERM: return "SIGTERM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGSTOP: return "SIGSTOP";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGSYS: return "SIGSYS";
    default: return fmt::format("signal {}", sig);
  }
}

}  // namespace rmapbench::safety
