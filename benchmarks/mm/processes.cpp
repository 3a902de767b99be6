#include "benchmarks/mm/processes.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

#include "benchmarks/harness/metrics.hpp"
#include "kernels/safety/children.hpp"

namespace rmapbench::mm {

RMAPBENCH_METRIC(kForkUs, {"fork_us", "us", Better::lower, MetricKind::statistical,
                           "fork() alone in the parent (dup_mmap, anon_vma_fork)"});
RMAPBENCH_METRIC(kExitUs, {"exit_us", "us", Better::lower, MetricKind::statistical,
                           "child exit until reaped (exit_mmap, unlink_anon_vmas)"});

void report_fork_phases(benchmark::State& state, double fork_ns_sum, double exit_ns_sum) {
  const auto per_iteration = benchmark::Counter::kAvgIterations;
  report_metric(state, kForkUs, fork_ns_sum / 1e3, per_iteration);
  report_metric(state, kExitUs, exit_ns_sum / 1e3, per_iteration);
}

namespace {

// A write to a pipe whose reader died (an agent that exited) is an EPIPE
// error for the caller, never a SIGPIPE that ends the whole process: the
// signal is blocked around the write, and one it raised is consumed.
bool write_all(int fd, const void* buf, size_t len) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  const char* p = static_cast<const char*>(buf);
  bool ok = true;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  if (!ok && errno == EPIPE && !was_pending) {
    const int saved = errno;
    const timespec zero{0, 0};
    sigtimedwait(&pipe_only, nullptr, &zero);
    errno = saved;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return ok;
}

// Returns bytes read; short only at EOF.
size_t read_all(int fd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// `oom_kills_before`: vmstat oom_kill before the child started, so a
// SIGKILL can be blamed on the OOM killer when the count grew.
Status reap(pid_t pid, const std::string& who, long long oom_kills_before = -1) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Status::from_errno("waitpid " + who);
  }
  return safety::classify_wait_status(pid, status, oom_kills_before).as_status(who);
}

}  // namespace

Status fork_failure(int err, const std::string& what) {
  std::string hint;
  if (err == EAGAIN) {
    rlimit rl{};
    getrlimit(RLIMIT_NPROC, &rl);
    std::string limit = rl.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(rl.rlim_cur);
    hint = fmt::format(" (process limit reached: RLIMIT_NPROC={}, see also kernel.threads-max and pids cgroup; "
                       "raise 'ulimit -u' or sweep fewer processes)", limit);
  } else if (err == ENOMEM) {
    hint = " (out of memory: the layout is too large for MemAvailable or vm.max_map_count)";
  }
  return Status::error(fmt::format("{}: fork failed: {}{}", what, std::strerror(err), hint), err);
}

// ---------------------------------------------------------------- ForkTimer

Result<ForkTimer> ForkTimer::create() {
  void* page = mmap(nullptr, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return Status::from_errno("mmap shared stamp page");
  return ForkTimer(static_cast<volatile int64_t*>(page));
}

ForkTimer::ForkTimer(ForkTimer&& o) noexcept : child_exit_stamp_(o.child_exit_stamp_) { o.child_exit_stamp_ = nullptr; }

ForkTimer::~ForkTimer() {
  if (child_exit_stamp_) munmap(const_cast<int64_t*>(child_exit_stamp_), sizeof(int64_t));
}

Result<ForkTimes> ForkTimer::fork_exit_wait(ExitStamp stamp) {
  const TimedFork r = timed_fork_exit_wait(stamp == ExitStamp::record ? child_exit_stamp_ : nullptr);
  switch (r.outcome) {
    case TimedFork::Outcome::ok: break;
    case TimedFork::Outcome::fork_failed: return fork_failure(r.fork_errno, "fork storm");
    case TimedFork::Outcome::child_failed:
      return safety::classify_wait_status(r.pid, r.wait_status).as_status("forked child");
  }
  return r.times;
}

// --------------------------------------------------------------- ChildGroup

namespace {

struct Pipe {
  int read = -1, write = -1;
  ~Pipe() {
    close_fd(read);
    close_fd(write);
  }
  Status open() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return Status::from_errno("pipe");
    read = fds[0];
    write = fds[1];
    return Status::ok();
  }
  int take_read() { return std::exchange(read, -1); }
  int take_write() { return std::exchange(write, -1); }
};

}  // namespace

Result<ChildGroup> ChildGroup::spawn(long count, Body body, Body check) {
  // ready: children -> parent, one byte after `body`; go: parent -> children,
  // one byte each starts `check`; checked: one byte after it; exit: EOF ends
  // them; report: their messages.
  Pipe ready, go, checked, exit, report;
  for (Pipe* p : {&ready, &go, &checked, &exit, &report})
    if (Status s = p->open(); s.failed()) return s;
  ChildGroup group;
  const pid_t parent = getpid();
  group.oom_kills_before_ = safety::oom_kill_count().value_or(-1);
  group.pids_.reserve(static_cast<size_t>(count));
  Status failure;
  for (long i = 0; i < count; ++i) {
    pid_t pid = fork();
    if (pid < 0) {
      failure = fork_failure(errno, fmt::format("spawning sharer {} of {}", i + 1, count));
      break;
    }
    if (pid == 0) {
      safety::become_child_of_run(parent);
      auto say = [&](const Status& s) {
        std::string msg = fmt::format("sharer {} (pid {}): {}\n", i, getpid(), s.message());
        if (msg.size() > 500) msg.resize(500);  // one atomic pipe write
        write_all(report.write, msg.data(), msg.size());
      };
      auto signal_parent = [](int fd, bool ok) {
        char c = ok ? 'R' : 'F';
        write_all(fd, &c, 1);
      };
      Status s = body ? body(i) : Status::ok();
      if (s.failed()) say(s);
      signal_parent(ready.write, !s.failed());
      if (s.failed()) _exit(1);
      char c;
      ssize_t n;
      while ((n = read(go.read, &c, 1)) < 0 && errno == EINTR) {
      }
      bool ok = true;
      if (n == 1) {
        s = check ? check(i) : Status::ok();
        if (s.failed()) say(s);
        ok = !s.failed();
        signal_parent(checked.write, ok);
        // One byte each, not EOF: later forks elsewhere in the run may
        // hold copies of the write end.
        while (read(exit.read, &c, 1) < 0 && errno == EINTR) {
        }
      }
      _exit(ok ? 0 : 1);
    }
    group.pids_.push_back(pid);
  }
  group.check_fd_ = go.take_write();
  group.checked_fd_ = checked.take_read();
  group.exit_fd_ = exit.take_write();
  group.report_fd_ = report.take_read();
  close_fd(ready.write);
  close_fd(checked.write);
  close_fd(report.write);
  // Wait until each spawned child finished its body.
  size_t ok = 0, failed = 0;
  char c;
  while (ok + failed < group.pids_.size() && read_all(ready.read, &c, 1) == 1) (c == 'R' ? ok : failed)++;
  if (failure.failed()) return failure;
  if (failed > 0 || ok < group.pids_.size())
    return group.collect_messages(Status::error(fmt::format("{} of {} sharers failed to set up", group.pids_.size() - ok,
                                                            group.pids_.size())));
  return group;
}

ChildGroup::ChildGroup(ChildGroup&& o) noexcept
    : pids_(std::move(o.pids_)),
      check_fd_(std::exchange(o.check_fd_, -1)),
      checked_fd_(std::exchange(o.checked_fd_, -1)),
      exit_fd_(std::exchange(o.exit_fd_, -1)),
      report_fd_(std::exchange(o.report_fd_, -1)),
      checked_(o.checked_),
      oom_kills_before_(o.oom_kills_before_) {
  o.pids_.clear();
}

ChildGroup::~ChildGroup() {
  kill_all();
  for (int* fd : {&check_fd_, &checked_fd_, &exit_fd_, &report_fd_}) close_fd(*fd);
}

void ChildGroup::kill_all() {
  for (pid_t pid : pids_) kill(pid, SIGKILL);
  for (pid_t pid : pids_)
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  pids_.clear();
}

Status ChildGroup::collect_messages(Status first) {
  if (!first.failed()) return first;
  // Children write their messages before signalling, so they are there now.
  std::string messages;
  char buf[4096];
  int flags = fcntl(report_fd_, F_GETFL);
  fcntl(report_fd_, F_SETFL, flags | O_NONBLOCK);
  ssize_t n;
  while ((n = read(report_fd_, buf, sizeof buf)) > 0) messages.append(buf, static_cast<size_t>(n));
  fcntl(report_fd_, F_SETFL, flags);
  while (!messages.empty() && messages.back() == '\n') messages.pop_back();
  return messages.empty() ? first : Status::error(messages);
}

Status ChildGroup::check() {
  checked_ = true;
  const std::string go(pids_.size(), 'c');
  if (!write_all(check_fd_, go.data(), go.size())) return Status::from_errno("starting the sharers' checks");
  size_t ok = 0, failed = 0;
  char c;
  while (ok + failed < pids_.size() && read_all(checked_fd_, &c, 1) == 1) (c == 'R' ? ok : failed)++;
  if (failed > 0 || ok < pids_.size())
    return collect_messages(Status::error(fmt::format("{} of {} sharers failed their check", pids_.size() - ok, pids_.size())));
  return Status::ok();
}

Status ChildGroup::release() {
  Status first = checked_ ? Status::ok() : check();
  const std::string go(pids_.size(), 'x');
  if (!write_all(exit_fd_, go.data(), go.size()) && !first.failed()) first = Status::from_errno("releasing the sharers");
  for (pid_t pid : pids_) {
    Status s = reap(pid, "sharer", oom_kills_before_);
    if (s.failed() && !first.failed()) first = s;
  }
  pids_.clear();
  return collect_messages(first);
}

// -------------------------------------------------------------------- Agent

namespace {
constexpr int kAgentStop = -1;  // request ops of workloads are >= 0
}  // namespace

AgentReply reply_ok(std::initializer_list<double> values) {
  AgentReply r;
  size_t i = 0;
  for (double v : values)
    if (i < std::size(r.values)) r.values[i++] = v;
  return r;
}

AgentReply reply_error(const std::string& message) {
  AgentReply r;
  r.failed = 1;
  std::snprintf(r.message, sizeof r.message, "%s", message.c_str());
  return r;
}

AgentReply reply_status(const Status& s) {
  if (!s.failed()) return reply_ok();
  AgentReply r = reply_error(s.message());
  r.failed = 1 + static_cast<int>(s.kind());
  return r;
}

namespace {
Status status_of(const AgentReply& r) {
  switch (r.failed - 1) {
    case static_cast<int>(Status::Kind::skip): return Status::skip(r.message);
    case static_cast<int>(Status::Kind::declined): return Status::declined(r.message);
  }
  return Status::error(r.message);
}
}  // namespace

Result<Agent> Agent::spawn(int depth, Setup setup, Handler handler) {
  if (depth < 1) return Status::error("agent depth must be >= 1");
  int request_pipe[2], reply_pipe[2];
  if (pipe2(request_pipe, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  if (pipe2(reply_pipe, O_CLOEXEC) != 0) {
    close(request_pipe[0]);
    close(request_pipe[1]);
    return Status::from_errno("pipe");
  }
  const pid_t top = fork();
  if (top < 0) {
    for (int fd : {request_pipe[0], request_pipe[1], reply_pipe[0], reply_pipe[1]}) close(fd);
    return fork_failure(errno, "spawning agent");
  }
  if (top == 0) {
    close(request_pipe[1]);
    close(reply_pipe[0]);
    pid_t parent = getppid();
    safety::become_child_of_run(parent);
    std::vector<pid_t> chain = {getpid()};
    // Descend: every level keeps its copy of the mappings and waits for the
    // level below, so the chain is the fork-of-fork hierarchy.
    for (int level = 1; level < depth; ++level) {
      parent = getpid();
      pid_t next = fork();
      if (next < 0) {
        AgentReply r = reply_error(fork_failure(errno, fmt::format("agent chain level {} of {}", level + 1, depth)).message());
        write_all(reply_pipe[1], &r, sizeof r);
        _exit(1);
      }
      if (next > 0) {
        close(request_pipe[0]);
        close(reply_pipe[1]);
        int status = 0;
        while (waitpid(next, &status, 0) < 0 && errno == EINTR) {
        }
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
      }
      safety::become_child_of_run(parent);
      chain.push_back(getpid());
    }
    Status s = setup ? setup() : Status::ok();
    AgentReply ready = reply_status(s);
    write_all(reply_pipe[1], &ready, sizeof ready);
    if (s.failed()) _exit(1);
    const int levels = static_cast<int>(chain.size());
    write_all(reply_pipe[1], &levels, sizeof levels);
    write_all(reply_pipe[1], chain.data(), chain.size() * sizeof(pid_t));
    AgentRequest req;
    while (read_all(request_pipe[0], &req, sizeof req) == sizeof req && req.op != kAgentStop) {
      AgentReply r = handler(req);
      if (!write_all(reply_pipe[1], &r, sizeof r)) break;
    }
    _exit(0);
  }
  close(request_pipe[0]);
  close(reply_pipe[1]);
  Agent agent;
  agent.pid_ = top;
  agent.request_fd_ = request_pipe[1];
  agent.reply_fd_ = reply_pipe[0];
  AgentReply ready;
  if (read_all(agent.reply_fd_, &ready, sizeof ready) != sizeof ready)
    return Status::error(fmt::format("agent at depth {} died during setup", depth));
  if (ready.failed) return status_of(ready);
  int levels = 0;
  if (read_all(agent.reply_fd_, &levels, sizeof levels) != sizeof levels || levels != depth)
    return Status::error(fmt::format("agent at depth {} did not name its chain", depth));
  agent.chain_.resize(static_cast<size_t>(levels));
  const size_t bytes = agent.chain_.size() * sizeof(pid_t);
  if (read_all(agent.reply_fd_, agent.chain_.data(), bytes) != bytes)
    return Status::error(fmt::format("agent at depth {} did not name its chain", depth));
  return agent;
}

Agent::Agent(Agent&& o) noexcept
    : pid_(o.pid_), chain_(std::move(o.chain_)), request_fd_(o.request_fd_), reply_fd_(o.reply_fd_) {
  o.pid_ = -1;
  o.request_fd_ = o.reply_fd_ = -1;
}

Agent::~Agent() {
  // An explicit stop, not EOF: processes forked since may hold the write end.
  if (request_fd_ >= 0) {
    AgentRequest stop{kAgentStop, 0};
    write_all(request_fd_, &stop, sizeof stop);
  }
  close_fd(request_fd_);
  close_fd(reply_fd_);
  if (pid_ > 0) {
    int status;
    // A chain normally unwinds at once; a stuck one is killed (PDEATHSIG
    // takes the levels below with it).
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      usleep(1000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
}

Result<AgentReply> Agent::call(const AgentRequest& request) {
  if (Status s = send(request); s.failed()) return s;
  return receive();
}

Status Agent::send(const AgentRequest& request) {
  if (!write_all(request_fd_, &request, sizeof request)) return Status::from_errno("agent request");
  return Status::ok();
}

Result<AgentReply> Agent::receive() {
  AgentReply r;
  if (read_all(reply_fd_, &r, sizeof r) != sizeof r) {
    int status = 0;
    const pid_t pid = pid_;
    std::string how = "closed its pipe";
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      how = safety::classify_wait_status(pid_, status).describe();
      pid_ = -1;
    }
    return Status::error(fmt::format("agent (pid {}) died: {}", pid, how));
  }
  if (r.failed) return status_of(r);
  return r;
}

bool test_corruption_requested(const std::string& workload) {
  const char* v = std::getenv("RMAPBENCH_TEST_CORRUPT");
  return v && workload == v;
}

}  // namespace rmapbench::mm
