// The gnuplot writer of `report --plot` (runners/compare/summary.hpp), fed
// with strings from results files (fuzz_input_results.hpp), and directly
// with a ScalingPlot whose strings are the raw input (what the loader's own
// cleaning would hide). Properties: the script holds only the commands the
// writer means to write (every line starts with one of them), each quoted
// string ends on its line, and no quote, backslash, backtick or '$' from
// the input gets in; data lines are four numbers; the stem is a short,
// plain file name.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runners/compare/summary.hpp"
#include "tests/fuzz/fuzz_common.hpp"
#include "tests/fuzz/fuzz_input_results.hpp"

using namespace rmapbench;

namespace {

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

void check_script(const std::string& script) {
  static const std::vector<std::string> starts = {"# ",    "set ",   "plot ", "     ",
                                                 "replot", "unset "};
  for (const auto& line : split_lines(script)) {
    bool known = false;
    for (const auto& s : starts) known = known || line.rfind(s, 0) == 0;
    if (!known) fuzz::broken("gnuplot script line not written by the writer: " + line);
    if (line.rfind("# ", 0) == 0) continue;
    size_t quotes = 0;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '\'') ++quotes;
      if (c == '\\' && i + 1 == line.size()) continue;  // a continuation line
      if (c == '"' || c == '`' || c == '$' || c == '\\' || c == '\r' || static_cast<unsigned char>(c) < 0x20)
        fuzz::broken("gnuplot script carries a character from the input it must not: " + line);
    }
    if (quotes % 2 != 0) fuzz::broken("a quoted string does not end on its line: " + line);
  }
}

void check_data(const std::string& data) {
  for (const auto& line : split_lines(data)) {
    if (line.empty() || line[0] == '#') continue;
    for (char c : line)
      if (!(std::isdigit(static_cast<unsigned char>(c)) || c == ' ' || c == '.' || c == '-' || c == '+' || c == 'e' ||
            c == 'i' || c == 'n' || c == 'f' || c == 'a'))
        fuzz::broken("data line is not numbers: " + line);
  }
  for (char c : data)
    if (c == '\r' || (static_cast<unsigned char>(c) < 0x20 && c != '\n')) fuzz::broken("control character in data");
}

void check_plot(const report::ScalingPlot& p) {
  if (p.stem.empty() || p.stem.size() > 100) fuzz::broken("stem empty or too long: " + p.stem);
  for (char c : p.stem)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~'))
      fuzz::broken("stem is not a plain file name: " + p.stem);
  check_data(report::gnuplot_data(p));
  check_script(report::gnuplot_script(p, p.stem + ".dat", "." + p.stem + ".png.AbC123.partial", p.stem + ".svg"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto rf = fuzz::results_from_input(text, "fuzz/plot.json")) {
    std::vector<results::ResultsFile> files{*rf, *rf};
    files[1].context["variant"] += "-b";
    for (const auto& p : report::scaling_plots(files)) check_plot(p);
  }
  // The writer on its own, with raw strings.
  const auto f = fuzz::nul_fields(text, 4);
  report::ScalingPlot p;
  p.family = f[0] + "/vmas:*";
  p.parameter = f[1].empty() ? "vmas" : f[1];
  p.unit = f[2];
  p.stem = "plain-vs-vmas";
  p.series.push_back({f[3], {{1, 2, 1, 3}, {64, 5, 4, 6}}});
  p.series.push_back({f[0], {{1, 2, 1, 3}}});
  check_data(report::gnuplot_data(p));
  check_script(report::gnuplot_script(p, p.stem + ".dat", p.stem + ".png", p.stem + ".svg"));
  return 0;
}
