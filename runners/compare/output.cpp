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

Result<bool> compare_and_emit(const results::ResultsFile& base, const results::ResultsFile& next, const Request& r) {
  auto c = compare::compare(base, next, r.options);
  if (!c) return c.status();
  std::string text = render(*c, r.format, use_color(r.color, !r.out.empty() && r.out != "-"));
  if (Status s = emit(text, r.out); s.failed()) return s;
  return c->regressed();
}

}  // namespace rmapbench::report
