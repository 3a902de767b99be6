// The host's noise profile: per benchmark and metric, how much the median of
// a run moves between separate runs of the same kernel (rmapbench calibrate
// measures it with K A/A runs). Stored next to the host's baselines:
//   baselines/<arch>/<host-id>/noise.profile   (JSON, see baselines/README.md)
// compare and check use it as a floor under every row's between-run spread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kernels/status.hpp"
#include "runners/compare/compare.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::noise {

struct Entry {
  double sd_log = 0;  // standard deviation of log(run median) over the runs
  int runs = 0;
  double median = 0;  // median of the run medians (for the reader)
};

struct Profile {
  std::string arch, host_id, kernel_release, profile;  // rmapbench.profile of the calibration runs
  int runs = 0, repetitions = 0;
  std::string created;                                 // UTC
  std::map<std::string, std::map<std::string, Entry>> benchmarks;  // benchmark -> metric -> entry
};

// From one result holding K >= 2 runs (rmapbench run --runs K): every
// statistical metric of every benchmark that ran in at least 2 runs.
Result<Profile> from_runs(const results::ResultsFile& f);
std::string to_json(const Profile& p);
Result<Profile> parse(const std::string& text, const std::string& path);
Result<Profile> load(const std::string& path);

// <dir>/<arch>/<host-id>/noise.profile for the host of `f`.
Result<std::string> path_for(const std::string& dir, const results::ResultsFile& f);

// Fills options.noise from `p`.
void apply(const Profile& p, compare::Options& options, const std::string& source);

// Which profile compare/check use: --noise-profile FILE, --no-noise-profile
// (read by runners/cli/compare_options.hpp).
struct Choice {
  std::string path;  // explicit file
  bool none = false;
};
// Applies the chosen profile, or the one stored for base's host under the
// baselines directory when none was named (silently nothing when there is
// none). Fails on an unreadable explicit file, or a profile of another host.
Status attach(const Choice& c, const results::ResultsFile& base, compare::Options& options);

// Loads the files of one side (each one or more runs) and combines them into
// one (results::combine_runs); refuses files of different hosts or settings
// within a side unless `force`.
Result<results::ResultsFile> load_side(const std::vector<std::string>& paths, bool force);

}  // namespace rmapbench::noise
