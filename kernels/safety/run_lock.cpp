#include "kernels/safety/run_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <thread>

#include <fmt/core.h>

#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_journal.hpp"

namespace rmapbench::safety {

namespace {

// How long a lock whose recorded holder is dead may still be held by the
// holder's dying children (they die by PR_SET_PDEATHSIG within milliseconds).
constexpr auto kStragglerWait = std::chrono::milliseconds(2000);

std::string read_fd_contents(int fd) {
  std::string out;
  char buf[2048];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += n;
    if (out.size() > 65536) break;
  }
  return out;
}

// Parses the record; nullopt when empty or without a pid (being written).
std::optional<RunLock::Holder> parse_record(const std::string& s) {
  RunLock::Holder h;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    std::string line = s.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? s.size() : nl + 1;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "pid") std::from_chars(value.data(), value.data() + value.size(), h.pid);
    else if (key == "start_time") std::from_chars(value.data(), value.data() + value.size(), h.start_time);
    else if (key == "started") h.started = value;
    else if (key == "command") h.command = value;
  }
  if (h.pid <= 0) return std::nullopt;
  return h;
}

std::string now_text() {
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z", &tm);
  return buf;
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  return s;
}

}  // namespace

std::string RunLock::Holder::describe() const {
  if (pid <= 0) return "an unknown process (its lock record is empty)";
  std::string s = fmt::format("pid {}", pid);
  if (!command.empty()) s += fmt::format(" ({})", command);
  if (!started.empty()) s += ", started " + started;
  return s;
}

std::string current_command_line() {
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "rmapbench";
  std::string raw = read_fd_contents(fd);
  close(fd);
  std::string out;
  size_t pos = 0;
  bool first = true;
  while (pos < raw.size()) {
    size_t end = raw.find('\0', pos);
    if (end == std::string::npos) end = raw.size();
    std::string arg = raw.substr(pos, end - pos);
    pos = end + 1;
    if (first) {
      size_t slash = arg.rfind('/');
      if (slash != std::string::npos) arg = arg.substr(slash + 1);
      first = false;
    } else {
      out += ' ';
    }
    if (arg.empty() || arg.find_first_of(" \t'\"") != std::string::npos) arg = "'" + arg + "'";
    out += arg;
  }
  return one_line(out.empty() ? "rmapbench" : out);
}

std::string RunLock::lock_path() { return state_dir() + "/run.lock"; }

Result<RunLock> RunLock::acquire() { return acquire(current_command_line()); }

Result<RunLock> RunLock::acquire(const std::string& command) {
  if (Status st = ensure_state_dir(); st.failed()) return st.context("run lock");
  std::string path = lock_path();
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::from_errno("open " + path);
  auto straggler_deadline = std::chrono::steady_clock::now() + kStragglerWait;
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) break;
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) {
      int err = errno;
      close(fd);
      return Status::from_errno("flock " + path, err);
    }
    auto holder = parse_record(read_fd_contents(fd));
    bool alive = holder && process_alive(holder->pid, holder->start_time);
    bool waited_out = std::chrono::steady_clock::now() >= straggler_deadline;
    if (alive || waited_out) {
      close(fd);
      if (alive || !holder)
        return Status::error(fmt::format("another rmapbench run holds {}: {}", path,
                                         holder ? holder->describe() : Holder{}.describe()));
      return Status::error(fmt::format("another rmapbench run holds {}: {}; that process is gone, but processes "
                                       "it started still hold the lock (find them with `fuser -v {}`)",
                                       path, holder->describe(), path));
    }
    // The recorded holder is dead (its children are dying with it), or a new
    // holder is writing its record: look again shortly.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  std::string note;
  if (auto previous = parse_record(read_fd_contents(fd))) {
    if (process_alive(previous->pid, previous->start_time) && previous->pid != getpid())
      note = fmt::format("took over the run lock {} recorded for {}, which does not hold it", path,
                         previous->describe());
    else
      note = fmt::format("took over the stale run lock {} of {}, which is gone", path, previous->describe());
  }
  std::string record = fmt::format("pid={}\nstart_time={}\nstarted={}\ncommand={}\n", getpid(),
                                   process_start_time(getpid()).value_or(0), now_text(), one_line(command));
  if (ftruncate(fd, 0) != 0 || pwrite(fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size())) {
    int err = errno;
    close(fd);
    return Status::from_errno("write " + path, err);
  }
  fsync(fd);
  close_in_children(fd);
  return RunLock(fd, getpid(), path, note);
}

RunLock::RunLock(RunLock&& o) noexcept : fd_(o.fd_), owner_(o.owner_), path_(std::move(o.path_)), note_(std::move(o.note_)) {
  o.fd_ = -1;
}

RunLock& RunLock::operator=(RunLock&& o) noexcept {
  if (this != &o) {
    release();
    fd_ = o.fd_;
    owner_ = o.owner_;
    path_ = std::move(o.path_);
    note_ = std::move(o.note_);
    o.fd_ = -1;
  }
  return *this;
}

RunLock::~RunLock() { release(); }

void RunLock::release() {
  if (fd_ < 0) return;
  int fd = fd_;
  fd_ = -1;
  // In a forked child the fd was closed by become_child_of_run() (its number
  // may be reused): only the holder itself releases.
  if (owner_ != getpid()) return;
  if (ftruncate(fd, 0) != 0) {
    // The lock is released by close() anyway; a leftover record only makes
    // the next run print a "stale lock" note.
  }
  forget_close_in_children(fd);
  close(fd);
}

std::optional<RunLock::Holder> RunLock::current_holder() {
  std::string path = lock_path();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  int rc;
  do {
    rc = flock(fd, LOCK_SH | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) {  // nobody holds it
    close(fd);
    return std::nullopt;
  }
  auto holder = parse_record(read_fd_contents(fd));
  close(fd);
  return holder ? *holder : Holder{};
}

}  // namespace rmapbench::safety
