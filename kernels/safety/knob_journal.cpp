// The knob journal: one fsync'd line per knob a guard changed and has not
// restored yet, so a run killed by SIGKILL or a crash is put right by the
// next start or by `rmapbench restore`.
#include "kernels/safety/knob_journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <set>

#include <fmt/core.h>

#include "kernels/procfs/sysfs_text.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_file.hpp"

namespace rmapbench::safety {

namespace {

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
  auto bytes = sysfs::read_file(path);
  if (!bytes) return Status::error("read " + bytes.status().message(), bytes.status().err());
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

bool same_key(const JournalEntry& e, const JournalKey& k) {
  return e.pid == k.pid && e.start_time == k.start_time && e.seq == k.seq;
}

}  // namespace

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

Status journal_append(const JournalEntry& e) {
  auto lock = JournalLock::take();
  if (!lock) return lock.status();
  return append_entry(e);
}

Status journal_drop(const JournalKey& drop, const JournalKey* handover, const std::string& original) {
  auto lock = JournalLock::take();
  if (!lock) return lock.status();
  auto jc = load_journal();
  if (!jc) return jc.status();
  std::vector<JournalEntry> keep;
  for (auto& e : jc->entries) {
    if (same_key(e, drop)) continue;
    if (handover && same_key(e, *handover)) e.original = original;
    keep.push_back(e);
  }
  return rewrite_journal(keep);
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
        if (cur && (same_knob_value(current, entries[k].set_to) || same_knob_value(current, entries[k].original))) ours = true;
      if (cur && same_knob_value(current, target)) {
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
