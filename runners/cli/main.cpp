// rmapbench: one binary, subcommands registered by their own files.
#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <exception>

#include "command.hpp"

namespace rmapbench::cli {

namespace {
std::vector<Command>& mutable_commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace

int register_command(Command c) {
  auto& all = mutable_commands();
  all.push_back(std::move(c));
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return static_cast<int>(all.size());
}

const std::vector<Command>& commands() { return mutable_commands(); }

bool wants_help(const std::vector<std::string>& args) {
  return std::any_of(args.begin(), args.end(), [](const std::string& a) { return a == "-h" || a == "--help"; });
}

int usage_error(const std::string& command, const std::string& message) {
  fmt::print(stderr, "rmapbench {}: {}\nTry 'rmapbench {} --help'.\n", command, message, command);
  return kExitUsage;
}

static void print_main_help() {
  fmt::print(
      "rmapbench - microbenchmarks and correctness checks for the kernel's reverse-mapping (rmap) paths\n\n"
      "Usage: rmapbench COMMAND [OPTIONS]\n\nCommands:\n");
  for (const auto& c : commands()) fmt::print("  {:<10} {}\n", c.name, c.summary);
  fmt::print(
      "\nRun 'rmapbench COMMAND --help' for the options of one command.\n"
      "Exit codes: 0 success, 1 a workload failed or a regression was flagged,\n"
      "            2 usage or input error, 130 interrupted (partial results kept).\n");
}

}  // namespace rmapbench::cli

int main(int argc, char** argv) {
  using namespace rmapbench::cli;
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
    // A command with no help text of its own (qemu) prints it itself.
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
