// Where the compare/check/report commands send what they render, and the
// pipeline `compare` and `check` share (load, compare, render, write); their
// options are read by runners/cli/compare_options.hpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/status.hpp"
#include "runners/compare/compare.hpp"
#include "runners/compare/report.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::report {

// Writes `text` to `out_path` atomically (temp + fsync + rename), or to
// stdout when `out_path` is empty.
Status emit(const std::string& text, const std::string& out_path);

// Colour for the text format: --color always/never, or (auto) stdout is a
// terminal, TERM is not "dumb" and NO_COLOR is unset.
enum class ColorMode { auto_detect, always, never };
bool use_color(ColorMode mode, bool writing_to_file);

struct Request {
  compare::Options options;
  Format format = Format::text;
  std::string out;  // empty: stdout
  ColorMode color = ColorMode::auto_detect;
};

// Compares two loaded files, renders in the requested format and writes it.
// Returns whether a regression (or a failed benchmark in NEW) was flagged;
// fails on incompatible or unusable input, or when the output cannot be written.
Result<bool> compare_and_emit(const results::ResultsFile& base, const results::ResultsFile& next, const Request& r);

}  // namespace rmapbench::report
