// rmapbench-forker: the lean process fork_storm times its forks from.
//
// A static program that holds nothing but the workload's layout (V faulted
// private anonymous one-page VMAs, benchmarks/mm/anon_layout_core.hpp), so a
// fork's fixed cost is the kernel's and not that of the benchmark process's
// own ~80 mappings and a dozen shared libraries. rmapbench embeds it and
// starts it (benchmarks/mm/lean_forker.*); it serves requests over a
// SOCK_SEQPACKET socket (benchmarks/forker/protocol.hpp).
//
//   rmapbench-forker --serve <socket fd> <vmas>
//   rmapbench-forker --bare <vmas> <forks> [rounds]   a bare fork/_exit/waitpid loop, us per fork on stdout
//
// Both pin themselves (and so every child) to the CPU they start on.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "benchmarks/forker/protocol.hpp"
#include "benchmarks/mm/anon_layout_core.hpp"
#include "benchmarks/mm/fork_timing.hpp"

namespace rmapbench::forker {
namespace {

using mm::layout_core::Error;
using mm::layout_core::Geometry;

constexpr uint32_t kLayoutSeed = 1;

struct State {
  int socket = -1;
  Geometry layout;
  volatile int64_t* exit_stamp = nullptr;  // a MAP_SHARED page the stamping child writes
};

bool parse_long(const char* s, long* out) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0') return false;
  *out = v;
  return true;
}

int64_t system_ns() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto ns = [](const timeval& tv) { return static_cast<int64_t>(tv.tv_sec) * 1'000'000'000 + tv.tv_usec * 1000; };
  return ns(self.ru_stime) + ns(children.ru_stime);
}

bool send_message(int socket, const Message& m) {
  char buf[kMaxMessageBytes];
  const size_t len = format(m, buf, sizeof buf);
  if (len == 0) return false;
  ssize_t n;
  while ((n = send(socket, buf, len, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(len);
}

bool send_error(int socket, long long kind, int err, const char* text, int pid = -1, int wait_status = 0) {
  return send_message(socket, make("error", {kind, err, pid, wait_status}, text));
}

// One request and the fds passed with it (closed by the caller). Returns
// false at EOF or on a broken socket: the benchmark is gone.
bool receive(int socket, Message* m, int* fds, int* fd_count, bool* malformed, char* why, size_t why_size) {
  char buf[kMaxMessageBytes];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(socket, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return false;
  *fd_count = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const int count = static_cast<int>((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (int i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      if (*fd_count < kMaxPassedFds)
        fds[(*fd_count)++] = fd;
      else
        close(fd);
    }
  }
  *malformed = false;
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    *malformed = true;
    std::snprintf(why, why_size, "request truncated (more than %zu bytes or %d fds)", kMaxMessageBytes, kMaxPassedFds);
    return true;
  }
  const ParseError e = parse(buf, static_cast<size_t>(n), m);
  if (e != ParseError::none) {
    *malformed = true;
    std::snprintf(why, why_size, "malformed request: %s", describe(e));
  }
  return true;
}

bool read_counter(int fd, uint64_t* value) {
  ssize_t n;
  while ((n = read(fd, value, sizeof *value)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(sizeof *value);
}

// fork <forks> <stamp>: the timed loop, with the passed perf counters read
// right around it so they count nothing but the forks.
bool serve_fork(State& s, const Message& m, const int* fds, int fd_count) {
  const long long forks = m.numbers[0];
  volatile int64_t* stamp = m.numbers[1] ? s.exit_stamp : nullptr;
  uint64_t before[kMaxPassedFds] = {}, after[kMaxPassedFds] = {};
  bool readable[kMaxPassedFds] = {};
  for (int i = 0; i < fd_count; ++i) readable[i] = read_counter(fds[i], &before[i]);
  const int64_t sys_before = system_ns();
  mm::ForkTimes sums;
  for (long long i = 0; i < forks; ++i) {
    const mm::TimedFork t = mm::timed_fork_exit_wait(stamp);
    if (t.outcome == mm::TimedFork::Outcome::fork_failed)
      return send_error(s.socket, kErrorForkFailed, t.fork_errno, "fork failed");
    if (t.outcome == mm::TimedFork::Outcome::child_failed)
      return send_error(s.socket, kErrorChildFailed, 0, "forked child", t.pid, t.wait_status);
    sums.total_ns += t.times.total_ns;
    sums.fork_ns += t.times.fork_ns;
    sums.exit_ns += t.times.exit_ns;
  }
  const int64_t sys_ns = system_ns() - sys_before;
  for (int i = 0; i < fd_count; ++i) readable[i] = readable[i] && read_counter(fds[i], &after[i]);
  Message reply = make("forked", {forks, sums.total_ns, sums.fork_ns, sums.exit_ns, sys_ns});
  for (int i = 0; i < fd_count; ++i)
    reply.numbers[reply.count++] = readable[i] ? static_cast<long long>(after[i] - before[i]) : -1;
  return send_message(s.socket, reply);
}

// What a developer would write by hand, timed from fork() to waitpid()'s
// return: the reference the self-check holds fork_storm against. With
// `pause_us`, the loop sleeps that long before each fork (untimed), as
// fork_storm's one fork per request leaves the CPU idle between forks:
// back to back, each fork also pays for the work the previous exit left to
// RCU callbacks (the freeing of its VMAs and task), which an idle gap lets
// finish outside the timed window.
int64_t bare_loop_ns(long long forks, long long pause_us, int* fork_errno) {
  int64_t total = 0;
  for (long long i = 0; i < forks; ++i) {
    if (pause_us > 0) {
      timespec pause{0, static_cast<long>(pause_us * 1000)};
      while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {
      }
    }
    const int64_t start = mm::monotonic_ns();
    const pid_t pid = fork();
    if (pid == 0) _exit(0);
    if (pid < 0) {
      *fork_errno = errno;
      return -1;
    }
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    total += mm::monotonic_ns() - start;
  }
  return total;
}

bool serve_bare(State& s, const Message& m) {
  const int64_t sys_before = system_ns();
  int err = 0;
  const long long pause_us = m.numbers[1];
  if (pause_us < 0 || pause_us >= 1'000'000) return send_error(s.socket, kErrorOther, EINVAL, "bare: pause_us out of range");
  const int64_t total = bare_loop_ns(m.numbers[0], pause_us, &err);
  if (total < 0) return send_error(s.socket, kErrorForkFailed, err, "fork failed");
  return send_message(s.socket, make("forked", {m.numbers[0], total, 0, 0, system_ns() - sys_before}));
}

// The oracle: a child sees every byte of the parent's data, and its writes
// (a COW fault per page) stay private.
bool serve_check(State& s, const Message& m) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return send_error(s.socket, kErrorOther, errno, "oracle pipe");
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return send_error(s.socket, kErrorForkFailed, err, "fork failed");
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    Error e;
    char text[sizeof e.message + 128];
    int failed = 0;
    if (!mm::layout_core::verify_range(s.layout, kLayoutSeed, 0, s.layout.vmas, &e)) {
      std::snprintf(text, sizeof text, "oracle child (pid %d): %s: %s", static_cast<int>(getpid()),
                    mm::fork_isolation::kChildLacksParentData, e.message);
      failed = 1;
    } else {
      mm::layout_core::rewrite(s.layout, kLayoutSeed + 1);
      if (!mm::layout_core::verify_range(s.layout, kLayoutSeed + 1, 0, s.layout.vmas, &e)) {
        std::snprintf(text, sizeof text, "oracle child (pid %d): %s: %s", static_cast<int>(getpid()),
                      mm::fork_isolation::kChildCopyWrong, e.message);
        failed = 1;
      }
    }
    if (failed) (void)!write(pipe_fds[1], text, std::strlen(text));
    _exit(failed);
  }
  close(pipe_fds[1]);
  char text[kMaxMessageBytes] = {};
  size_t got = 0;
  ssize_t n;
  while (got + 1 < sizeof text && ((n = read(pipe_fds[0], text + got, sizeof text - 1 - got)) > 0 || (n < 0 && errno == EINTR)))
    if (n > 0) got += static_cast<size_t>(n);
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got > 0) return send_error(s.socket, kErrorOther, 0, text);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return send_error(s.socket, kErrorChildFailed, 0, "oracle child", pid, status);
  // The test hook: simulates a kernel that let the child's writes leak into
  // the parent (the benchmark asks for it only under RMAPBENCH_TEST_CORRUPT).
  if (m.numbers[0]) mm::layout_core::corrupt_one_byte_for_test(s.layout, 0, 0);
  Error e;
  if (!mm::layout_core::verify_range(s.layout, kLayoutSeed, 0, s.layout.vmas, &e)) {
    char message[sizeof e.message + 128];
    std::snprintf(message, sizeof message, "%s: %s", mm::fork_isolation::kParentDataChanged, e.message);
    return send_error(s.socket, kErrorOther, 0, message);
  }
  return send_message(s.socket, make("ok", {}));
}

bool needs_numbers(State& s, const Message& m, int count) {
  if (m.count == count) return true;
  char text[96];
  std::snprintf(text, sizeof text, "request '%s' takes %d arguments, not %d", m.verb, count, m.count);
  send_error(s.socket, kErrorOther, EINVAL, text);
  return false;
}

// The forker and, by inheritance, every child it forks stay on the CPU it
// started on. Where the child runs decides what a fork+exit+wait costs (on
// the 2-vCPU development VM, 44 us at V = 1 with the child on its parent's
// CPU and 75 us on the other; at V = 1000 single repetitions spread 700-1100
// us), and which CPU the scheduler picks changes within a run and between
// runs: an A/A of two quick runs flagged fork_exit_wait/vmas:1000 +15.5% in
// CI. fork_concurrent measures forks on several CPUs.
void pin_to_current_cpu() {
  const int cpu = sched_getcpu();
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof set, &set);
}

int serve(int socket, long vmas) {
  pin_to_current_cpu();
  State s;
  s.socket = socket;
  // Anything else the benchmark process had open stays out of this process.
  for (int fd = 3; fd < socket; ++fd) close(fd);
#ifdef SYS_close_range
  syscall(SYS_close_range, socket + 1, ~0U, 0);
#endif

  void* page = mmap(nullptr, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) {
    send_error(socket, kErrorOther, errno, "mmap shared stamp page");
    return 1;
  }
  s.exit_stamp = static_cast<volatile int64_t*>(page);
  Error e;
  if (!mm::layout_core::map(vmas, 1, kLayoutSeed, &s.layout, &e)) {
    send_error(socket, kErrorOther, e.err, e.message);
    return 1;
  }
  mm::layout_core::MapsCount maps;
  const auto lo = reinterpret_cast<uintptr_t>(s.layout.base);
  if (!mm::layout_core::count_mappings(lo, lo + s.layout.span, &maps, &e)) maps = {-1, -1};
  if (!send_message(socket, make("ready", {maps.inside, maps.total}))) return 1;

  for (;;) {
    Message m;
    int fds[kMaxPassedFds];
    int fd_count = 0;
    bool malformed = false;
    char why[128];
    if (!receive(socket, &m, fds, &fd_count, &malformed, why, sizeof why)) return 0;
    bool sent = true;
    if (malformed)
      sent = send_error(socket, kErrorOther, EINVAL, why);
    else if (m.is("fork"))
      sent = !needs_numbers(s, m, 2) || (m.numbers[0] >= 1 ? serve_fork(s, m, fds, fd_count)
                                                            : send_error(socket, kErrorOther, EINVAL, "fork: forks < 1"));
    else if (m.is("bare"))
      sent = !needs_numbers(s, m, 2) || (m.numbers[0] >= 1 ? serve_bare(s, m)
                                                            : send_error(socket, kErrorOther, EINVAL, "bare: forks < 1"));
    else if (m.is("check"))
      sent = !needs_numbers(s, m, 1) || serve_check(s, m);
    else if (m.is("quit"))
      return 0;
    else
      sent = send_error(socket, kErrorOther, EINVAL, "unknown request");
    for (int i = 0; i < fd_count; ++i) close(fds[i]);
    if (!sent) return 1;
  }
}

// Standalone: the bare loop in this minimal process, for measuring the
// kernel's fork fixed cost by hand (README, "Honesty of the figures").
int bare(long vmas, long forks, long rounds) {
  pin_to_current_cpu();
  Geometry layout;
  Error e;
  if (!mm::layout_core::map(vmas, 1, kLayoutSeed, &layout, &e)) {
    std::fprintf(stderr, "rmapbench-forker: layout: %s\n", e.message);
    return 1;
  }
  mm::layout_core::MapsCount maps;
  const auto lo = reinterpret_cast<uintptr_t>(layout.base);
  if (!mm::layout_core::count_mappings(lo, lo + layout.span, &maps, &e)) maps = {-1, -1};
  std::printf("vmas %ld (%ld mapped apart), process mappings %ld, %ld forks per round\n", vmas, maps.inside, maps.total,
              forks);
  double means[64];
  rounds = rounds < 1 ? 1 : rounds > 64 ? 64 : rounds;
  for (long r = 0; r < rounds; ++r) {
    int err = 0;
    const int64_t total = bare_loop_ns(forks, 0, &err);
    if (total < 0) {
      std::fprintf(stderr, "rmapbench-forker: fork failed: %s\n", std::strerror(err));
      return 1;
    }
    means[r] = static_cast<double>(total) / 1e3 / static_cast<double>(forks);
    std::printf("round %ld: %.1f us per fork+exit+wait\n", r + 1, means[r]);
  }
  for (long i = 1; i < rounds; ++i)
    for (long j = i; j > 0 && means[j - 1] > means[j]; --j) {
      const double t = means[j];
      means[j] = means[j - 1];
      means[j - 1] = t;
    }
  const double median = rounds % 2 ? means[rounds / 2] : (means[rounds / 2 - 1] + means[rounds / 2]) / 2;
  std::printf("median of %ld rounds: %.1f us per fork+exit+wait\n", rounds, median);
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: rmapbench-forker --serve <socket fd> <vmas>\n"
               "       rmapbench-forker --bare <vmas> <forks> [rounds]\n");
  return 2;
}

}  // namespace
}  // namespace rmapbench::forker

int main(int argc, char** argv) {
  using namespace rmapbench::forker;
  long a = 0, b = 0, c = 5;
  if (argc == 4 && std::strcmp(argv[1], "--serve") == 0 && parse_long(argv[2], &a) && parse_long(argv[3], &b) && a >= 0)
    return serve(static_cast<int>(a), b);
  if ((argc == 4 || argc == 5) && std::strcmp(argv[1], "--bare") == 0 && parse_long(argv[2], &a) &&
      parse_long(argv[3], &b) && b >= 1 && (argc == 4 || parse_long(argv[4], &c)))
    return bare(a, b, c);
  return usage();
}
