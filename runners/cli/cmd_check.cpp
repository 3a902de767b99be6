// rmapbench check [RESULT]: compare a result (or a fresh quick run) with the
// baseline of its host and kernel; the CI gate.
#include <fmt/core.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/cli/compare_options.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/compare/noise_profile.hpp"
#include "runners/compare/output.hpp"
#include "kernels/process/subprocess.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::cli {

namespace {

std::string check_help() {
  return fmt::format(
      "Usage: rmapbench check [RESULT...] [OPTIONS]\n"
      "\n"
      "Compare RESULT with the baseline saved for its arch, host and kernel\n"
      "(DIR/<arch>/<host-id>/<kernel-release>-<variant>.json, see 'rmapbench\n"
      "baseline --help'), exactly as 'rmapbench compare BASELINE RESULT' would.\n"
      "Without RESULT, a fresh 'rmapbench run --profile quick' is started first\n"
      "(its progress goes to stderr; its results to a temporary file that is\n"
      "removed afterwards - use 'rmapbench run --out FILE' then 'check FILE' to\n"
      "keep them).\n"
      "\n"
      "Options:\n"
      "  --dir DIR            baselines directory (default: $RMAPBENCH_BASELINE_DIR,\n"
      "                       else ./baselines)\n"
      "  --baseline FILE      compare with FILE instead of the matching baseline\n"
      "                       (repeat it to pool several baseline runs; several\n"
      "                       RESULT files pool the new side's runs likewise)\n"
      "  --filter RE          (fresh run only) passed to 'rmapbench run'\n"
      "  --repetitions N      (fresh run only) passed to 'rmapbench run'\n"
      "{}"
      "\n"
      "Exit status:\n"
      "  0    no regression\n"
      "  1    a regression was flagged, or a workload failed\n"
      "  2    no baseline matches (the available ones are listed), usage error,\n"
      "       unreadable or incompatible input, or the fresh run could not run\n"
      "  130  the fresh run was interrupted\n",
      ComparisonOptions::help());
}

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rmapbench-check-XXXXXX").string();
    if (::mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

void list_available(const std::string& dir, const baseline::Location& want) {
  auto entries = baseline::list(dir);
  if (entries.empty()) {
    fmt::print(stderr, "There are no baselines under {}.\n", dir);
  } else {
    fmt::print(stderr, "Baselines under {} ('*': same arch and host):\n", dir);
    for (const auto& e : entries)
      fmt::print(stderr, "{} {}\n", e.arch == want.arch && e.host_id == want.host_id ? "*" : " ", e.relative_path());
  }
  fmt::print(stderr,
             "Save one with 'rmapbench baseline save RESULT', or pick one with --baseline FILE (a baseline from "
             "another host is refused unless --force).\n");
}

int run_check(const std::vector<std::string>& args) {
  report::Request request;
  noise::Choice noise_choice;
  std::string dir = baseline::default_dir(), filter, repetitions;
  std::vector<std::string> positional, baselines;
  CommandLine line("check");
  ComparisonOptions comparison(line.app);
  CLI::Option* dir_option = line.app.add_option("--dir", dir);
  // Repeated: the first is the baseline, the others more runs of its side.
  repeatable(line.app.add_option("--baseline", baselines));
  CLI::Option* filter_option = line.app.add_option("--filter", filter);
  CLI::Option* repetitions_option = line.app.add_option("--repetitions", repetitions);
  line.app.add_option("RESULT", positional);
  if (!line.parse(args)) return kExitUsage;
  for (const auto& [option, value] :
       {std::pair{dir_option, &dir}, std::pair{filter_option, &filter}, std::pair{repetitions_option, &repetitions}})
    if (given(option) && value->empty()) return usage_error("check", option->get_name() + " needs a value");
  if (std::find(baselines.begin(), baselines.end(), "") != baselines.end())
    return usage_error("check", "--baseline needs a value");
  if (auto err = comparison.apply(request, noise_choice)) return usage_error("check", *err);
  std::string baseline_file = baselines.empty() ? "" : baselines.front();
  const std::vector<std::string> extra_baselines(baselines.begin() + (baselines.empty() ? 0 : 1), baselines.end());
  if (!positional.empty() && (!filter.empty() || !repetitions.empty()))
    return usage_error("check", "--filter and --repetitions apply only to a fresh run (no RESULT given)");

  TempDir tmp;
  std::string result_path;
  int run_exit = 0;
  if (!positional.empty()) {
    result_path = positional[0];
  } else {
    if (tmp.path.empty()) {
      fmt::print(stderr, "rmapbench check: cannot create a temporary directory\n");
      return kExitUsage;
    }
    result_path = tmp.path + "/check.json";
    proc::Spawn spawn;
    std::error_code ec;
    std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    spawn.argv = {ec ? std::string("/proc/self/exe") : self, "run", "--profile", "quick", "--out", result_path};
    if (!filter.empty()) spawn.argv.insert(spawn.argv.end(), {"--filter", filter});
    if (!repetitions.empty()) spawn.argv.insert(spawn.argv.end(), {"--repetitions", repetitions});
    spawn.stdout_to = 2;  // our stdout carries only the report
    fmt::print(stderr, "rmapbench check: no RESULT given; running 'rmapbench run --profile quick' first\n");
    auto outcome = proc::run(spawn);
    if (!outcome) {
      fmt::print(stderr, "rmapbench check: {}\n", outcome.status().message());
      return kExitUsage;
    }
    run_exit = outcome->exit_code;
    if (run_exit == kExitInterrupted || run_exit > 128) {
      fmt::print(stderr, "rmapbench check: the run was interrupted; nothing compared\n");
      return kExitInterrupted;
    }
    if (run_exit != kExitOk && run_exit != kExitFailure) {
      fmt::print(stderr, "rmapbench check: 'rmapbench run' failed (exit {}); nothing compared\n", run_exit);
      return kExitUsage;
    }
  }

  std::vector<std::string> result_paths = positional.empty() ? std::vector<std::string>{result_path} : positional;
  auto result = noise::load_side(result_paths, request.options.force);
  if (!result) {
    fmt::print(stderr, "rmapbench check: {}\n", result.status().message());
    return kExitUsage;
  }
  if (baseline_file.empty()) {
    auto where = baseline::locate(*result);
    if (!where) {
      fmt::print(stderr, "rmapbench check: {}\n", where.status().message());
      return kExitUsage;
    }
    baseline_file = dir + "/" + where->relative_path();
    std::error_code ec;
    if (!std::filesystem::exists(baseline_file, ec)) {
      fmt::print(stderr, "rmapbench check: no baseline for {} on this host: {} does not exist\n", result->label(),
                 baseline_file);
      list_available(dir, *where);
      return kExitUsage;
    }
  }
  std::vector<std::string> baseline_paths = {baseline_file};
  baseline_paths.insert(baseline_paths.end(), extra_baselines.begin(), extra_baselines.end());
  auto base = noise::load_side(baseline_paths, request.options.force);
  if (!base) {
    fmt::print(stderr, "rmapbench check: baseline {}\n", base.status().message());
    return kExitUsage;
  }
  if (Status s = noise::attach(noise_choice, *base, request.options); s.failed()) {
    fmt::print(stderr, "rmapbench check: {}\n", s.message());
    return kExitUsage;
  }
  auto regressed = report::compare_and_emit(*base, *result, request);
  if (!regressed) {
    fmt::print(stderr, "rmapbench check: {}\n", regressed.status().message());
    return kExitUsage;
  }
  if (run_exit == kExitFailure) fmt::print(stderr, "rmapbench check: a workload failed in the run\n");
  fmt::print(stderr, "rmapbench check: {} against {}\n",
             *regressed || run_exit == kExitFailure ? "REGRESSION" : "no regression", baseline_file);
  return *regressed || run_exit == kExitFailure ? kExitFailure : kExitOk;
}

}  // namespace

Command check_subcommand() {
  return {"check", "compare a result (or a fresh quick run) with its baseline; exit 1 on regression",
          check_help(), run_check};
}

}  // namespace rmapbench::cli
