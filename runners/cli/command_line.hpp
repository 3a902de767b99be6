// How every subcommand reads its arguments: a CLI11 App per command, with the
// conventions the hand-written parsers had, so options, values and messages
// stay what the README documents.
//   - a repeated option keeps its last value (a repeatable one, such as
//     --sweep, declares itself with repeatable());
//   - a value may start with '-' (--filter -cow);
//   - help is the command's own text (the dispatcher prints it), so the Apps
//     have no help flag;
//   - a parse error is one line naming the option (std::invalid_argument),
//     which the command turns into exit 2.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace rmapbench::cli {

// An App with the conventions above. What it does not recognise is kept in
// order for the command (pass-through flags, run options for calibrate) when
// `extras` is Extras::keep, and refused as "unknown option 'X'" otherwise.
enum class Extras { refuse, keep };
void use_command_conventions(CLI::App& app);

// Marks an option as taking one value per occurrence and keeping all of them.
CLI::Option* repeatable(CLI::Option* option);

// Parses `args` (the command's arguments, in order, without its name).
// Returns the arguments `app` did not recognise, in order (empty with
// Extras::refuse). Throws std::invalid_argument with the message for the user.
std::vector<std::string> parse_arguments(CLI::App& app, const std::vector<std::string>& args, Extras extras);

// Whether `option` was given on the command line (possibly with an empty value).
inline bool given(const CLI::Option* option) { return option->count() > 0; }

// A subcommand's parser: its App, with the conventions above.
struct CommandLine {
  explicit CommandLine(std::string command_name);
  // Parses `args`; on a usage error prints it ("rmapbench NAME: ...", see
  // usage_error) and returns false: the command then exits 2.
  bool parse(const std::vector<std::string>& args, Extras extras = Extras::refuse);

  std::string command;
  CLI::App app;
  std::vector<std::string> extras;  // with Extras::keep: what app did not recognise, in order
};

}  // namespace rmapbench::cli
