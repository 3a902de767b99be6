#include "kernels/safety/knob_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/core.h>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::safety {

std::string parse_knob_value(const std::string& contents) { return sysfs::knob_value(contents); }

Result<std::string> read_knob(const std::string& path) {
  auto bytes = sysfs::read_file(path);
  if (!bytes) return Status::error("read " + bytes.status().message(), bytes.status().err());
  return parse_knob_value(*bytes);
}

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

bool same_knob_value(const std::string& a, const std::string& b) {
  std::string x = parse_knob_value(a), y = parse_knob_value(b);
  if (x == y) return true;
  long long nx = 0, ny = 0;
  auto rx = std::from_chars(x.data(), x.data() + x.size(), nx);
  auto ry = std::from_chars(y.data(), y.data() + y.size(), ny);
  return rx.ec == std::errc() && rx.ptr == x.data() + x.size() && ry.ec == std::errc() &&
         ry.ptr == y.data() + y.size() && nx == ny;
}

}  // namespace rmapbench::safety
