#include "runners/results/atomic_file.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace rmapbench::results {

namespace {

std::string dir_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status fsync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("open directory " + dir);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory; the rename is still atomic.
  if (rc != 0 && err != EINVAL && err != EROFS) return Status::from_errno("fsync directory " + dir, err);
  return Status::ok();
}

const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISLNK(m)) return "a symbolic link";
  return "not a regular file";
}

// Writes all of `data` to `fd`; SIGPIPE is ignored meanwhile (a FIFO whose
// reader left is EPIPE, an error, not the end of rmapbench).
Status write_all(int fd, std::string_view data, const std::string& what) {
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, &old);
  Status result = Status::ok();
  const char* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      result = Status::from_errno("cannot write " + what);
      break;
    }
    if (n == 0) {
      result = Status::error("cannot write " + what + ": the write made no progress", EIO);
      break;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  sigaction(SIGPIPE, &old, nullptr);
  return result;
}

}  // namespace

std::string bounded_name(const std::string& name, size_t max_bytes) {
  if (name.size() <= max_bytes) return name;
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  std::string tag = fmt::format("~{:012x}", h & 0xffffffffffffULL);
  size_t keep = max_bytes > tag.size() ? max_bytes - tag.size() : 0;
  // Never cut a UTF-8 sequence in two.
  while (keep > 0 && (static_cast<unsigned char>(name[keep]) & 0xc0) == 0x80) --keep;
  return name.substr(0, keep) + tag;
}

Result<TempFile> TempFile::create(const std::string& final_path) {
  if (final_path.empty() || final_path.back() == '/') return Status::error("'" + final_path + "' is not a file name");
  std::string dir = dir_of(final_path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::from_errno("cannot write " + final_path + ": directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::error("cannot write " + final_path + ": " + dir + " is not a directory", ENOTDIR);
  if (::lstat(final_path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::error(fmt::format("cannot write {}: it is {}, not a regular file; not replaced", final_path,
                                     file_kind(st.st_mode)),
                         EEXIST);
  if (base_of(final_path).size() > NAME_MAX)
    return Status::error("cannot write " + final_path + ": the file name is longer than 255 bytes", ENAMETOOLONG);
  // A unique name per writer (two runs never share one), hidden, and ignored
  // by git (*.partial) should it ever be left behind.
  std::string tmpl = (dir == "/" ? "" : dir) + "/." + bounded_name(base_of(final_path), 200) + ".XXXXXX.partial";
  int fd = ::mkostemps(tmpl.data(), 8, O_CLOEXEC);
  if (fd < 0) return Status::from_errno("cannot write " + final_path + ": create a temporary file in " + dir);
  ::fchmod(fd, 0644);
  return TempFile(tmpl, final_path, fd);
}

TempFile::TempFile(TempFile&& o) noexcept
    : temp_path_(std::move(o.temp_path_)), final_path_(std::move(o.final_path_)), fd_(o.fd_), committed_(o.committed_) {
  o.fd_ = -1;
  o.committed_ = true;  // the moved-from object owns nothing
}

TempFile::~TempFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status TempFile::write(std::string_view content) {
  if (fd_ < 0) return Status::error("cannot write " + final_path_ + ": already committed", EBADF);
  return write_all(fd_, content, final_path_);
}

Status TempFile::commit(Overwrite mode) {
  if (fd_ < 0) return Status::error("cannot write " + final_path_ + ": already committed", EBADF);
  // The content may have been written by another process through the path.
  // A full disk may only show here (delayed allocation, NFS).
  if (::fsync(fd_) != 0) return Status::from_errno("cannot write " + final_path_ + " (fsync)");
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return Status::from_errno("cannot write " + final_path_ + " (close)");
  if (mode == Overwrite::replace) {
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
      return Status::from_errno("cannot write " + final_path_ + " (rename)");
  } else {
    int rc = ::renameat2(AT_FDCWD, temp_path_.c_str(), AT_FDCWD, final_path_.c_str(), RENAME_NOREPLACE);
    if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
      // File system without RENAME_NOREPLACE: link(2) fails on an existing name too.
      rc = ::link(temp_path_.c_str(), final_path_.c_str());
      if (rc == 0) ::unlink(temp_path_.c_str());
    }
    if (rc != 0) {
      if (errno == EEXIST) return Status::error(final_path_ + " already exists; not overwritten", EEXIST);
      return Status::from_errno("cannot write " + final_path_);
    }
  }
  committed_ = true;
  return fsync_dir(dir_of(final_path_));
}

Result<OutputFile> OutputFile::classify(const std::string& path, Overwrite mode) {
  OutputFile o;
  o.path_ = o.target_ = path;
  o.mode_ = mode;
  if (path == "-") {
    o.kind_ = Kind::standard_output;
    return o;
  }
  if (path.empty() || path.back() == '/') return Status::error("'" + path + "' is not a file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (mode == Overwrite::refuse) return Status::error(path + " already exists; not overwritten", EEXIST);
    if (S_ISLNK(st.st_mode)) {
      // Followed: the link stays, what it points to gets the rules.
      char* real = ::realpath(path.c_str(), nullptr);
      if (!real) {
        int err = errno;
        if (err == ENOENT)
          return Status::error(path + " is a symbolic link to a file that does not exist; not followed (remove the "
                                      "link or name the target)",
                               ENOENT);
        return Status::from_errno("cannot write " + path + ": cannot resolve the symbolic link", err);
      }
      o.target_ = real;
      std::free(real);
      if (::stat(o.target_.c_str(), &st) != 0) return Status::from_errno("cannot write " + path + " (" + o.target_ + ")");
    }
    if (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode)) {
      if (::access(o.target_.c_str(), W_OK) != 0) return Status::from_errno("cannot write " + path);
      o.kind_ = Kind::stream;
      return o;
    }
    if (!S_ISREG(st.st_mode))
      return Status::error(fmt::format("cannot write {}: it is {}, not a regular file, character device or FIFO",
                                       path, o.target_ != path ? "a symbolic link to " + std::string(file_kind(st.st_mode))
                                                               : file_kind(st.st_mode)),
                           S_ISDIR(st.st_mode) ? EISDIR : EINVAL);
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return Status::from_errno("cannot write " + path);  // TempFile::create names a missing directory
  }
  o.kind_ = Kind::atomic;
  return o;
}

Result<OutputFile> OutputFile::open(const std::string& path, Overwrite mode) {
  auto o = classify(path, mode);
  if (!o || o->kind_ != Kind::atomic) return o;
  auto temp = TempFile::create(o->target_);
  if (!temp) return temp.status();
  o->temp_.emplace(std::move(*temp));
  return o;
}

Status OutputFile::check(const std::string& path, Overwrite mode) {
  auto o = classify(path, mode);
  if (!o) return o.status();
  if (o->kind_ != Kind::atomic) return Status::ok();
  // What TempFile::create would find wrong, without creating anything.
  const std::string dir = dir_of(o->target_);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::from_errno("cannot write " + path + ": directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::error("cannot write " + path + ": " + dir + " is not a directory", ENOTDIR);
  if (base_of(o->target_).size() > NAME_MAX)
    return Status::error("cannot write " + path + ": the file name is longer than 255 bytes", ENAMETOOLONG);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) return Status::from_errno("cannot write " + path + ": directory " + dir);
  return Status::ok();
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : kind_(other.kind_),
      mode_(other.mode_),
      path_(std::move(other.path_)),
      target_(std::move(other.target_)),
      temp_(std::move(other.temp_)),
      stream_fd_(other.stream_fd_) {
  other.temp_.reset();
  other.stream_fd_ = -1;
}

OutputFile::~OutputFile() {
  if (stream_fd_ >= 0) ::close(stream_fd_);
}

Status OutputFile::write(std::string_view content) {
  switch (kind_) {
    case Kind::standard_output:
      std::fflush(stdout);
      return write_all(STDOUT_FILENO, content, "to standard output");
    case Kind::stream:
      if (stream_fd_ < 0) {
        // A FIFO blocks here until a reader opens it.
        stream_fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (stream_fd_ < 0) return Status::from_errno("cannot write " + path_);
      }
      return write_all(stream_fd_, content, path_);
    case Kind::atomic:
      return temp_ ? temp_->write(content) : Status::error("cannot write " + path_ + ": already committed", EBADF);
  }
  return Status::ok();
}

Status OutputFile::commit() {
  switch (kind_) {
    case Kind::standard_output:
      return Status::ok();
    case Kind::stream: {
      if (stream_fd_ < 0) {
        // Nothing was written: still open it, so a FIFO reader sees the end.
        if (Status s = write(""); s.failed()) return s;
      }
      int rc = ::close(stream_fd_);
      stream_fd_ = -1;
      if (rc != 0) return Status::from_errno("cannot write " + path_ + " (close)");
      return Status::ok();
    }
    case Kind::atomic: {
      if (!temp_) return Status::error("cannot write " + path_ + ": already committed", EBADF);
      Status s = temp_->commit(mode_);
      temp_.reset();  // removes the temporary unless it was published
      if (s.failed() && target_ != path_) return s.context(path_ + " -> " + target_);
      return s;
    }
  }
  return Status::ok();
}

Status write_file_atomic(const std::string& path, std::string_view content, Overwrite mode) {
  auto out = OutputFile::open(path, mode);
  if (!out) return out.status();
  if (Status s = out->write(content); s.failed()) return s;
  return out->commit();
}

}  // namespace rmapbench::results
