// rmapbench qemu: boot a kernel in a QEMU guest and run rmapbench inside.
// The runner is a shell script (runners/qemu/rmapbench-qemu): it drives
// apt, cpio and QEMU, which is shell's work; this command finds it and
// hands it this binary, so the guest runs exactly the rmapbench that was
// called.
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "runners/cli/command.hpp"

namespace rmapbench::cli {

namespace {

int run_qemu(const std::vector<std::string>& args) {
  const char* env = std::getenv("RMAPBENCH_QEMU_RUNNER");
  const std::string runner = env && *env ? env : RMAPBENCH_SOURCE_DIR "/runners/qemu/rmapbench-qemu";
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
  fmt::print(stderr, "rmapbench qemu: cannot run {}: {} (set RMAPBENCH_QEMU_RUNNER to the script's path)\n", runner,
             std::strerror(errno));
  return kExitUsage;
}

}  // namespace

// Empty help: the runner prints its own (`rmapbench qemu --help`), which
// stays the one text to keep up to date.
RMAPBENCH_COMMAND(qemu, {"qemu", "boot a kernel in a QEMU guest (any NUMA topology), run rmapbench inside", "",
                         run_qemu});

}  // namespace rmapbench::cli
