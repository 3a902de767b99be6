// The human-readable renderings of a comparison (text for the terminal,
// markdown, junit XML, email) and `report`'s summary, fed with results files
// holding hostile strings (fuzz_input_results.hpp). Properties: no control
// character but '\n' reaches any of them (no terminal escape, no CR, nothing
// XML forbids), every table row of the markdown has its columns (no '|'
// from the input splits a cell), every email line is printable ASCII within
// 72 columns, the XML text is valid UTF-8.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runners/compare/compare.hpp"
#include "runners/compare/report.hpp"
#include "runners/compare/summary.hpp"
#include "tests/fuzz/fuzz_common.hpp"
#include "tests/fuzz/fuzz_input_results.hpp"

using namespace rmapbench;

namespace {

void no_controls(const std::string& out, const char* format, bool allow_color) {
  for (size_t i = 0; i < out.size(); ++i) {
    const auto c = static_cast<unsigned char>(out[i]);
    if (c == 0x1b && allow_color) continue;
    if ((c < 0x20 && c != '\n') || c == 0x7f) fuzz::broken(std::string(format) + ": control character " + std::to_string(c));
    if (c == 0xc2 && i + 1 < out.size() && static_cast<unsigned char>(out[i + 1]) >= 0x80 &&
        static_cast<unsigned char>(out[i + 1]) <= 0x9f)
      fuzz::broken(std::string(format) + ": C1 control character");
  }
  if (allow_color) return;
  // Valid UTF-8: printable_text keeps it as is (line by line: it maps '\n').
  size_t pos = 0;
  while (pos <= out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::string line = out.substr(pos, nl - pos);
    if (results::printable_text(line) != line) fuzz::broken(std::string(format) + ": not valid UTF-8: " + line);
    pos = nl + 1;
  }
}

void markdown_columns(const std::string& md) {
  size_t pos = 0;
  while (pos < md.size()) {
    size_t nl = md.find('\n', pos);
    if (nl == std::string::npos) nl = md.size();
    std::string line = md.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.empty() || line[0] != '|') continue;
    size_t bars = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '\\') {
        ++i;  // an escaped character
      } else if (line[i] == '|') {
        ++bars;
      }
    }
    if (bars != 4 && bars != 12) fuzz::broken("markdown row with " + std::to_string(bars) + " bars: " + line);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto rf = fuzz::results_from_input(text, "fuzz/report.json");
  if (!rf || rf->benchmarks.size() > 16) return 0;
  results::ResultsFile next = *rf;
  next.context["variant"] += "-next";
  next.path = "fuzz/next.json";

  no_controls(report::render_summary({*rf}), "report (one file)", false);
  no_controls(report::render_summary({*rf, next}), "report (two files)", false);

  compare::Options options;
  options.bootstrap_resamples = 20;
  options.force = true;
  auto c = compare::compare(*rf, next, options);
  if (!c) return 0;
  no_controls(report::render_text(*c, false), "text", false);
  no_controls(report::render_text(*c, true), "text (colour)", true);
  const std::string md = report::render_markdown(*c);
  no_controls(md, "markdown", false);
  markdown_columns(md);
  no_controls(report::render_junit(*c), "junit", false);
  const std::string email = report::render_email(*c);
  size_t pos = 0;
  while (pos < email.size()) {
    size_t nl = email.find('\n', pos);
    if (nl == std::string::npos) nl = email.size();
    std::string line = email.substr(pos, nl - pos);
    pos = nl + 1;
    if (line.size() > report::kEmailWidth) fuzz::broken("email line over 72 columns: " + line);
    for (char ch : line)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) > 0x7e)
        fuzz::broken("email line not printable ASCII: " + line);
  }
  return 0;
}
