#include <fmt/core.h>

#include <algorithm>

#include "benchmarks/selfcheck/selfcheck.hpp"

namespace rmapbench::selfcheck {

static std::vector<Selfcheck>& all() {
  static std::vector<Selfcheck> v;
  return v;
}

int register_selfcheck(Selfcheck s) {
  all().push_back(std::move(s));
  return static_cast<int>(all().size());
}

}  // namespace rmapbench::selfcheck

int main(int argc, char** argv) {
  using rmapbench::selfcheck::all;
  std::vector<std::string> wanted(argv + 1, argv + argc);
  if (std::find(wanted.begin(), wanted.end(), "--help") != wanted.end() ||
      std::find(wanted.begin(), wanted.end(), "-h") != wanted.end()) {
    fmt::print(
        "Usage: rmapbench-selfcheck [NAME...]\n\n"
        "Compares workload figures with bare loops doing the same system calls and\n"
        "prints the ratios: the harness must add nothing measurable. Run it on a\n"
        "quiet host (nothing else running); it takes a few minutes.\n\nChecks:\n");
    for (const auto& s : all()) fmt::print("  {:<8} {}\n", s.name, s.what);
    fmt::print("\nExit status: 0 every ratio inside its band, 1 some outside, 2 usage error.\n");
    return 0;
  }
  int status = 0;
  for (const auto& w : wanted)
    if (std::none_of(all().begin(), all().end(), [&](const auto& s) { return s.name == w; })) {
      fmt::print(stderr, "rmapbench-selfcheck: unknown check '{}' (see --help)\n", w);
      return 2;
    }
  for (const auto& s : all()) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), s.name) == wanted.end()) continue;
    fmt::print("== {}: {}\n", s.name, s.what);
    status = std::max(status, s.run());
  }
  return status;
}
