// Subcommands register themselves, one file each:
//   RMAPBENCH_COMMAND(doctor, {"doctor", "report this host's facts and warnings", kDoctorHelp, run_doctor});
#pragma once

#include <string>
#include <vector>

namespace rmapbench::cli {

// Documented exit codes (README.md, "Exit codes").
enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,     // a workload failed / its oracle caught the kernel, or a regression was flagged
  kExitUsage = 2,       // bad options, unreadable or corrupt input, unwritable output, lock held
  kExitInterrupted = 130,  // SIGINT/SIGTERM/SIGHUP: partial results written, marked incomplete
};

struct Command {
  std::string name;
  std::string summary;  // one line for `rmapbench --help`
  std::string help;     // the full text of `rmapbench NAME --help`
  int (*run)(const std::vector<std::string>& args);  // args exclude the command name
};

int register_command(Command c);
const std::vector<Command>& commands();

// True when args ask for help (-h / --help anywhere).
bool wants_help(const std::vector<std::string>& args);

// Prints "rmapbench CMD: message" plus a hint to --help on stderr; returns kExitUsage.
int usage_error(const std::string& command, const std::string& message);

}  // namespace rmapbench::cli

#define RMAPBENCH_COMMAND_CONCAT_INNER(a, b) a##b
#define RMAPBENCH_COMMAND_CONCAT(a, b) RMAPBENCH_COMMAND_CONCAT_INNER(a, b)
#define RMAPBENCH_COMMAND(ident, ...) \
  [[maybe_unused]] static const int RMAPBENCH_COMMAND_CONCAT(rmapbench_command_, ident) = ::rmapbench::cli::register_command(__VA_ARGS__)
