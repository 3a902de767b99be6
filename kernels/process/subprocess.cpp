#include "kernels/process/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

extern char** environ;

namespace rmapbench::proc {

namespace {

// Our environment with `overrides` ("NAME=value") replacing or adding entries;
// built before fork, since the child may only exec.
std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
  for (char** e = environ; e && *e; ++e) {
    std::string entry = *e;
    bool replaced = false;
    for (const auto& o : overrides) replaced = replaced || name_of(o) == name_of(entry);
    if (!replaced) env.push_back(std::move(entry));
  }
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

std::vector<char*> pointers_to(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Reads the captured pipes to EOF (or the deadline: then the child is
// killed). fds[i] < 0 is not captured.
bool drain(pid_t pid, int fds[2], std::string* sinks[2], std::optional<std::chrono::steady_clock::time_point> deadline) {
  pollfd pfds[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
  int open_fds = (fds[0] >= 0) + (fds[1] >= 0);
  bool timed_out = false;
  while (open_fds > 0) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int ready = ::poll(pfds, 2, wait_ms);
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (pfds[i].fd < 0 || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      ssize_t n = ::read(pfds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(pfds[i].fd);
        pfds[i].fd = -1;
        --open_fds;
      } else {
        sinks[i]->append(buf, static_cast<size_t>(n));
      }
    }
  }
  for (auto& p : pfds)
    if (p.fd >= 0) ::close(p.fd);
  return timed_out;
}

}  // namespace

std::optional<std::string> find_on_path(const std::string& name, const std::optional<std::string>& search_path) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? std::optional(name) : std::nullopt;
  const char* path = search_path ? search_path->c_str() : std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t pos = 0;
  while (pos <= p.size()) {
    size_t colon = p.find(':', pos);
    if (colon == std::string::npos) colon = p.size();
    std::string dir = p.substr(pos, colon - pos);
    std::string full = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(full.c_str(), X_OK) == 0) return full;
    pos = colon + 1;
  }
  return std::nullopt;
}

Result<Outcome> run(const Spawn& s) {
  if (s.argv.empty()) return Status::error("no program to run");
  // A PATH the program is given is where it is looked up, as a shell would.
  std::optional<std::string> search_path;
  for (const auto& e : s.env)
    if (e.rfind("PATH=", 0) == 0) search_path = e.substr(5);
  auto exe = find_on_path(s.argv[0], search_path);
  if (!exe) return Status::error(s.argv[0] + ": not found on PATH", ENOENT);
  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  auto close_pipes = [&] {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      if (fd >= 0) ::close(fd);
  };
  if (s.capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  if (s.capture_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    Status st = Status::from_errno("pipe");
    close_pipes();
    return st;
  }
  // Tells the parent whether exec worked (closed by exec, else carries errno).
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    Status st = Status::from_errno("pipe");
    close_pipes();
    return st;
  }
  std::vector<std::string> args = s.argv;
  std::vector<char*> argv = pointers_to(args);
  std::vector<std::string> env_strings = environment_with(s.env);
  std::vector<char*> envp = pointers_to(env_strings);
  const auto deadline = s.timeout_seconds > 0 ? std::optional(std::chrono::steady_clock::now() +
                                                              std::chrono::seconds(s.timeout_seconds))
                                              : std::nullopt;
  pid_t pid = ::fork();
  if (pid < 0) {
    Status st = Status::from_errno("fork");
    close_pipes();
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return st;
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (s.capture_stdout) ::dup2(out_pipe[1], 1);
    else if (s.stdout_to != 1) ::dup2(s.stdout_to, 1);
    if (s.capture_stderr) ::dup2(err_pipe[1], 2);
    if (!s.cwd.empty() && ::chdir(s.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_pipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execve(exe->c_str(), argv.data(), envp.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  if (s.capture_stdout) ::close(out_pipe[1]);
  if (s.capture_stderr) ::close(err_pipe[1]);
  int child_errno = 0;
  ssize_t got;
  do got = ::read(exec_pipe[0], &child_errno, sizeof child_errno);
  while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  Outcome o;
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&o.out, &o.err};
  o.timed_out = drain(pid, fds, sinks, deadline);
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, deadline && !o.timed_out ? WNOHANG : 0);
    if (r == pid) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("waitpid");
    }
    // Nothing captured, or the pipes closed early: wait for the deadline.
    if (std::chrono::steady_clock::now() >= *deadline) {
      ::kill(pid, SIGKILL);
      o.timed_out = true;
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (got == static_cast<ssize_t>(sizeof child_errno))
    return Status::from_errno("cannot start " + *exe + (s.cwd.empty() ? "" : " in " + s.cwd), child_errno);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

}  // namespace rmapbench::proc
