// rmapbench qemu / rmapbench ab: QEMU test hosts. The runners are shell
// scripts (runners/qemu/rmapbench-qemu, rmapbench-ab): they drive apt, cpio
// and QEMU, which is shell's work; these commands find them and hand them
// this binary, so the guest runs (and the A/B compares with) exactly the
// rmapbench that was called.
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "runners/cli/command.hpp"

namespace rmapbench::cli {

namespace {

int exec_runner(const char* script, const std::vector<std::string>& args) {
  const char* dir = std::getenv("RMAPBENCH_QEMU_RUNNERS");
  const std::string runner = std::string(dir && *dir ? dir : RMAPBENCH_SOURCE_DIR "/runners/qemu") + "/" + script;
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    setenv("RMAPBENCH_BINARY", self, 0);
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(runner.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv(runner.c_str(), argv.data());
  fmt::print(stderr, "rmapbench: cannot run {}: {} (set RMAPBENCH_QEMU_RUNNERS to the runners/qemu directory)\n",
             runner, std::strerror(errno));
  return kExitUsage;
}

int run_qemu(const std::vector<std::string>& args) { return exec_runner("rmapbench-qemu", args); }
int run_ab(const std::vector<std::string>& args) { return exec_runner("rmapbench-ab", args); }

}  // namespace

// Empty help: the runners print their own (`rmapbench qemu --help`), which
// stays the one text to keep up to date.
Command qemu_subcommand() {
  return {"qemu", "boot a kernel in a QEMU guest (any NUMA topology), run rmapbench inside", "", run_qemu};
}
Command ab_subcommand() {
  return {"ab", "A/B two kernels in QEMU guests, alternating boots, and compare", "", run_ab};
}

}  // namespace rmapbench::cli
