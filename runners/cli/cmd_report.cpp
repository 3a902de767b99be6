// rmapbench report RESULT...: a readable summary, and scaling plots.
#include <fmt/core.h>

#include <string>
#include <vector>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/compare/output.hpp"
#include "runners/compare/summary.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::cli {

namespace {

constexpr const char* kReportHelp = R"HELP(Usage: rmapbench report RESULT... [--plot DIR] [--out FILE]

A readable summary of one or more results files.

With one file: for each benchmark and metric the median, the spread (CV in %
and MAD), min, max and the number of repetitions; then every skipped
benchmark with its reason and every failed one with its error.
With several files (e.g. one per kernel): one column per file, each value
after the first shown as "median (+x.x%)" against the first file, in the
style of mmtests' compare-kernels. No statistics are made here - use
'rmapbench compare' to decide what changed.

--plot DIR draws scaling curves with gnuplot (found on PATH): for every
family of benchmarks whose names differ in one numeric key:value component
(fork_storm/fork_exit_wait/vmas:1, .../vmas:64, .../vmas:1000 -> latency
vs vmas), the median real_time against that parameter, with MAD error bars,
one line per kernel (labelled kernel_release + variant from the results'
context). Into DIR go <family>-vs-<param>.png and .svg, plus the .dat data
and the .gp script that draws them (cd DIR && gnuplot NAME.gp re-draws).
Every file is written atomically.

Options:
  --plot DIR    draw the scaling plots into DIR (created if missing)
  --out FILE    write the summary to FILE (atomically) instead of stdout

Exit status:
  0  summarized (and plotted)
  1  a results file holds a failed benchmark ("error: ..." - a workload or
     its oracle failed)
  2  usage error, unreadable or invalid input, gnuplot missing or failing,
     DIR or FILE not writable
)HELP";

int run_report(const std::vector<std::string>& args) {
  std::string plot_dir, out;
  std::vector<std::string> paths;
  CommandLine line("report");
  CLI::Option* plot_option = line.app.add_option("--plot", plot_dir);
  CLI::Option* out_option = line.app.add_option("-o,--out", out);
  line.app.add_option("RESULT", paths);
  if (!line.parse(args)) return kExitUsage;
  for (const auto& [option, value] : {std::pair{plot_option, &plot_dir}, std::pair{out_option, &out}})
    if (given(option) && value->empty()) return usage_error("report", option->get_name() + " needs a value");
  if (paths.empty()) return usage_error("report", "expected at least one results file");

  std::vector<results::ResultsFile> files;
  for (const auto& p : paths) {
    auto r = results::load_results(p);
    if (!r) {
      fmt::print(stderr, "rmapbench report: {}\n", r.status().message());
      return kExitUsage;
    }
    files.push_back(std::move(*r));
  }
  if (Status s = report::emit(report::render_summary(files), out); s.failed()) {
    fmt::print(stderr, "rmapbench report: {}\n", s.message());
    return kExitUsage;
  }
  if (!plot_dir.empty()) {
    auto plots = report::scaling_plots(files);
    if (plots.empty()) {
      fmt::print(stderr,
                 "rmapbench report: nothing to plot: no benchmark family has two or more values of a numeric "
                 "key:value name component (e.g. vmas:1 and vmas:1000)\n");
    } else {
      auto written = report::draw_plots(plots, plot_dir);
      if (!written) {
        fmt::print(stderr, "rmapbench report: {}\n", written.status().message());
        return kExitUsage;
      }
      for (const auto& w : *written) fmt::print(stderr, "rmapbench report: wrote {}\n", w);
    }
  }
  for (const auto& f : files)
    for (const auto& b : f.benchmarks)
      if (b.error_message) return kExitFailure;
  return kExitOk;
}

}  // namespace

Command report_subcommand() {
  return {"report", "summarize results files; --plot draws scaling curves with gnuplot", kReportHelp, run_report};
}

}  // namespace rmapbench::cli
