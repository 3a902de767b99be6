#include "benchmarks/mm/lean_forker.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/safety/children.hpp"

// The forker's bytes, linked in by forker_image.S (benchmarks/CMakeLists.txt).
extern "C" const char rmapbench_forker_image[];
extern "C" const char rmapbench_forker_image_end[];

namespace rmapbench::mm {

namespace {

// Linux 6.3+: asks for an executable memfd explicitly, which
// vm.memfd_noexec=1 otherwise denies; older kernels reject the flag (EINVAL).
constexpr unsigned kMfdExec = 0x0010U;

// An in-memory executable copy of the forker, or why there is none.
Result<int> forker_memfd() {
  int fd = memfd_create(kForkerFile, MFD_CLOEXEC | kMfdExec);
  if (fd < 0 && errno == EINVAL) fd = memfd_create(kForkerFile, MFD_CLOEXEC);
  if (fd < 0) return Status::from_errno("memfd_create");
  const char* p = rmapbench_forker_image;
  size_t left = static_cast<size_t>(rmapbench_forker_image_end - rmapbench_forker_image);
  while (left > 0) {
    const ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = Status::from_errno("writing the forker into its memfd");
      close(fd);
      return s;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return fd;
}

std::string forker_file_path() {
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return kForkerFile;
  exe[n] = '\0';
  std::string dir(exe);
  dir.resize(dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/') + 1);
  return dir + kForkerFile;
}

bool send_message(int socket, const forker::Message& m, const std::vector<int>& fds) {
  char buf[forker::kMaxMessageBytes];
  const size_t len = forker::format(m, buf, sizeof buf);
  if (len == 0 || fds.size() > static_cast<size_t>(forker::kMaxPassedFds)) {
    errno = EINVAL;
    return false;
  }
  iovec iov{buf, len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * forker::kMaxPassedFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  while ((n = sendmsg(socket, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  return n == static_cast<ssize_t>(len);
}

}  // namespace

Status status_of_error_reply(const forker::Message& reply) {
  forker::ErrorReply e;
  if (!forker::read_error(reply, &e))
    return Status::error(fmt::format("lean forker: unexpected reply '{}' ({} numbers)", reply.verb, reply.count), EPROTO);
  switch (e.kind) {
    case forker::kErrorForkFailed: return fork_failure(e.err, "fork storm");
    case forker::kErrorChildFailed: return safety::classify_wait_status(e.pid, e.wait_status).as_status(e.text);
    default: return Status::error(e.text, e.err);
  }
}

Result<LeanForker> LeanForker::start(long vmas) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return Status::from_errno("lean forker socketpair");
  LeanForker forker;
  forker.socket_ = pair[0];
  const int forker_end = pair[1];

  const char* from = std::getenv(kForkerFromEnv);
  const bool file_only = from && std::string(from) == "file";
  Result<int> memfd = file_only ? Result<int>(Status::error(std::string(kForkerFromEnv) + "=file")) : forker_memfd();
  const std::string path = forker_file_path();
  std::string fd_arg = std::to_string(forker_end), vmas_arg = std::to_string(vmas);
  char serve[] = "--serve";
  std::string name = kForkerFile;
  char* argv[] = {name.data(), serve, fd_arg.data(), vmas_arg.data(), nullptr};

  // exec's errors come back through this pipe; EOF means exec succeeded.
  int errors[2];
  if (pipe2(errors, O_CLOEXEC) != 0) {
    Status s = Status::from_errno("lean forker pipe");
    close(forker_end);
    if (memfd) close(*memfd);
    return s;
  }
  auto pid = safety::fork_child_of_run();
  if (!pid) {
    close(forker_end);
    close(errors[0]);
    close(errors[1]);
    if (memfd) close(*memfd);
    return fork_failure(pid.status().err(), "starting the lean forker");
  }
  if (*pid == 0) {
    fcntl(forker_end, F_SETFD, 0);  // the one fd the forker keeps
    int errnos[2] = {0, 0};
    if (memfd) {
      fexecve(*memfd, argv, environ);
      errnos[0] = errno;
    }
    execv(path.c_str(), argv);
    errnos[1] = errno;
    (void)!write(errors[1], errnos, sizeof errnos);
    _exit(127);
  }
  forker.pid_ = *pid;
  close(forker_end);
  close(errors[1]);
  if (memfd) close(*memfd);
  int errnos[2] = {0, 0};
  ssize_t n;
  while ((n = read(errors[0], errnos, sizeof errnos)) < 0 && errno == EINTR) {
  }
  close(errors[0]);
  if (n > 0) {
    const std::string in_memory =
        memfd ? fmt::format("an in-memory copy (fexecve): {}{}", std::strerror(errnos[0]),
                            errnos[0] == EACCES || errnos[0] == EPERM ? " (vm.memfd_noexec or a noexec policy?)" : "")
              : fmt::format("an in-memory copy: {}", memfd.status().message());
    return Status::error(fmt::format("cannot start the lean process the forks are timed from: {}; {}: {}", in_memory,
                                     path, std::strerror(errnos[1])),
                         ENOEXEC);
  }

  auto ready = forker.receive();
  if (!ready) return ready.status();
  if (ready->is("error")) return status_of_error_reply(*ready);
  if (!ready->is("ready") || ready->count != 2)
    return Status::error(fmt::format("lean forker: expected 'ready', got '{}'", ready->verb), EPROTO);
  forker.layout_vmas_ = static_cast<long>(ready->numbers[0]);
  forker.process_vmas_ = static_cast<long>(ready->numbers[1]);
  return forker;
}

LeanForker::LeanForker(LeanForker&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)),
      socket_(std::exchange(o.socket_, -1)),
      layout_vmas_(o.layout_vmas_),
      process_vmas_(o.process_vmas_) {}

LeanForker::~LeanForker() {
  // An explicit quit, not EOF: processes forked since may hold our end.
  if (socket_ >= 0) {
    send_message(socket_, forker::make("quit", {}), {});
    close(socket_);
  }
  if (pid_ > 0) {
    int status;
    for (int i = 0; i < 2000; ++i) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      usleep(1000);
    }
    kill(pid_, SIGKILL);
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Result<forker::Message> LeanForker::receive() {
  char buf[forker::kMaxMessageBytes];
  ssize_t n;
  while ((n = recv(socket_, buf, sizeof buf, 0)) < 0 && errno == EINTR) {
  }
  if (n <= 0) {
    std::string how = n < 0 ? std::strerror(errno) : "closed its socket";
    int status = 0;
    // A closed socket is a forker that exited or died: its status says how.
    if (n == 0 && pid_ > 0 && waitpid(pid_, &status, 0) == pid_) {
      how = safety::classify_wait_status(pid_, status).describe();
      pid_ = -1;
    }
    return Status::error(fmt::format("lean forker died: {}", how));
  }
  forker::Message m;
  if (auto e = forker::parse(buf, static_cast<size_t>(n), &m); e != forker::ParseError::none)
    return Status::error(fmt::format("lean forker: {}", forker::describe(e)), EPROTO);
  return m;
}

Result<forker::Message> LeanForker::call(const forker::Message& request, const std::vector<int>& fds) {
  if (!send_message(socket_, request, fds)) return Status::from_errno(fmt::format("lean forker request '{}'", request.verb));
  auto reply = receive();
  if (reply && reply->is("error")) return status_of_error_reply(*reply);
  return reply;
}

Result<LeanForker::Batch> LeanForker::batch_reply(const Result<forker::Message>& reply, long forks, size_t counters) {
  if (!reply) return reply.status();
  const forker::Message& m = *reply;
  if (!m.is("forked") || m.count != 5 + static_cast<int>(counters) || m.numbers[0] != forks)
    return Status::error(fmt::format("lean forker: expected 'forked {} ...' with {} numbers, got '{}' with {}", forks,
                                     5 + counters, m.verb, m.count),
                         EPROTO);
  Batch b;
  b.forks = forks;
  b.sums.total_ns = m.numbers[1];
  b.sums.fork_ns = m.numbers[2];
  b.sums.exit_ns = m.numbers[3];
  b.sys_ns = m.numbers[4];
  b.counter_increases.assign(m.numbers + 5, m.numbers + 5 + counters);
  return b;
}

Result<LeanForker::Batch> LeanForker::fork_exit_wait(long forks, ForkTimer::ExitStamp stamp,
                                                     const std::vector<int>& counter_fds) {
  const long long record = stamp == ForkTimer::ExitStamp::record ? 1 : 0;
  return batch_reply(call(forker::make("fork", {forks, record}), counter_fds), forks, counter_fds.size());
}

Result<LeanForker::Batch> LeanForker::bare_loop(long forks, long pause_us) {
  return batch_reply(call(forker::make("bare", {forks, pause_us})), forks, 0);
}

Status LeanForker::check_fork_isolation(bool corrupt_for_test) {
  auto reply = call(forker::make("check", {corrupt_for_test ? 1 : 0}));
  if (!reply) return reply.status();
  if (!reply->is("ok")) return Status::error(fmt::format("lean forker: expected 'ok', got '{}'", reply->verb), EPROTO);
  return Status::ok();
}

}  // namespace rmapbench::mm
