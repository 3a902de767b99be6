// Small-text helpers for procfs/sysfs: read a file, trim, pick the active
// choice out of "always [madvise] never".
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::sysfs {

// Reads until EOF rather than trusting st_size: procfs and sysfs files report
// size 0 (or 4096) whatever they hold.
inline Result<std::string> read_file(const std::string& path, size_t max_bytes = 16u << 20) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(path);
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::from_errno(path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return Status::error(path + ": larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

inline std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// "always [madvise] never" -> "madvise"; a plain value ("100\n") -> "100".
inline std::string knob_value(std::string_view text) {
  std::string_view t = trim(text);
  size_t open = t.find('[');
  if (open != std::string_view::npos) {
    size_t close = t.find(']', open + 1);
    if (close != std::string_view::npos) return std::string(t.substr(open + 1, close - open - 1));
  }
  return std::string(t);
}

// A knob's value, or "unknown (<why>)": facts are recorded even when unreadable.
inline std::string read_knob(const std::string& path) {
  auto text = read_file(path, 64u << 10);
  if (!text) return "unknown (" + text.status().message() + ")";
  return knob_value(*text);
}

inline std::vector<std::string_view> split_lines(std::string_view s) {
  std::vector<std::string_view> lines;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    lines.push_back(s.substr(0, nl));
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return lines;
}

inline std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> words;
  const char* ws = " \t\r\n";
  for (size_t b = s.find_first_not_of(ws); b != std::string_view::npos; b = s.find_first_not_of(ws, b)) {
    size_t e = s.find_first_of(ws, b);
    words.push_back(s.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
    if (e == std::string_view::npos) break;
    b = e;
  }
  return words;
}

// The whole of `s` as a decimal integer, or nullopt.
inline std::optional<long long> parse_ll(std::string_view s) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace rmapbench::sysfs
