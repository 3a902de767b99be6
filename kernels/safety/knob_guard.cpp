// Knob guards, the knob journal and the signal path.
//
// Order of a change:  read original -> append journal entry, fsync file and
// directory -> publish the guard in the lock-free slot table (what the
// signal handler sees) -> write the knob.
// Order of a restore: write the original -> unpublish the slot -> drop the
// journal entry (rewrite to a temp file + rename, fsync'd).
// A crash anywhere leaves the journal holding every knob that may differ
// from its original; restoring twice is harmless.
#include "kernels/safety/knob_guard.hpp"
#include "kernels/safety/signal_safe_format.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <fmt/core.h>

#include "kernels/safety/children.hpp"

namespace rmapbench::safety {

struct KnobGuard::Impl {
  std::string path;      // canonical
  std::string original;  // what restore writes back
  std::string value;     // what we wrote
  pid_t owner = 0;
  long long start_time = 0;
  unsigned long long seq = 0;
  int slot = -1;
  bool armed = false;
};

namespace {

// ---------------------------------------------------------------- the slot table (signal handler's view)

constexpr int kMaxSlots = 128;
constexpr size_t kMaxPath = 512;
constexpr size_t kMaxValue = 256;

enum SlotState : int { kFree = 0, kBusy = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<int> which{0};  // which orig[] buffer is current
  pid_t owner = 0;
  unsigned long long seq = 0;
  char path[kMaxPath] = {};
  char orig[2][kMaxValue] = {};
  size_t orig_len[2] = {0, 0};
};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

Slot g_slots[kMaxSlots];

std::atomic<int> g_signal{0};
std::atomic<bool> g_interrupted{false};
std::atomic<pid_t> g_handler_pid{0};
std::atomic<unsigned long long> g_seq{0};

// Writes bytes to a knob with open/write/close only (async-signal-safe).
// Returns 0 or the errno.
int write_knob_raw(const char* path, const char* data, size_t len) {
  int fd;
  do {
    fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  int err = 0;
  size_t off = 0;
  while (off < len) {
    ssize_t n = write(fd, data + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (n == 0) {
      err = EIO;
      break;
    }
    off += static_cast<size_t>(n);
  }
  if (close(fd) != 0 && err == 0 && errno != EINTR) err = errno;
  return err;
}

// Async-signal-safe: writes back the original of every live slot owned by
// `pid`, newest first (nested guards unwind in order). Returns how many.
int restore_live_slots(pid_t pid) {
  int idx[kMaxSlots];
  int n = 0;
  for (int i = 0; i < kMaxSlots; ++i) {
    if (g_slots[i].state.load(std::memory_order_acquire) == kLive && g_slots[i].owner == pid) idx[n++] = i;
  }
  for (int i = 1; i < n; ++i) {  // insertion sort by seq, descending
    int v = idx[i];
    int j = i - 1;
    while (j >= 0 && g_slots[idx[j]].seq < g_slots[v].seq) {
      idx[j + 1] = idx[j];
      --j;
    }
    idx[j + 1] = v;
  }
  int restored = 0;
  for (int k = 0; k < n; ++k) {
    Slot& s = g_slots[idx[k]];
    int w = s.which.load(std::memory_order_acquire);
    if (write_knob_raw(s.path, s.orig[w], s.orig_len[w]) == 0) ++restored;
  }
  return restored;
}

int claim_slot(pid_t owner, unsigned long long seq, const std::string& path, const std::string& original) {
  for (int i = 0; i < kMaxSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) continue;
    Slot& s = g_slots[i];
    s.owner = owner;
    s.seq = seq;
    std::memcpy(s.path, path.c_str(), path.size() + 1);
    std::string bytes = original + "\n";
    std::memcpy(s.orig[0], bytes.data(), bytes.size());
    s.orig_len[0] = bytes.size();
    s.which.store(0, std::memory_order_release);
    s.state.store(kLive, std::memory_order_release);
    return i;
  }
  return -1;
}

void update_slot_original(int i, const std::string& original) {
  if (i < 0) return;
  Slot& s = g_slots[i];
  int other = 1 - s.which.load(std::memory_order_acquire);
  std::string bytes = original + "\n";
  std::memcpy(s.orig[other], bytes.data(), bytes.size());
  s.orig_len[other] = bytes.size();
  s.which.store(other, std::memory_order_release);
}

void release_slot(int i) {
  if (i < 0) return;
  g_slots[i].state.store(kBusy, std::memory_order_release);
  g_slots[i].owner = 0;
  g_slots[i].state.store(kFree, std::memory_order_release);
}

// ---------------------------------------------------------------- signal handler

const char* sig_text(int sig) {
  switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGHUP: return "SIGHUP";
    default: return "signal";
  }
}

void set_default_and_raise(int sig) {
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
  raise(sig);  // pending until the handler returns (sig is blocked in it), then fatal
}

extern "C" void on_terminating_signal(int sig) {
  int saved_errno = errno;
  pid_t me = getpid();
  if (me != g_handler_pid.load()) {
    // A forked child that inherited the handler: behave as if it had none.
    set_default_and_raise(sig);
    errno = saved_errno;
    return;
  }
  int first_sig = 0;
  bool first = g_signal.compare_exchange_strong(first_sig, sig);
  int restored = restore_live_slots(me);
  kill_run_children(SIGKILL);
  g_interrupted.store(true);
  char msg[160];
  char* p = put_str(msg, "rmapbench: ");
  p = put_str(p, sig_text(sig));
  if (first) {
    p = put_str(p, ": knobs restored (");
    p = put_uint(p, static_cast<unsigned long>(restored));
    p = put_str(p, "), children killed; finishing with partial results (again to quit now)\n");
  } else if (first_sig == sig) {
    p = put_str(p, " again: knobs restored, quitting now\n");
  } else {
    p = put_str(p, ": knobs restored, still finishing\n");
  }
  ssize_t ignored = write(STDERR_FILENO, msg, static_cast<size_t>(p - msg));
  (void)ignored;
  if (!first && first_sig == sig) set_default_and_raise(sig);
  errno = saved_errno;
}

// ---------------------------------------------------------------- process registry (non-handler)

std::mutex& registry_mutex() {
  static std::mutex& m = *new std::mutex;  // never destroyed: guards may die during static destruction
  return m;
}
std::vector<KnobGuard::Impl*>& registry() {
  static auto& v = *new std::vector<KnobGuard::Impl*>;
  return v;
}

// ---------------------------------------------------------------- small file helpers

Status fsync_dir(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open " + dir);
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) return Status::from_errno("fsync " + dir, err);
  return Status::ok();
}

Status write_all(int fd, const std::string& data, const std::string& what) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("write " + what);
    }
    off += static_cast<size_t>(n);
  }
  return Status::ok();
}

Result<std::string> read_file_bytes(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("read " + path);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return Status::from_errno("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (16u << 20)) break;
  }
  close(fd);
  return out;
}

Status write_knob(const std::string& path, const std::string& value) {
  std::string bytes = value + "\n";
  // EBUSY can be transient: KSM refuses max_page_sharing and
  // merge_across_nodes while a KSM page is still mapped, which it is for a
  // moment by a process that left KSM but has not unmapped yet (between
  // ksm_exit() and exit_mmap()). Seen here right after another KSM workload,
  // twice in a day, once lasting longer than 2 s.
  constexpr std::chrono::seconds kBusyFor{10};
  constexpr std::chrono::milliseconds kBusyPause{10};
  int err = 0;
  for (long attempt = 1; attempt <= kBusyFor / kBusyPause; ++attempt) {
    err = write_knob_raw(path.c_str(), bytes.data(), bytes.size());
    if (err != EBUSY) break;
    std::this_thread::sleep_for(kBusyPause);
  }
  if (err == EBUSY)
    return Status::error(fmt::format("write '{}' to {}: {} for {} s", value, path, std::strerror(err),
                                     kBusyFor.count()),
                         err);
  if (err != 0) return Status::from_errno(fmt::format("write '{}' to {}", value, path), err);
  return Status::ok();
}

bool same_value(const std::string& a, const std::string& b) {
  std::string x = parse_knob_value(a), y = parse_knob_value(b);
  if (x == y) return true;
  long long nx = 0, ny = 0;
  auto rx = std::from_chars(x.data(), x.data() + x.size(), nx);
  auto ry = std::from_chars(y.data(), y.data() + y.size(), ny);
  return rx.ec == std::errc() && rx.ptr == x.data() + x.size() && ry.ec == std::errc() &&
         ry.ptr == y.data() + y.size() && nx == ny;
}

std::string shell_quote_value(const std::string& v) { return "'" + v + "'"; }

// ---------------------------------------------------------------- journal file

std::string journal_lock_path() { return state_dir() + "/knobs.journal.lock"; }

constexpr const char* kJournalHeader =
    "# rmapbench knob journal: one line per knob an rmapbench process changed and has not restored yet.\n"
    "# Fields (tab-separated; \\t \\n \\\\ escaped): pid start_time boot_id seq path original set_to\n"
    "# Restore with `rmapbench restore` (or write each original back into its path, newest line first).\n";

std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '\\') o += "\\\\";
    else if (c == '\t') o += "\\t";
    else if (c == '\n') o += "\\n";
    else o += c;
  }
  return o;
}

std::string unescape(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char n = s[++i];
      o += n == 't' ? '\t' : n == 'n' ? '\n' : n;
    } else {
      o += s[i];
    }
  }
  return o;
}

std::string format_entry(const JournalEntry& e) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\n", e.pid, e.start_time, escape(e.boot_id), e.seq, escape(e.path),
                     escape(e.original), escape(e.set_to));
}

template <typename T>
bool parse_number(const std::string& s, T& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool parse_entry(const std::string& line, JournalEntry& e) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t tab = line.find('\t', start);
    f.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
    if (tab == std::string::npos) break;
    start = tab + 1;
  }
  if (f.size() != 7) return false;
  if (!parse_number(f[0], e.pid) || !parse_number(f[1], e.start_time) || !parse_number(f[3], e.seq)) return false;
  e.boot_id = unescape(f[2]);
  e.path = unescape(f[4]);
  e.original = unescape(f[5]);
  e.set_to = unescape(f[6]);
  return e.pid > 0 && !e.path.empty();
}

struct JournalContents {
  std::vector<JournalEntry> entries;
  int malformed = 0;
};

Result<JournalContents> load_journal() {
  JournalContents jc;
  std::string path = journal_path();
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return jc;
    return Status::from_errno("open " + path);
  }
  close(fd);
  auto bytes = read_file_bytes(path);
  if (!bytes) return bytes.status();
  const std::string& s = *bytes;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) {  // torn last write: that knob was never written
      ++jc.malformed;
      break;
    }
    std::string line = s.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] == '#') continue;
    JournalEntry e;
    if (parse_entry(line, e))
      jc.entries.push_back(std::move(e));
    else
      ++jc.malformed;
  }
  return jc;
}

// Holds flock on knobs.journal.lock (the journal itself is replaced by rename).
class JournalLock {
 public:
  static Result<JournalLock> take() {
    if (Status st = ensure_state_dir(); st.failed()) return st;
    std::string p = journal_lock_path();
    int fd = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return Status::from_errno("open " + p);
    while (flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return Status::from_errno("flock " + p, err);
    }
    return JournalLock(fd);
  }
  JournalLock(JournalLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  JournalLock& operator=(JournalLock&&) = delete;
  ~JournalLock() {
    if (fd_ >= 0) close(fd_);
  }

 private:
  explicit JournalLock(int fd) : fd_(fd) {}
  int fd_;
};

Status append_entry(const JournalEntry& e) {
  std::string path = journal_path();
  int fd = open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::from_errno("open " + path);
  std::string data;
  struct stat st;
  if (fstat(fd, &st) == 0 && st.st_size == 0) {
    data = kJournalHeader;
  } else if (fstat(fd, &st) == 0 && st.st_size > 0) {
    char last = '\n';
    if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') data = "\n";  // after a torn write
  }
  data += format_entry(e);
  Status s = write_all(fd, data, path);
  if (s && fsync(fd) != 0) s = Status::from_errno("fsync " + path);
  close(fd);
  if (s) s = fsync_dir(state_dir());
  return s;
}

Status rewrite_journal(const std::vector<JournalEntry>& entries) {
  std::string path = journal_path();
  std::string dir = state_dir();
  if (entries.empty()) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return Status::from_errno("unlink " + path);
    return fsync_dir(dir);
  }
  std::string tmp = fmt::format("{}.tmp.{}", path, getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::from_errno("open " + tmp);
  std::string data = kJournalHeader;
  for (const auto& e : entries) data += format_entry(e);
  Status s = write_all(fd, data, tmp);
  if (s && fsync(fd) != 0) s = Status::from_errno("fsync " + tmp);
  close(fd);
  if (s && rename(tmp.c_str(), path.c_str()) != 0) s = Status::from_errno("rename " + tmp + " -> " + path);
  if (s.failed()) {
    unlink(tmp.c_str());
    return s;
  }
  return fsync_dir(dir);
}

bool same_key(const JournalEntry& e, pid_t pid, long long start_time, unsigned long long seq) {
  return e.pid == pid && e.start_time == start_time && e.seq == seq;
}

// Drops `drop` and, when `update` is set, gives that entry a new original.
Status edit_journal(const KnobGuard::Impl& drop, const KnobGuard::Impl* update) {
  auto lock = JournalLock::take();
  if (!lock) return lock.status();
  auto jc = load_journal();
  if (!jc) return jc.status();
  std::vector<JournalEntry> keep;
  for (auto& e : jc->entries) {
    if (same_key(e, drop.owner, drop.start_time, drop.seq)) continue;
    if (update && same_key(e, update->owner, update->start_time, update->seq)) e.original = update->original;
    keep.push_back(e);
  }
  return rewrite_journal(keep);
}

Status restore_impl(KnobGuard::Impl& im) {
  if (!im.armed) return Status::ok();
  im.armed = false;
  if (getpid() != im.owner) return Status::ok();  // a forked copy: only the owner restores
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& live = registry();
  auto it = std::find(live.begin(), live.end(), &im);
  KnobGuard::Impl* newer = nullptr;
  if (it != live.end()) {
    for (auto jt = it + 1; jt != live.end(); ++jt) {
      if ((*jt)->path == im.path) {  // still registered = not restored yet
        newer = *jt;
        break;
      }
    }
  }
  Status st;
  if (newer) {
    // Destroyed out of order (e.g. a vector of guards): the newer guard on
    // the same knob takes over our original and will restore it.
    newer->original = im.original;
    update_slot_original(newer->slot, im.original);
    st = edit_journal(im, newer);
    if (st.failed()) st = st.context("knob journal");
  } else {
    st = write_knob(im.path, im.original);
    if (st.failed()) {
      st = Status::error(fmt::format("could not restore {} to '{}': {}; it stays in the journal {} "
                                     "(retry with `rmapbench restore`)",
                                     im.path, im.original, st.message(), journal_path()),
                         st.err());
    } else {
      Status js = edit_journal(im, nullptr);
      if (js.failed()) st = js.context(fmt::format("restored {}, but updating the knob journal", im.path));
    }
  }
  release_slot(im.slot);
  im.slot = -1;
  if (it != live.end()) live.erase(it);
  return st;
}

void restore_at_exit() {
  pid_t me = getpid();
  std::vector<KnobGuard::Impl*> live;
  {
    std::unique_lock<std::mutex> lock(registry_mutex(), std::try_to_lock);
    if (!lock.owns_lock()) {  // another thread is mid-change: at least put the knobs back
      restore_live_slots(me);
      return;
    }
    live = registry();
  }
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    if ((*it)->owner != me) continue;
    Status st = restore_impl(**it);
    if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
  }
}

long long self_start_time() {
  static pid_t cached_pid = 0;
  static long long cached = 0;
  pid_t me = getpid();
  if (cached_pid != me) {
    cached = process_start_time(me).value_or(0);
    cached_pid = me;
  }
  return cached;
}

}  // namespace

// ---------------------------------------------------------------- public API

std::string state_dir() {
  if (const char* d = std::getenv("RMAPBENCH_STATE_DIR"); d && *d) return d;
  if (geteuid() == 0) return "/run/rmapbench";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return std::string(x) + "/rmapbench";
  return fmt::format("/tmp/rmapbench-{}", getuid());
}

std::string journal_path() { return state_dir() + "/knobs.journal"; }

Status ensure_state_dir() {
  std::string dir = state_dir();
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::from_errno("stat " + dir);
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
    if (mkdir(dir.c_str(), geteuid() == 0 ? 0755 : 0700) != 0 && errno != EEXIST)
      return Status::from_errno("mkdir " + dir);
    if (lstat(dir.c_str(), &st) != 0) return Status::from_errno("stat " + dir);
  }
  if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode))
    return Status::error(fmt::format("state directory {} is not a directory (a symlink?): refusing to use it", dir));
  if (st.st_uid != geteuid() && st.st_uid != 0)
    return Status::error(fmt::format("state directory {} belongs to uid {}, not us: refusing to use it", dir,
                                     st.st_uid));
  return Status::ok();
}

std::string parse_knob_value(const std::string& contents) {
  size_t open_br = contents.find('[');
  if (open_br != std::string::npos) {
    size_t close_br = contents.find(']', open_br + 1);
    if (close_br != std::string::npos) return contents.substr(open_br + 1, close_br - open_br - 1);
  }
  size_t b = contents.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  size_t e = contents.find_last_not_of(" \t\n\r");
  return contents.substr(b, e - b + 1);
}

Result<std::string> read_knob(const std::string& path) {
  auto bytes = read_file_bytes(path);
  if (!bytes) return bytes.status();
  return parse_knob_value(*bytes);
}

Result<KnobGuard> KnobGuard::set(const std::string& path, const std::string& value) {
  if (interrupted())
    return Status::error(fmt::format("not changing {}: the run was interrupted ({})", path,
                                     signal_name(interrupt_signal())));
  if (value.find_first_of("\n\r") != std::string::npos || value.size() + 2 > kMaxValue)
    return Status::error(fmt::format("refusing to write {}: the value must be one line of at most {} bytes",
                                     shell_quote_value(value), kMaxValue - 2));
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return Status::from_errno("knob " + path);
  std::string canonical = resolved;
  if (canonical.size() + 1 > kMaxPath)
    return Status::error(fmt::format("knob path {} is longer than {} bytes", canonical, kMaxPath - 1));
  auto original = read_knob(canonical);
  if (!original) return original.status();
  if (original->size() + 2 > kMaxValue)
    return Status::error(fmt::format("knob {} holds a value longer than {} bytes", canonical, kMaxValue - 2));

  auto impl = std::make_unique<Impl>();
  impl->path = canonical;
  impl->original = *original;
  impl->value = value;
  impl->owner = getpid();
  impl->start_time = self_start_time();

  std::lock_guard<std::mutex> lock(registry_mutex());
  impl->seq = ++g_seq;
  JournalEntry e{impl->owner, impl->start_time, current_boot_id(), impl->seq, impl->path, impl->original, value};
  {
    auto jl = JournalLock::take();
    if (!jl) return jl.status().context("knob journal");
    if (Status st = append_entry(e); st.failed()) return st.context("knob journal");
  }
  impl->slot = claim_slot(impl->owner, impl->seq, impl->path, impl->original);
  if (impl->slot < 0) {
    edit_journal(*impl, nullptr);
    return Status::error(fmt::format("too many knob guards alive at once (max {})", kMaxSlots));
  }
  if (Status st = write_knob(impl->path, value); st.failed()) {
    release_slot(impl->slot);
    if (Status js = edit_journal(*impl, nullptr); js.failed())
      fmt::print(stderr, "rmapbench: dropping the journal entry of {}: {}\n", impl->path, js.message());
    return st;
  }
  impl->armed = true;
  registry().push_back(impl.get());
  static bool atexit_registered = false;
  if (!atexit_registered) {
    std::atexit(restore_at_exit);
    atexit_registered = true;
  }
  return KnobGuard(std::move(impl));
}

KnobGuard::KnobGuard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KnobGuard::KnobGuard(KnobGuard&&) noexcept = default;

KnobGuard& KnobGuard::operator=(KnobGuard&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      Status st = restore_impl(*impl_);
      if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

KnobGuard::~KnobGuard() {
  if (!impl_) return;
  Status st = restore_impl(*impl_);
  if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
}

Status KnobGuard::restore() { return impl_ ? restore_impl(*impl_) : Status::ok(); }

namespace {
const std::string& empty_string() {
  static const std::string& s = *new std::string;
  return s;
}
}  // namespace

const std::string& KnobGuard::path() const { return impl_ ? impl_->path : empty_string(); }
const std::string& KnobGuard::original() const { return impl_ ? impl_->original : empty_string(); }
const std::string& KnobGuard::value() const { return impl_ ? impl_->value : empty_string(); }

int live_guard_count() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  pid_t me = getpid();
  return static_cast<int>(std::count_if(registry().begin(), registry().end(),
                                        [me](const KnobGuard::Impl* i) { return i->owner == me && i->armed; }));
}

// ---------------------------------------------------------------- signals

void install_signal_handlers() {
  g_handler_pid.store(getpid());
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_terminating_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, s);  // handlers never nest
  sa.sa_flags = SA_RESTART;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) {
    struct sigaction old;
    if (sigaction(s, nullptr, &old) == 0 && !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN)
      continue;  // started under nohup (or similar): keep ignoring it
    sigaction(s, &sa, nullptr);
  }
}

bool interrupted() { return g_interrupted.load(); }
int interrupt_signal() { return g_signal.load(); }

// ---------------------------------------------------------------- journal reading and restoring

Result<std::vector<JournalEntry>> read_journal() {
  auto jc = load_journal();
  if (!jc) return jc.status();
  return std::move(jc->entries);
}

OwnerState owner_state(const JournalEntry& e) {
  std::string boot = current_boot_id();
  if (!e.boot_id.empty() && !boot.empty() && e.boot_id != boot) return OwnerState::kOtherBoot;
  return process_alive(e.pid, e.start_time) ? OwnerState::kAlive : OwnerState::kDead;
}

const char* to_string(RestoreAction a) {
  switch (a) {
    case RestoreAction::kRestored: return "restored";
    case RestoreAction::kWouldRestore: return "would restore";
    case RestoreAction::kAlreadyOriginal: return "already original";
    case RestoreAction::kChangedSince: return "changed since, left as is";
    case RestoreAction::kOwnerAlive: return "owner alive, skipped";
    case RestoreAction::kOtherBoot: return "from an earlier boot, dropped";
    case RestoreAction::kMissing: return "knob gone, dropped";
    case RestoreAction::kFailed: return "FAILED";
  }
  return "?";
}

Result<std::vector<RestoreReport>> restore_journal(const RestoreOptions& options) {
  std::vector<RestoreReport> reports;
  if (!options.dry_run) {
    if (Status st = ensure_state_dir(); st.failed()) return st;
  } else {
    struct stat st;
    if (stat(journal_path().c_str(), &st) != 0) return reports;  // nothing to show, create nothing
  }
  auto lock = JournalLock::take();
  if (!lock) return lock.status();
  auto jc = load_journal();
  if (!jc) return jc.status();
  const auto& entries = jc->entries;
  const size_t n = entries.size();
  std::vector<bool> keep(n, true);
  std::vector<RestoreReport> by_index(n);
  pid_t me = getpid();
  long long my_start = self_start_time();

  // Which entries may be restored at all.
  std::vector<bool> restorable(n, false);
  for (size_t k = 0; k < n; ++k) {
    const JournalEntry& e = entries[k];
    RestoreReport& r = by_index[k];
    r.entry = e;
    r.owner = owner_state(e);
    bool ours = e.pid == me && (e.start_time == 0 || e.start_time == my_start);
    if (r.owner == OwnerState::kOtherBoot) {
      r.action = RestoreAction::kOtherBoot;
      keep[k] = false;
    } else if (r.owner == OwnerState::kAlive && (!options.all || ours)) {
      r.action = RestoreAction::kOwnerAlive;
      if (auto cur = read_knob(e.path)) r.current = *cur;
    } else {
      restorable[k] = true;
    }
  }

  // One decision per knob over its whole stack of entries (nested guards):
  // the target is the oldest entry's original; the knob is "still ours" when
  // it holds any value of the stack (a set_to, or an original a signal
  // handler or a partial unwind already put back).
  std::vector<bool> done(n, false);
  for (size_t newest = n; newest-- > 0;) {
    if (!restorable[newest] || done[newest]) continue;
    const std::string& path = entries[newest].path;
    std::vector<size_t> stack;  // newest first
    for (size_t k = newest + 1; k-- > 0;)
      if (restorable[k] && !done[k] && entries[k].path == path) stack.push_back(k);
    const std::string& target = entries[stack.back()].original;

    RestoreAction action;
    std::string current, detail;
    auto cur = read_knob(path);
    if (!cur && cur.status().err() == ENOENT) {
      action = RestoreAction::kMissing;
    } else {
      if (cur) current = *cur;
      bool ours = !cur;  // unreadable: try to write anyway
      for (size_t k : stack)
        if (cur && (same_value(current, entries[k].set_to) || same_value(current, entries[k].original))) ours = true;
      if (cur && same_value(current, target)) {
        action = RestoreAction::kAlreadyOriginal;
      } else if (!ours) {
        action = RestoreAction::kChangedSince;
      } else if (options.dry_run) {
        action = RestoreAction::kWouldRestore;
      } else {
        action = RestoreAction::kRestored;  // written below, in journal order
      }
    }
    for (size_t k : stack) {
      done[k] = true;
      by_index[k].action = action;
      by_index[k].current = current;
      by_index[k].target = target;
      by_index[k].detail = detail;
      keep[k] = action == RestoreAction::kFailed || action == RestoreAction::kWouldRestore;
    }
  }

  // The writes replay what the owner's guards would have done on scope
  // exit: every entry's own original, newest entry first, across knobs. The
  // order matters: KSM's guards are run=0->2, max_page_sharing, ...,
  // run=2->1, so run=2 (unmerge every page) comes before max_page_sharing
  // is put back (EBUSY while pages are merged) and run=0 comes last; writing
  // only the oldest original (run=0) would stop ksmd with the pages merged.
  std::set<std::string> failed_knobs;
  for (size_t k = n; k-- > 0;) {
    if (by_index[k].action != RestoreAction::kRestored || failed_knobs.count(entries[k].path)) continue;
    if (Status st = write_knob(entries[k].path, entries[k].original); st.failed()) {
      failed_knobs.insert(entries[k].path);
      for (size_t j = 0; j < n; ++j) {
        if (entries[j].path != entries[k].path || by_index[j].action != RestoreAction::kRestored) continue;
        by_index[j].action = RestoreAction::kFailed;
        by_index[j].detail = st.message();
        keep[j] = true;
      }
      continue;
    }
    by_index[k].wrote = entries[k].original;
  }

  for (size_t k = n; k-- > 0;) reports.push_back(by_index[k]);  // newest first
  bool changed = jc->malformed > 0 || std::find(keep.begin(), keep.end(), false) != keep.end();
  if (!options.dry_run && changed) {
    std::vector<JournalEntry> kept;
    for (size_t k = 0; k < n; ++k)
      if (keep[k]) kept.push_back(entries[k]);
    if (jc->malformed > 0)
      fmt::print(stderr, "rmapbench: dropped {} unreadable line(s) of the knob journal {}\n", jc->malformed,
                 journal_path());
    if (Status st = rewrite_journal(kept); st.failed()) return st.context("knob journal");
  }
  return reports;
}

Result<int> restore_journaled_knobs() {
  auto reports = restore_journal(RestoreOptions{});
  if (!reports) return reports.status().context("restoring knobs left by an earlier run");
  int restored = 0;
  std::string failures;
  std::vector<std::string> seen;  // one line per knob, not per nested entry
  for (const auto& r : *reports) {
    const auto& e = r.entry;
    if (std::find(seen.begin(), seen.end(), e.path) != seen.end()) continue;
    switch (r.action) {
      case RestoreAction::kRestored:
        ++restored;
        seen.push_back(e.path);
        fmt::print(stderr, "rmapbench: restored {} to '{}' (pid {} set it to '{}' and died)\n", e.path, r.target,
                   e.pid, e.set_to);
        break;
      case RestoreAction::kChangedSince:
        seen.push_back(e.path);
        fmt::print(stderr,
                   "rmapbench: left {} as is: it holds '{}', not what pid {} (which died) set it to ('{}'); "
                   "its original was '{}'\n",
                   e.path, r.current, e.pid, e.set_to, r.target);
        break;
      case RestoreAction::kFailed:
        seen.push_back(e.path);
        if (!failures.empty()) failures += "; ";
        failures += r.detail;
        break;
      default:
        break;
    }
  }
  if (!failures.empty())
    return Status::error(fmt::format("could not restore knobs left by an earlier run: {} (they stay in {}; "
                                     "retry with `rmapbench restore`)",
                                     failures, journal_path()));
  return restored;
}

}  // namespace rmapbench::safety
