// rmapbench compare BASE NEW: did NEW regress against BASE?
#include <fmt/core.h>

#include <algorithm>
#include <string>
#include <vector>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/cli/compare_options.hpp"
#include "runners/compare/output.hpp"
#include "runners/compare/noise_profile.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::cli {

namespace {

std::string compare_help() {
  return fmt::format(
      "Usage: rmapbench compare BASE NEW [OPTIONS]\n"
      "       rmapbench compare BASE... -- NEW... [OPTIONS]\n"
      "\n"
      "Each side may be several files (each one or more separate runs: rmapbench\n"
      "run --runs K); their runs are pooled. Runs are the unit of replication:\n"
      "with several runs on a side, or the host's noise profile (rmapbench\n"
      "calibrate), the run medians are compared, so drift between runs widens\n"
      "the interval instead of raising a flag. Only primary metrics (the timed\n"
      "operation, kernel object counts) flag; diagnostic counters are shown.\n"
      "Every \"no change\" says the smallest change it could have seen.\n"
      "\n"
      "Compare two results files (rmapbench run output, or any Google Benchmark\n"
      "JSON) benchmark by benchmark and metric by metric, and say what got\n"
      "slower or faster - only where the difference is statistically\n"
      "significant AND larger than a practical threshold.\n"
      "\n"
      "For every metric (real_time and each counter; the direction, lower or\n"
      "higher is better, and the kind, statistical or exact, come from the\n"
      "file's rmapbench.metrics table): median and spread of each side, the\n"
      "change in %, a 95% bootstrap confidence interval of the ratio of medians\n"
      "and a two-sided Mann-Whitney U p-value, corrected for the number of\n"
      "comparisons in the report. Verdicts: regression, improvement, no change,\n"
      "noisy (too few repetitions or too much spread; the reason is given),\n"
      "only in base, only in new, skipped, error (failed in NEW). Exact metrics\n"
      "(kernel object counts) are compared exactly when every repetition agrees,\n"
      "else statistically (the reason says so).\n"
      "\n"
      "Results from different arch, hosts (CPU model, CPU count, NUMA layout,\n"
      "memory), emulated vs native, or different THP/KSM knob values are refused\n"
      "with the list of differences, unless --force.\n"
      "\n"
      "Options:\n"
      "{}"
      "\n"
      "Exit status:\n"
      "  0  no regression flagged\n"
      "  1  a regression was flagged, or a benchmark failed in NEW\n"
      "  2  usage error, unreadable/corrupt/incompatible input, unwritable --out\n"
      "\n"
      "Example:\n"
      "  rmapbench compare stock.json lazy.json --format email --threshold fork_us=5\n",
      ComparisonOptions::help());
}

// BASE... [OPTIONS] -- NEW... [OPTIONS]: options may come on either side of
// the '--', so each side is parsed on its own.
int run_compare(const std::vector<std::string>& args) {
  const auto separator = std::find(args.begin(), args.end(), "--");
  if (separator != args.end() && std::find(separator + 1, args.end(), "--") != args.end())
    return usage_error("compare", "'--' given twice");
  report::Request request;
  noise::Choice noise_choice;
  std::vector<std::string> files, next_files;
  for (auto [part, side] : {std::pair{std::vector<std::string>(args.begin(), separator), &files},
                            std::pair{std::vector<std::string>(separator == args.end() ? separator : separator + 1,
                                                               args.end()),
                                      &next_files}}) {
    CommandLine line("compare");
    ComparisonOptions options(line.app);
    line.app.add_option("FILE", *side);
    if (!line.parse(part)) return kExitUsage;
    if (auto err = options.apply(request, noise_choice)) return usage_error("compare", *err);
  }
  if (separator == args.end()) {
    if (files.size() != 2)
      return usage_error("compare", fmt::format("expected two results files (BASE NEW), or BASE... -- NEW..., got {}",
                                                files.size()));
    next_files.push_back(files.back());
    files.pop_back();
  }
  if (files.empty() || next_files.empty())
    return usage_error("compare", "BASE... -- NEW...: each side needs at least one results file");

  std::vector<results::ResultsFile> loaded;
  for (const auto* side : {&files, &next_files}) {
    auto r = noise::load_side(*side, request.options.force);
    if (!r) {
      fmt::print(stderr, "rmapbench compare: {}\n", r.status().message());
      return kExitUsage;
    }
    loaded.push_back(std::move(*r));
  }
  if (Status s = noise::attach(noise_choice, loaded[0], request.options); s.failed()) {
    fmt::print(stderr, "rmapbench compare: {}\n", s.message());
    return kExitUsage;
  }
  auto regressed = report::compare_and_emit(loaded[0], loaded[1], request);
  if (!regressed) {
    fmt::print(stderr, "rmapbench compare: {}\n", regressed.status().message());
    return kExitUsage;
  }
  if (!request.out.empty())
    fmt::print(stderr, "rmapbench compare: wrote {}{}\n", request.out, *regressed ? " (regression flagged)" : "");
  return *regressed ? kExitFailure : kExitOk;
}

}  // namespace

Command compare_subcommand() {
  return {"compare", "compare two results files and flag significant regressions", compare_help(), run_compare};
}

}  // namespace rmapbench::cli
