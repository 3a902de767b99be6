#include "run_rmapbench.hpp"

#include "kernels/process/subprocess.hpp"

namespace rmapbench::testing {

Outcome run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env, int timeout_seconds) {
  proc::Spawn spawn;
  spawn.argv = argv;
  spawn.env = env;
  spawn.capture_stdout = true;
  spawn.capture_stderr = true;
  spawn.timeout_seconds = timeout_seconds;
  auto ran = proc::run(spawn);
  // Not started at all: what a shell reports for a command it cannot run.
  if (!ran) return Outcome{127, "", ran.status().message()};
  return Outcome{ran->exit_code, std::move(ran->out), std::move(ran->err)};
}

Outcome run_rmapbench(const std::vector<std::string>& args, const std::vector<std::string>& env, int timeout_seconds) {
  std::vector<std::string> argv{RMAPBENCH_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env, timeout_seconds);
}

std::string describe(const Outcome& o) {
  return "exit " + std::to_string(o.exit_code) + "\nstdout:\n" + o.out + "\nstderr:\n" + o.err;
}

}  // namespace rmapbench::testing
