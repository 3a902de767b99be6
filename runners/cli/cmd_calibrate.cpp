// rmapbench calibrate: the host's noise profile - how much each benchmark's
// run median moves between separate runs of the same kernel - measured with
// K A/A runs and stored next to the host's baselines, where compare and check
// find it and use it as a floor under every row's between-run spread.
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/compare/noise_profile.hpp"
#include "runners/compare/stats.hpp"
#include "kernels/process/subprocess.hpp"
#include "runners/results/atomic_file.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::cli {
namespace {

constexpr const char* kCalibrateHelp = R"(Usage: rmapbench calibrate [OPTIONS] [RUN OPTIONS]
       rmapbench calibrate --from RESULT [OPTIONS]

Measures this host's noise profile: K separate runs of the same kernel
(rmapbench run --runs K: each its own process, with its own interleaved
repetitions), and per benchmark and metric the spread of the run medians
between runs (standard deviation of their logarithm). Stored as
  DIR/<arch>/<host-id>/noise.profile
next to the host's baselines. compare and check use it for BASE's host: a
change inside the host's own between-run drift is not flagged, and every row
says the smallest change it could have seen. Calibrate with the profile
(quick/full) and repetitions you compare with.

Options:
  --runs K        separate A/A runs (default 5, at least 3)
  --from RESULT   build the profile from RESULT (a result of run --runs K)
                  instead of running
  --out FILE      also keep the runs' results in FILE
  --dir DIR       baselines directory (default: $RMAPBENCH_BASELINE_DIR, else
                  ./baselines)
  Any other option is passed to 'rmapbench run' (--profile, --filter,
  --repetitions, --sweep, ...).

Exit status: 0 stored; 1 a workload failed in a run (the profile is still
stored from what ran); 2 usage error, a run that could not run, unwritable DIR;
130 interrupted.
)";

int run_calibrate(const std::vector<std::string>& args) {
  int runs = 5;
  std::string runs_text, from, out, dir = baseline::default_dir();
  CommandLine line("calibrate");
  CLI::Option* runs_option = line.app.add_option("--runs", runs_text);
  line.app.add_option("--from", from);
  line.app.add_option("--out", out);
  line.app.add_option("--dir", dir);
  if (!line.parse(args, Extras::keep)) return kExitUsage;
  const std::vector<std::string>& run_args = line.extras;  // the rest is 'rmapbench run's
  if (given(runs_option)) {
    char* end = nullptr;
    long k = std::strtol(runs_text.c_str(), &end, 10);
    if (runs_text.empty() || *end || k < 3 || k > 100) return usage_error("calibrate", "--runs takes an integer from 3 to 100");
    runs = static_cast<int>(k);
  }
  int run_exit = kExitOk;
  std::string result_path = from;
  std::string temp;
  if (from.empty()) {
    if (out.empty()) {
      temp = (std::filesystem::temp_directory_path() / fmt::format("rmapbench-calibrate-{}.json", getpid())).string();
      result_path = temp;
    } else {
      result_path = out;
    }
    proc::Spawn spawn;
    std::error_code ec;
    std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    spawn.argv = {ec ? std::string("/proc/self/exe") : self, "run", "--runs", std::to_string(runs), "--out", result_path};
    spawn.argv.insert(spawn.argv.end(), run_args.begin(), run_args.end());
    spawn.stdout_to = 2;
    fmt::print(stderr, "rmapbench calibrate: {} separate A/A runs of this kernel\n", runs);
    auto outcome = proc::run(spawn);
    if (!outcome) {
      fmt::print(stderr, "rmapbench calibrate: {}\n", outcome.status().message());
      return kExitUsage;
    }
    run_exit = outcome->exit_code;
    if (run_exit == kExitInterrupted || run_exit > 128) return kExitInterrupted;
    if (run_exit != kExitOk && run_exit != kExitFailure) {
      fmt::print(stderr, "rmapbench calibrate: 'rmapbench run' failed (exit {})\n", run_exit);
      return kExitUsage;
    }
  } else if (!run_args.empty()) {
    return usage_error("calibrate", "run options (" + run_args.front() + ") do not go with --from");
  }
  auto result = results::load_results(result_path);
  if (!temp.empty()) std::filesystem::remove(temp);
  if (!result) {
    fmt::print(stderr, "rmapbench calibrate: {}\n", result.status().message());
    return kExitUsage;
  }
  auto profile = noise::from_runs(*result);
  if (!profile) {
    fmt::print(stderr, "rmapbench calibrate: {}\n", profile.status().message());
    return kExitUsage;
  }
  auto path = noise::path_for(dir, *result);
  if (!path) {
    fmt::print(stderr, "rmapbench calibrate: {}\n", path.status().message());
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(*path).parent_path(), ec);
  if (Status s = results::write_file_atomic(*path, noise::to_json(*profile)); s.failed()) {
    fmt::print(stderr, "rmapbench calibrate: {}\n", s.message());
    return kExitUsage;
  }
  // What the profile means for a comparison: the smallest change of
  // real_time one run per side, and K runs per side, could flag at the
  // Bonferroni level over this many primary rows.
  size_t primary = 0;
  for (const auto& [name, metrics] : profile->benchmarks) primary += metrics.count("real_time");
  const double level = 0.05 / static_cast<double>(std::max<size_t>(1, primary));
  const double df = profile->runs - 1;
  auto mdc = [&](double sd, int k) {
    return std::expm1(stats::student_t_quantile(1 - level / 2, df) * sd * std::sqrt(2.0 / k)) * 100;
  };
  fmt::print("{:<58} {:>9} {:>11} {:>11}\n", "benchmark (real_time)", "run sd", "detect 1v1",
             fmt::format("detect {}v{}", profile->runs, profile->runs));
  for (const auto& [name, metrics] : profile->benchmarks) {
    auto it = metrics.find("real_time");
    if (it == metrics.end()) continue;
    fmt::print("{:<58} {:>8.1f}% {:>10.0f}% {:>10.0f}%\n", name, std::expm1(it->second.sd_log) * 100,
               mdc(it->second.sd_log, 1), mdc(it->second.sd_log, profile->runs));
  }
  fmt::print("\n'detect' = the smallest change of real_time that one run (or {} runs) per side can flag at alpha "
             "0.05 / {} rows\nnoise profile: {}\n",
             profile->runs, primary, *path);
  return run_exit == kExitFailure ? kExitFailure : kExitOk;
}

}  // namespace

Command calibrate_subcommand() {
  return {"calibrate", "measure this host's between-run noise (K A/A runs) for compare/check",
          kCalibrateHelp, run_calibrate};
}

}  // namespace rmapbench::cli
