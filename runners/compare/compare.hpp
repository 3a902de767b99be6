// The comparison of two results files: per benchmark and per metric, the
// numbers (stats.hpp) and the verdict. decide() in compare.cpp is the only
// place verdicts are made; the report formats (report.hpp) only render.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kernels/status.hpp"
#include "runners/compare/stats.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::compare {

enum class Correction { benjamini_hochberg, holm };
const char* correction_name(Correction c);  // "Benjamini-Hochberg", "Holm-Bonferroni"

struct Options {
  double threshold_pct = 2.0;                         // practical threshold, |change| must exceed it
  std::map<std::string, double> metric_threshold_pct;  // per metric name ("fork_us" -> 5)
  double alpha = 0.05;                                // after correction
  Correction correction = Correction::benjamini_hochberg;
  int min_repetitions = 5;   // fewer on either side: noisy
  double max_cv_pct = 10.0;  // robust CV above this on either side: noisy
  int bootstrap_resamples = 2000;
  uint64_t seed = 0x726d6170626e6368ULL;  // fixed: the same files give the same report
  bool force = false;                     // compare despite incompatible hosts/settings
  bool sweep_fits = true;                 // add the per-unit slope and fixed part of every sweep (results::add_sweep_fits)
  // The host's noise profile (rmapbench calibrate): per benchmark and metric,
  // the standard deviation of log run medians over separate A/A runs. A floor
  // under the between-run spread of the run-level test; empty: none.
  struct NoiseEntry {
    double sd_log = 0;
    int runs = 0;  // df = runs - 1
  };
  std::map<std::string, NoiseEntry> noise;  // key: noise_key(benchmark, metric)
  std::string noise_source;                 // the profile's path, for the report

  double threshold_for(const std::string& metric) const;
};

std::string noise_key(const std::string& benchmark, const std::string& metric);

enum class Verdict { regression, improvement, no_change, noisy, only_in_base, only_in_new, skipped, error };
const char* verdict_name(Verdict v);  // "regression", "no change", "only in base", ...
// Display order: error, regression, improvement, noisy, only in base/new, no change, skipped.
int verdict_rank(Verdict v);

struct MetricRow {
  std::string metric;  // "real_time" or the counter name
  results::MetricInfo info;
  std::optional<stats::Summary> base, next;  // absent on a side without the metric
  std::vector<double> base_samples, next_samples;
  double ratio = 0;       // median(new) / median(base); NaN if undefined
  double change_pct = 0;  // (ratio - 1) * 100; +-inf when base median is 0
  stats::Interval ci{};   // 95% bootstrap CI of the ratio (NaN for exact metrics)
  std::vector<int> base_runs, next_runs;  // run index of each sample
  bool primary = true;                     // in the correction family, can flag the benchmark
  std::optional<stats::UTest> u;  // repetition-level test (one run per side and no noise profile)
  std::optional<stats::RunLevelTest> runs_test;  // run-level test (several runs, or a noise profile)
  double p_raw = 1;               // of whichever test was made
  bool tested = false;            // a statistical test was made
  // The smallest |change| in % this row could have flagged (significance at
  // the Bonferroni level of its family, and the threshold); +inf: none could.
  double detectable_pct = std::numeric_limits<double>::quiet_NaN();
  double floor_pct = std::numeric_limits<double>::quiet_NaN();  // the profile's between-run spread, %
  // real_time only, when both sides carry the host reference: the change
  // beyond the host's own (new/base ratio over the reference's ratio), in %.
  double beyond_host_pct = std::numeric_limits<double>::quiet_NaN();
  // p of "no change beyond the host's", corrected over the same family.
  double p_beyond_host = std::numeric_limits<double>::quiet_NaN();
  double p_adjusted = 1;          // after the correction over the whole report
  bool significant = false;
  double threshold_pct = 0;
  Verdict verdict = Verdict::no_change;
  std::string reason;  // why this verdict, e.g. "3 repetitions < 5 (base)"
};

struct BenchmarkRow {
  std::string name;
  std::string time_unit;
  Verdict verdict = Verdict::no_change;
  std::string reason;
  std::string base_message, next_message;  // skip/error messages, with their prefix
  std::vector<MetricRow> metrics;          // real_time first
};

struct Difference {
  std::string what;  // "arch", "thp.enabled", "host (cpu_model)"
  std::string base, next;
};

struct KernelInfo {
  std::string label;  // "6.1.0-13-amd64 stock"
  std::string release, variant, path;
  int repetitions = 0;
  std::string profile;
};

struct HostShift {
  double ratio = 1;   // median(new) / median(base) of the host reference
  double se_log = 0;  // standard error of its log: between its run medians, else its samples
  double p = 1;       // two-sided p of "the host did not move"
  // Rows are judged beyond the host's change only when the host moved
  // significantly (p < alpha): a reference that moved within its own noise
  // would only blur every row.
  bool moved = false;
};

struct Comparison {
  KernelInfo base, next;
  std::vector<Difference> config_differences;  // CONFIG_* that differ (expected between kernels)
  std::vector<Difference> incompatibilities;   // arch, host, emulation, THP/KSM knobs
  bool forced = false;                         // compared despite incompatibilities
  std::string host;                            // one-line host description (base side)
  Options options;
  size_t comparisons = 0;  // size of the correction family (statistical tests made)
  size_t diagnostic_comparisons = 0;  // tests of diagnostic metrics (their own family, never gating)
  int runs_base = 1, runs_next = 1;    // separate runs per side
  std::vector<std::string> notes;
  std::vector<BenchmarkRow> benchmarks;  // base file order, then benchmarks only in new
  // The host reference (kHostReferenceBenchmark): how much faster or slower
  // the host itself ran the new side. Absent when a side lacks it (older
  // results, plain Google Benchmark).
  std::optional<HostShift> host_shift;

  size_t count(Verdict v) const;  // benchmarks with this verdict
  bool regressed() const { return count(Verdict::regression) + count(Verdict::error) > 0; }
  // Benchmarks sorted for display: regressions (and errors) first.
  std::vector<const BenchmarkRow*> sorted() const;
  // "two-sided Mann-Whitney U, Benjamini-Hochberg over 12 comparisons ..."
  std::string test_description(bool brief = false) const;
};

// Host facts that make two result files incomparable (arch, host-id,
// emulation, THP/KSM knob values). Empty when compatible or unknown.
std::vector<Difference> incompatibilities(const results::ResultsFile& base, const results::ResultsFile& next);

// Compares two loaded files. Fails (input error) on mismatched time units, and
// on incompatibilities unless options.force.
Result<Comparison> compare(const results::ResultsFile& base, const results::ResultsFile& next, const Options& options);

}  // namespace rmapbench::compare
