#include "runners/compare/output.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "runners/results/atomic_file.hpp"

namespace rmapbench::report {

Status emit(const std::string& text, const std::string& out_path) {
  // The output-path rules (atomic_file.hpp): "-" is stdout, a device or FIFO is
  // streamed to, a symlink followed, only a regular file replaced.
  if (!out_path.empty() && out_path != "-") return results::write_file_atomic(out_path, text);
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0)
    return Status::from_errno("write to standard output");
  return Status::ok();
}

bool use_color(ColorMode mode, bool writing_to_file) {
  if (mode != ColorMode::auto_detect) return mode == ColorMode::always;
  if (writing_to_file || !::isatty(STDOUT_FILENO)) return false;
  if (const char* nc = std::getenv("NO_COLOR"); nc && *nc) return false;
  const char* term = std::getenv("TERM");
  return term && *term && std::strcmp(term, "dumb") != 0;
}

}  // namespace rmapbench::report

namespace rmapbench::report {

std::optional<std::string> parse_request_option(const std::vector<std::string>& args, size_t& i, Request& r) {
  const std::string& arg = args[i];
  auto eq = arg.find('=');
  std::string name = arg.starts_with("--") && eq != std::string::npos ? arg.substr(0, eq) : arg;
  if (name != "--format" && name != "--out" && name != "--color" && name != "-o")
    return compare::parse_option(args, i, r.options);
  std::string value;
  if (name != arg) {
    value = arg.substr(eq + 1);
  } else if (i + 1 < args.size()) {
    value = args[++i];
  } else {
    return name + " needs a value";
  }
  if (name == "--format") {
    auto f = parse_format(value);
    if (!f) return "--format " + value + ": expected text, email, markdown, json or junit";
    r.format = *f;
  } else if (name == "--out" || name == "-o") {
    if (value.empty()) return "--out needs a file name";
    r.out = value;
  } else {
    if (value == "auto") {
      r.color = ColorMode::auto_detect;
    } else if (value == "always") {
      r.color = ColorMode::always;
    } else if (value == "never") {
      r.color = ColorMode::never;
    } else {
      return "--color " + value + ": expected auto, always or never";
    }
  }
  return std::string();
}

const char* request_options_help() {
  return "  --format F           text (default; aligned, coloured on a terminal,\n"
         "                       regressions first), email (plain ASCII, <= 72 columns,\n"
         "                       0-day robot style rows, for a patch posting),\n"
         "                       markdown, json (every number), junit (CI)\n"
         "  --out FILE           write the report to FILE (atomically; a device or FIFO\n"
         "                       is written to in place; - is stdout) instead of stdout\n"
         "  --color WHEN         auto (default), always or never (text format only)\n";
}

Result<bool> compare_and_emit(const results::ResultsFile& base, const results::ResultsFile& next, const Request& r) {
  auto c = compare::compare(base, next, r.options);
  if (!c) return c.status();
  std::string text = render(*c, r.format, use_color(r.color, !r.out.empty() && r.out != "-"));
  if (Status s = emit(text, r.out); s.failed()) return s;
  return c->regressed();
}

}  // namespace rmapbench::report
