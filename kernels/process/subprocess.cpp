#include "kernels/process/subprocess.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace rmapbench::proc {

std::optional<std::string> find_on_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? std::optional(name) : std::nullopt;
  const char* path = std::getenv("PATH");
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
  auto exe = find_on_path(s.argv[0]);
  if (!exe) return Status::error(s.argv[0] + ": not found on PATH", ENOENT);
  int err_pipe[2] = {-1, -1};
  if (s.capture_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  // Tells the parent whether exec worked (closed by exec, else carries errno).
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return Status::from_errno("pipe");
  std::vector<char*> argv;
  for (const auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return Status::from_errno("fork");
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    if (s.stdout_to != 1) ::dup2(s.stdout_to, 1);
    if (s.capture_stderr) ::dup2(err_pipe[1], 2);
    if (!s.cwd.empty() && ::chdir(s.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_pipe[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execv(exe->c_str(), argv.data());
    int e = errno;
    (void)!::write(exec_pipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(exec_pipe[1]);
  if (s.capture_stderr) ::close(err_pipe[1]);
  int child_errno = 0;
  ssize_t got;
  do got = ::read(exec_pipe[0], &child_errno, sizeof child_errno);
  while (got < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  Outcome o;
  if (s.capture_stderr) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err_pipe[0], buf, sizeof buf)) != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      o.err.append(buf, static_cast<size_t>(n));
    }
    ::close(err_pipe[0]);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return Status::from_errno("waitpid");
  if (got == static_cast<ssize_t>(sizeof child_errno))
    return Status::from_errno("cannot start " + *exe + (s.cwd.empty() ? "" : " in " + s.cwd), child_errno);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

}  // namespace rmapbench::proc
