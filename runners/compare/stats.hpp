// Pure statistics for comparing two sets of repetitions. No I/O, no
// formatting, no policy: compare.cpp decides verdicts from these numbers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace rmapbench::stats {

// --- Location and spread (empty input -> NaN) ------------------------------
double median(std::vector<double> v);
double mean(const std::vector<double>& v);
// Sample standard deviation (n - 1); 0 for fewer than two values.
double stddev(const std::vector<double>& v);
// Median absolute deviation from the median, unscaled.
double mad(const std::vector<double>& v);
// Coefficient of variation stddev / mean, as a fraction (0.05 = 5%).
// 0 when every value is 0; +inf when the mean is 0 but values differ.
double cv(const std::vector<double>& v);
// Robust CV: 1.4826 * MAD / |median| (1.4826 makes MAD estimate the standard
// deviation of normal data), as a fraction; 0/inf as for cv().
double robust_cv(const std::vector<double>& v);
// Linear-interpolation quantile of sorted data (R type 7), q in [0, 1].
double quantile_sorted(const std::vector<double>& sorted, double q);

struct Summary {
  size_t n = 0;
  double median = 0, mad = 0, mean = 0, stddev = 0, cv = 0, robust_cv = 0, min = 0, max = 0;
};
Summary summarize(const std::vector<double>& v);

// --- Mann-Whitney U (Wilcoxon rank-sum) -------------------------------------
// U counts the pairs (x_i, y_j) with x_i > y_j, ties counting 1/2 (R's W for
// wilcox.test(x, y)). Exact null distribution when there are no ties and both
// samples are smaller than kExactLimit; otherwise the normal approximation
// with tie-corrected variance and a continuity correction of 1/2.
inline constexpr size_t kExactLimit = 50;
struct UTest {
  double u = 0;
  double p_two_sided = 1;
  double p_greater = 1;  // alternative: x tends to be larger than y
  double p_less = 1;     // alternative: x tends to be smaller than y
  bool exact = false;
  bool ties = false;
  double z = 0;  // the two-sided z of the approximation (0 when exact)
};
UTest mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y);
// The smallest two-sided p the exact test can give for these sizes:
// 2 / C(n1 + n2, n1). Tells whether significance is reachable at all.
double min_two_sided_p(size_t n1, size_t n2);

double normal_cdf(double z);

// --- Multiple comparisons ----------------------------------------------------
// Adjusted p-values, in the input order, each compared with alpha directly.
std::vector<double> holm(const std::vector<double>& p);                // family-wise error
std::vector<double> benjamini_hochberg(const std::vector<double>& p);  // false discovery rate

// --- Bootstrap -----------------------------------------------------------------
// xoshiro256** seeded through splitmix64: the same seed gives the same
// stream on every platform (std:: distributions are not portable).
class Prng {
 public:
  explicit Prng(uint64_t seed);
  uint64_t next();
  // Uniform integer in [0, n) (Lemire's multiply-shift, rejection-free bias < 2^-32 for small n).
  size_t below(size_t n);
  // Uniform double in [0, 1).
  double uniform();
  // Standard normal (Box-Muller), for synthetic data in tests.
  double normal();

 private:
  uint64_t s_[4];
};

struct Interval {
  double low = 0, high = 0;
};
// Percentile bootstrap CI of median(y) / median(x): resample each side with
// replacement `resamples` times; NaN bounds when median(x) is 0 in the data.
Interval bootstrap_ratio_of_medians(const std::vector<double>& x, const std::vector<double>& y, double level,
                                    int resamples, uint64_t seed);

}  // namespace rmapbench::stats

namespace rmapbench::stats {

// --- Student's t ----------------------------------------------------------------
// P(T <= t) for Student's t with `df` > 0 degrees of freedom (regularized
// incomplete beta, continued fraction); normal_cdf for df = inf.
double student_t_cdf(double t, double df);
// The t with student_t_cdf(t, df) = p, p in (0, 1).
double student_t_quantile(double p, double df);
double normal_quantile(double p);

// --- Runs as the unit of replication -------------------------------------------
// Each side's samples grouped by run (the separate process they came from).
// The test compares the runs' medians on a log scale: d = mean(log median of
// each new run) - mean(log median of each base run), with the between-run
// standard deviation pooled from both sides' run medians (df = K1 + K2 - 2)
// and, when the host's noise profile gives one, never below the host's own
// A/A between-run spread (its df added). A between-run drift therefore widens
// the interval instead of raising a flag.
struct RunLevelTest {
  int runs_base = 0, runs_next = 0;
  double log_ratio = 0;     // d
  // The host's between-run drift (log scale): never below the profile's. A
  // change inside it is not flagged, and no row claims to see below it.
  double sd_between = 0;
  // What the standard error uses: these runs' spread pooled with the
  // profile's, each weighted by its degrees of freedom. Both estimate the
  // same spread of run medians, and a 5-run calibration's estimate is itself
  // uncertain (4 df), so neither is taken alone.
  double sd_pooled = 0;
  double sd_observed = std::numeric_limits<double>::quiet_NaN();  // pooled from these runs (NaN: one run per side)
  double df = 0;
  double se = 0;            // of d
  double t = 0;
  double p_two_sided = 1;
  Interval ci{};            // 95% CI of the ratio new/base
  bool floor_applied = false;  // the host profile's spread was larger than the observed one
  // The |change| (fraction) that reaches two-sided significance at level `level`.
  double detectable(double level) const;
};
// nullopt when the test cannot be made: a non-positive run median, or no
// between-run spread at all (one run per side and no profile: profile_sd NaN).
std::optional<RunLevelTest> run_level_test(const std::vector<double>& base, const std::vector<int>& base_runs,
                                           const std::vector<double>& next, const std::vector<int>& next_runs,
                                           double profile_sd, double profile_df);

// Per-run medians of samples grouped by run index (in run order).
std::vector<double> run_medians(const std::vector<double>& samples, const std::vector<int>& runs);

}  // namespace rmapbench::stats
