#include "runners/cli/command_line.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <stdexcept>

#include "runners/cli/command.hpp"

namespace rmapbench::cli {

void use_command_conventions(CLI::App& app) {
  app.set_help_flag();
  app.allow_extras();
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

CLI::Option* repeatable(CLI::Option* option) {
  // One value per occurrence: a vector option would otherwise also take the
  // positional arguments that follow it.
  return option->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

std::vector<std::string> parse_arguments(CLI::App& app, const std::vector<std::string>& args, Extras extras) {
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them last first
  try {
    app.parse(reversed);
  } catch (const CLI::ArgumentMismatch& e) {
    // "--filter: 1 required TEXT missing": the option ended the line.
    const std::string what = e.what();
    if (what.ends_with(" missing") && what.find(':') != std::string::npos)
      throw std::invalid_argument(what.substr(0, what.find(':')) + " needs a value");
    throw std::invalid_argument(what);
  } catch (const CLI::ParseError& e) {
    throw std::invalid_argument(e.what());
  }
  std::vector<std::string> rest = app.remaining();
  if (extras == Extras::refuse && !rest.empty())
    throw std::invalid_argument(fmt::format("unknown option '{}'", rest.front()));
  return rest;
}

CommandLine::CommandLine(std::string command_name) : command(std::move(command_name)) { use_command_conventions(app); }

bool CommandLine::parse(const std::vector<std::string>& args, Extras kept) {
  try {
    extras = parse_arguments(app, args, kept);
  } catch (const std::invalid_argument& e) {
    usage_error(command, e.what());
    return false;
  }
  return true;
}

}  // namespace rmapbench::cli
