#include "runners/results/atomic_file.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_NOREPLACE
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace

Result<TempFile> TempFile::create(const std::string& final_path) {
  if (final_path.empty() || final_path.back() == '/') return Status::error("'" + final_path + "' is not a file name");
  std::string dir = dir_of(final_path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return Status::from_errno("cannot write " + final_path + ": directory " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::error("cannot write " + final_path + ": " + dir + " is not a directory", ENOTDIR);
  // Hidden, and ignored by git (*.partial) should it ever be left behind.
  std::string tmpl = (dir == "/" ? "" : dir) + "/." + base_of(final_path) + ".XXXXXX.partial";
  int fd = ::mkstemps(tmpl.data(), 8);
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
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("cannot write " + final_path_);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::ok();
}

Status TempFile::commit(Overwrite mode) {
  // The content may have been written by another process through the path.
  if (::fsync(fd_) != 0) return Status::from_errno("cannot write " + final_path_ + ": fsync");
  if (::close(fd_) != 0) {
    fd_ = -1;
    return Status::from_errno("cannot write " + final_path_ + ": close");
  }
  fd_ = -1;
  if (mode == Overwrite::replace) {
    if (::rename(temp_path_.c_str(), final_path_.c_str()) != 0)
      return Status::from_errno("cannot write " + final_path_ + ": rename");
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

Status write_file_atomic(const std::string& path, std::string_view content, Overwrite mode) {
  if (mode == Overwrite::refuse && ::access(path.c_str(), F_OK) == 0)
    return Status::error(path + " already exists; not overwritten", EEXIST);
  auto tmp = TempFile::create(path);
  if (!tmp) return tmp.status();
  if (Status s = tmp->write(content); s.failed()) return s;
  return tmp->commit(mode);
}

}  // namespace rmapbench::results
