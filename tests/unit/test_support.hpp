// What the unit tests share: reading and writing small files, the recorded
// host data of tests/data/host/, and a pipe for handshakes with a forked
// child whose every read has a timeout, so a broken test fails instead of
// hanging.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace rmapbench::testing {

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void spit(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// A file recorded from a real host under tests/data/host/.
inline std::string host_data(const std::string& name) { return std::string(RMAPBENCH_TEST_DATA_DIR) + "/host/" + name; }

class ChildPipe {
 public:
  ChildPipe() {
    int fds[2];
    if (pipe(fds) == 0) {
      r_ = fds[0];
      w_ = fds[1];
    }
  }
  ~ChildPipe() {
    if (r_ >= 0) close(r_);
    if (w_ >= 0) close(w_);
  }
  ChildPipe(const ChildPipe&) = delete;
  ChildPipe& operator=(const ChildPipe&) = delete;

  void send(long v) const { (void)!write(w_, &v, sizeof v); }
  // -1 on end of file or timeout.
  long receive(int timeout_ms = 10000) const {
    long v = -1;
    return read_exact(&v, sizeof v, timeout_ms) ? v : -1;
  }

  void send_text(const std::string& s) const {
    long n = static_cast<long>(s.size());
    (void)!write(w_, &n, sizeof n);
    (void)!write(w_, s.data(), s.size());
  }
  // "<nothing>" or "<short>" when the child sent no or a partial string.
  std::string receive_text(int timeout_ms = 10000) const {
    long n = 0;
    if (!read_exact(&n, sizeof n, timeout_ms) || n < 0 || n > 65536) return "<nothing>";
    std::string s(static_cast<size_t>(n), '\0');
    if (!read_exact(s.data(), s.size(), timeout_ms)) return "<short>";
    return s;
  }

 private:
  bool read_exact(void* buffer, size_t len, int timeout_ms) const {
    char* p = static_cast<char*>(buffer);
    for (size_t got = 0; got < len;) {
      pollfd pf{r_, POLLIN, 0};
      if (poll(&pf, 1, timeout_ms) <= 0) return false;
      ssize_t k = read(r_, p + got, len - got);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  }

  int r_ = -1, w_ = -1;
};

}  // namespace rmapbench::testing
