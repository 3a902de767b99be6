// The subcommands, one file each (cmd_NAME.cpp defines NAME_subcommand()),
// and the dispatcher that picks one: the CLI as a library, which main.cpp,
// the tests and the fuzzers link.
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
  std::string help;     // the full text of `rmapbench NAME --help`; empty: the command prints its own
  int (*run)(const std::vector<std::string>& args);  // args exclude the command name
};

Command ab_subcommand();
Command baseline_subcommand();
Command calibrate_subcommand();
Command check_subcommand();
Command compare_subcommand();
Command doctor_subcommand();
Command list_subcommand();
Command qemu_subcommand();
Command report_subcommand();
Command restore_subcommand();
Command run_subcommand();

// Every subcommand, sorted by name.
const std::vector<Command>& commands();

// `rmapbench ARGS...`: picks the command named by argv[1] and returns the
// process's exit code.
int run_rmapbench(int argc, char** argv);

// True when args ask for help (-h / --help anywhere).
bool wants_help(const std::vector<std::string>& args);

// Prints "rmapbench CMD: message" plus a hint to --help on stderr; returns kExitUsage.
int usage_error(const std::string& command, const std::string& message);

}  // namespace rmapbench::cli
