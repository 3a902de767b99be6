// Statistics against published reference values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <numeric>

#include "runners/compare/stats.hpp"

using namespace rmapbench::stats;

namespace {

// Brute force: the exact null distribution of U by enumerating every way to
// pick which n1 of the n1+n2 pooled ranks belong to x (independent of the
// recurrence in stats.cpp). Returns P(U >= u) and P(U <= u).
std::pair<double, double> brute_force_tails(size_t n1, size_t n2, double u) {
  const size_t n = n1 + n2;
  std::vector<bool> pick(n, false);
  std::fill(pick.begin(), pick.begin() + static_cast<long>(n1), true);
  double ge = 0, le = 0, total = 0;
  std::sort(pick.begin(), pick.end());
  do {
    // U = sum of ranks of x - n1(n1+1)/2, ranks 1..n.
    double rank_sum = 0;
    for (size_t i = 0; i < n; ++i)
      if (pick[i]) rank_sum += static_cast<double>(i + 1);
    double uu = rank_sum - static_cast<double>(n1 * (n1 + 1)) / 2;
    total += 1;
    if (uu >= u) ge += 1;
    if (uu <= u) le += 1;
  } while (std::next_permutation(pick.begin(), pick.end()));
  return {ge / total, le / total};
}

}  // namespace

// Hollander & Wolfe (1973), "Nonparametric Statistical Methods", p. 69: the
// example reproduced in R's ?wilcox.test -
//   wilcox.test(x, y, alternative = "greater")  ->  W = 35, p-value = 0.1272
// (exact, no ties). W is R's name for U of the first sample.
TEST(MannWhitney, HollanderWolfeExactExample) {
  std::vector<double> x = {0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46};
  std::vector<double> y = {1.15, 0.88, 0.90, 0.74, 1.21};
  UTest t = mann_whitney_u(x, y);
  EXPECT_DOUBLE_EQ(t.u, 35);
  EXPECT_TRUE(t.exact);
  EXPECT_FALSE(t.ties);
  EXPECT_NEAR(t.p_greater, 0.1272, 5e-5);
  EXPECT_NEAR(t.p_two_sided, 2 * t.p_greater, 1e-12);  // U above its mean (25): twice the upper tail
  // And the same tails by enumerating all C(15, 5) = 3003 arrangements.
  auto [ge, le] = brute_force_tails(10, 5, 35);
  EXPECT_NEAR(t.p_greater, ge, 1e-12);
  EXPECT_NEAR(t.p_less, le, 1e-12);
}

// R's ?wilcox.test example on the airquality data set (Chambers et al. 1983,
// "Graphical Methods for Data Analysis"): ozone in May vs August, which has
// ties, so the normal approximation with tie correction and continuity
// correction is used:
//   wilcox.test(Ozone ~ Month, data = airquality, subset = Month %in% c(5, 8))
//   ->  W = 127.5, p-value = 0.0001208
TEST(MannWhitney, AirqualityNormalApproximationWithTies) {
  std::vector<double> may = {41, 36, 12, 18, 28, 23, 19, 8, 7, 16, 11, 14, 18, 14, 34, 6, 30, 11, 1, 11, 4, 32, 23, 45, 115, 37};
  std::vector<double> aug = {39, 9, 16, 78, 35, 66, 122, 89, 110, 44, 28, 65, 22, 59, 23, 31, 44, 21, 9, 45, 168, 73, 76, 118, 84, 85};
  ASSERT_EQ(may.size(), 26u);
  ASSERT_EQ(aug.size(), 26u);
  UTest t = mann_whitney_u(may, aug);
  EXPECT_DOUBLE_EQ(t.u, 127.5);
  EXPECT_FALSE(t.exact);
  EXPECT_TRUE(t.ties);
  EXPECT_NEAR(t.p_two_sided, 0.0001208, 5e-7);
}

TEST(MannWhitney, CompleteSeparationHasTheSmallestExactP) {
  // Every y above every x: U = 0, two-sided p = 2 / C(7, 3) = 2/35.
  UTest t = mann_whitney_u({1.1, 2.2, 3.3}, {4.4, 5.5, 6.6, 7.7});
  EXPECT_DOUBLE_EQ(t.u, 0);
  EXPECT_TRUE(t.exact);
  EXPECT_NEAR(t.p_two_sided, 2.0 / 35, 1e-15);
  EXPECT_NEAR(min_two_sided_p(3, 4), 2.0 / 35, 1e-15);
  EXPECT_NEAR(min_two_sided_p(10, 10), 2.0 / 184756, 1e-18);
  EXPECT_NEAR(min_two_sided_p(5, 5), 2.0 / 252, 1e-15);
}

TEST(MannWhitney, ExactMatchesEnumerationOnOtherSizes) {
  Prng rng(7);
  for (auto [n1, n2] : {std::pair<size_t, size_t>{6, 7}, {4, 9}, {8, 5}, {1, 6}}) {
    std::vector<double> x, y;
    for (size_t i = 0; i < n1; ++i) x.push_back(rng.uniform());
    for (size_t i = 0; i < n2; ++i) y.push_back(rng.uniform() + 0.2);
    UTest t = mann_whitney_u(x, y);
    ASSERT_TRUE(t.exact);
    auto [ge, le] = brute_force_tails(n1, n2, t.u);
    EXPECT_NEAR(t.p_greater, ge, 1e-12) << n1 << "x" << n2;
    EXPECT_NEAR(t.p_less, le, 1e-12) << n1 << "x" << n2;
    EXPECT_NEAR(t.p_two_sided, std::min(1.0, 2 * std::min(ge, le)), 1e-12);
  }
}

TEST(MannWhitney, IdenticalSamplesAreNotSignificant) {
  UTest t = mann_whitney_u({5, 5, 5, 5, 5}, {5, 5, 5, 5, 5});
  EXPECT_DOUBLE_EQ(t.p_two_sided, 1);
  EXPECT_DOUBLE_EQ(t.u, 12.5);
  UTest empty = mann_whitney_u({}, {1, 2});
  EXPECT_DOUBLE_EQ(empty.p_two_sided, 1);
}

TEST(MannWhitney, LargeSamplesUseTheNormalApproximation) {
  std::vector<double> x, y;
  for (int i = 0; i < 60; ++i) x.push_back(i), y.push_back(i + 0.5);
  UTest t = mann_whitney_u(x, y);
  EXPECT_FALSE(t.exact);
  EXPECT_GT(t.p_two_sided, 0.5);  // a half-rank shift is nothing
}

// Benjamini & Hochberg (1995), J. R. Statist. Soc. B 57(1), section 4: the
// 15 p-values of the Neuhaus et al. study. At q = 0.05 the step-up procedure
// rejects the four smallest (p(4) = 0.0095 <= 4/15 * 0.05), where Holm's
// step-down Bonferroni rejects three (p(4) * 12 = 0.114 > 0.05).
TEST(MultipleComparisons, BenjaminiHochbergPaperExample) {
  std::vector<double> p = {0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344,
                           0.0459, 0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.0000};
  auto bh = benjamini_hochberg(p);
  auto holm_adj = holm(p);
  int bh_rejected = 0, holm_rejected = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    bh_rejected += bh[i] <= 0.05;
    holm_rejected += holm_adj[i] <= 0.05;
  }
  EXPECT_EQ(bh_rejected, 4);
  EXPECT_EQ(holm_rejected, 3);
  EXPECT_NEAR(bh[3], 0.0095 * 15 / 4, 1e-12);
  EXPECT_NEAR(holm_adj[0], 0.0015, 1e-12);
}

// Worked by hand, unsorted input: p = (0.01, 0.04, 0.03, 0.005), m = 4.
//   Holm: sorted 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.02 0.03 0.06 0.06
//   BH:   sorted 0.005*4/1 = 0.02, 0.01*4/2 = 0.02, 0.03*4/3 = 0.04, 0.04*4/4 = 0.04 -> running min from the top
TEST(MultipleComparisons, KnownVector) {
  std::vector<double> p = {0.01, 0.04, 0.03, 0.005};
  auto h = holm(p);
  EXPECT_NEAR(h[0], 0.03, 1e-15);
  EXPECT_NEAR(h[1], 0.06, 1e-15);
  EXPECT_NEAR(h[2], 0.06, 1e-15);
  EXPECT_NEAR(h[3], 0.02, 1e-15);
  auto b = benjamini_hochberg(p);
  EXPECT_NEAR(b[0], 0.02, 1e-15);
  EXPECT_NEAR(b[1], 0.04, 1e-15);
  EXPECT_NEAR(b[2], 0.04, 1e-15);
  EXPECT_NEAR(b[3], 0.02, 1e-15);
  EXPECT_TRUE(holm({}).empty());
  EXPECT_DOUBLE_EQ(benjamini_hochberg({0.9, 0.8})[0], 0.9);  // capped, monotone
}

TEST(Spread, MedianMadCv) {
  EXPECT_DOUBLE_EQ(median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(median({})));
  // Deviations from the median 3: 2 1 0 1 97 -> MAD 1; the outlier does not matter.
  EXPECT_DOUBLE_EQ(mad({1, 2, 3, 4, 100}), 1);
  EXPECT_NEAR(robust_cv({1, 2, 3, 4, 100}), 1.4826 / 3, 1e-12);
  // Mean 5, sample variance 32/7.
  std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean(v), 5);
  EXPECT_NEAR(stddev(v), std::sqrt(32.0 / 7), 1e-12);
  EXPECT_NEAR(cv(v), std::sqrt(32.0 / 7) / 5, 1e-12);
  EXPECT_DOUBLE_EQ(cv({0, 0, 0}), 0);
  EXPECT_TRUE(std::isinf(cv({-1, 1})));
  EXPECT_DOUBLE_EQ(stddev({42}), 0);
  Summary s = summarize({3, 1, 2});
  EXPECT_EQ(s.n, 3u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 3);
  EXPECT_DOUBLE_EQ(quantile_sorted({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile_sorted({1, 2, 3, 4}, 1), 4);
}

TEST(Bootstrap, SameSeedSameInterval) {
  std::vector<double> x = {100, 101, 99, 102, 98, 100.5, 99.5, 101.5};
  std::vector<double> y = {105, 106, 104, 107, 103, 105.5, 104.5, 106.5};
  Interval a = bootstrap_ratio_of_medians(x, y, 0.95, 2000, 42);
  Interval b = bootstrap_ratio_of_medians(x, y, 0.95, 2000, 42);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_LT(a.low, 1.05);
  EXPECT_GT(a.high, 1.05);
  EXPECT_GT(a.low, 1.0);  // a clear 5% shift: the interval excludes 1
  Interval undefined = bootstrap_ratio_of_medians({0, 0, 0}, {1, 2, 3}, 0.95, 100, 1);
  EXPECT_TRUE(std::isnan(undefined.low));
}

// Coverage on synthetic data: base ~ N(100, 2), new ~ N(105, 2), so the true
// ratio of medians is 1.05. Over many independent experiments with a fixed
// seed, the 95% percentile-bootstrap interval should contain 1.05 in about
// 95% of them (the percentile bootstrap of a median with n = 15 is known to
// be a little liberal, hence the band).
TEST(Bootstrap, CoverageOfTheRatioOfMedians) {
  Prng data(20240601);
  const int experiments = 400;
  const size_t n = 15;
  int covered = 0;
  for (int e = 0; e < experiments; ++e) {
    std::vector<double> x(n), y(n);
    for (auto& v : x) v = 100 + 2 * data.normal();
    for (auto& v : y) v = 105 + 2 * data.normal();
    Interval ci = bootstrap_ratio_of_medians(x, y, 0.95, 1000, static_cast<uint64_t>(e) + 1);
    covered += ci.low <= 1.05 && 1.05 <= ci.high;
  }
  double coverage = static_cast<double>(covered) / experiments;
  std::printf("bootstrap 95%% CI coverage over %d experiments: %.3f\n", experiments, coverage);
  EXPECT_GE(coverage, 0.90) << "coverage " << coverage;
  EXPECT_LE(coverage, 0.99) << "coverage " << coverage;
}

TEST(Prng, DeterministicAndUniform) {
  Prng a(1), b(1), c(2);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs = differs || x != c.next();
  }
  EXPECT_TRUE(differs);
  Prng r(3);
  std::vector<int> bins(10, 0);
  for (int i = 0; i < 100000; ++i) ++bins[r.below(10)];
  for (int count : bins) EXPECT_NEAR(count, 10000, 500);
  double sum = 0, sq = 0;
  for (int i = 0; i < 100000; ++i) {
    double z = r.normal();
    sum += z;
    sq += z * z;
  }
  EXPECT_NEAR(sum / 100000, 0, 0.02);
  EXPECT_NEAR(sq / 100000, 1, 0.03);
}
