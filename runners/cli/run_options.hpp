// The options of `rmapbench run`, parsed without side effects so they can be
// unit-tested.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "benchmarks/harness/registry.hpp"

namespace rmapbench::cli {

// --variant becomes part of file names (results, baselines).
inline constexpr size_t kMaxVariantLength = 64;

struct RunOptions {
  std::string filter;
  Profile profile = Profile::quick;
  int repetitions = 0;  // resolved by profile when not given
  std::string variant;
  std::string out;
  bool quiet = false;
  bool keep_aslr = false;  // --keep-aslr: leave address-space randomization on
  bool allow_destructive = false;  // --allow-destructive: workloads that harm the host run (memory_failure)
  int runs = 0;            // --runs K: K separate processes into one result (0: the profile's)
  std::map<std::string, std::vector<long>> sweeps;
  std::vector<std::string> benchmark_flags;  // passed through to Google Benchmark
};

// Throws std::invalid_argument with a message for the user.
RunOptions parse_run_options(const std::vector<std::string>& args);

// "1,64,1000" -> {1, 64, 1000}; throws std::invalid_argument naming `what`.
std::vector<long> parse_long_list(const std::string& text, const std::string& what);

// Whether benchmark `name` is selected by --filter (POSIX extended regex,
// searched; a leading '-' negates). Throws std::regex_error on a bad regex.
bool filter_matches(const std::string& filter, const std::string& name);

// results/<host>-<kernel>-<variant>-<profile>-<stamp>.json, every part
// reduced to [A-Za-z0-9._-].
std::string results_file_name(const std::string& dir, const std::string& hostname, const std::string& kernel_release,
                              const std::string& variant, Profile profile, const std::string& utc_stamp);

}  // namespace rmapbench::cli
