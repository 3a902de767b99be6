// What the tests share (unit and integration): reading and writing small
// files, a temporary directory, the recorded host data of tests/data/host/,
// and a pipe for handshakes with a forked child whose every read has a
// timeout, so a broken test fails instead of hanging.
#pragma once

#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "kernels/safety/children.hpp"

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

// A fresh empty directory under $TMPDIR, removed with everything in it.
struct TempDir {
  explicit TempDir(const std::string& prefix = "rmapbench-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
};

// A temporary directory whose state/ is RMAPBENCH_STATE_DIR while it lives,
// so a test's knob journal and run lock never touch the host's.
struct TempStateDir : TempDir {
  explicit TempStateDir(const std::string& prefix) : TempDir(prefix), state(path + "/state") {
    setenv("RMAPBENCH_STATE_DIR", state.c_str(), 1);
  }
  ~TempStateDir() { unsetenv("RMAPBENCH_STATE_DIR"); }
  std::string state;
};

// True once `pid` is gone (or a zombie), polled until `limit`.
inline bool dead_within(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!safety::process_alive(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return !safety::process_alive(pid);
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
