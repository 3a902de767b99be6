// rmapbench: one binary, one subcommand per file.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "runners/cli/command.hpp"

namespace rmapbench::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> all = [] {
    std::vector<Command> c = {ab_subcommand(),     baseline_subcommand(), calibrate_subcommand(), check_subcommand(),
                              compare_subcommand(), doctor_subcommand(),   list_subcommand(),      qemu_subcommand(),
                              report_subcommand(),  restore_subcommand(),  run_subcommand()};
    std::sort(c.begin(), c.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return c;
  }();
  return all;
}

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "-h" || a == "--help"; });
}

int usage_error(const std::string& command, const std::string& message) {
  fmt::print(stderr, "rmapbench {}: {}\nTry 'rmapbench {} --help'.\n", command, message, command);
  return kExitUsage;
}

namespace {

void print_main_help() {
  fmt::print(
      "rmapbench - microbenchmarks and correctness checks for the kernel's reverse-mapping (rmap) paths\n\n"
      "Usage: rmapbench COMMAND [OPTIONS]\n\nCommands:\n");
  for (const auto& c : commands()) fmt::print("  {:<10} {}\n", c.name, c.summary);
  fmt::print(
      "\nRun 'rmapbench COMMAND --help' for the options of one command.\n"
      "Exit codes: 0 success, 1 a workload failed or a regression was flagged,\n"
      "            2 usage or input error, 130 interrupted (partial results kept).\n");
}

}  // namespace

int run_rmapbench(int argc, char** argv) {
  if (argc < 2) {
    print_main_help();
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_main_help();
    return kExitOk;
  }
  if (name == "--version") {
    fmt::print("rmapbench {}\n", RMAPBENCH_VERSION);
    return kExitOk;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const auto& c : commands()) {
    if (c.name != name) continue;
    // Help anywhere wins over everything else on the line, as it always has;
    // a command with no help text of its own (qemu) prints it itself.
    if (wants_help(args) && !c.help.empty()) {
      fmt::print("{}", c.help);
      return kExitOk;
    }
    // Nothing escapes: an exception no command expected (a file system
    // error, memory) is a clear message and the input-error exit code, not
    // std::terminate's abort.
    try {
      return c.run(args);
    } catch (const std::exception& e) {
      fmt::print(stderr, "rmapbench {}: unexpected error: {}\n", name, e.what());
    } catch (...) {
      fmt::print(stderr, "rmapbench {}: unexpected error (unknown exception)\n", name);
    }
    return kExitUsage;
  }
  fmt::print(stderr, "rmapbench: unknown command '{}'\n", name);
  print_main_help();
  return kExitUsage;
}

}  // namespace rmapbench::cli
