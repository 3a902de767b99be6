#include "runners/compare/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numbers>
#include <numeric>

namespace rmapbench::stats {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

double ratio_or_limits(double num, double den) {
  if (den != 0) return num / std::fabs(den);
  return num == 0 ? 0 : kInf;
}
}  // namespace

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  double hi = v[mid];
  if (v.size() % 2) return hi;
  double lo = *std::max_element(v.begin(), v.begin() + static_cast<long>(mid));
  return lo + (hi - lo) / 2;
}

double mean(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  double m = mean(v), ss = 0;
  for (double x : v) ss += (x - m) * (x - m);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

double mad(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double m = median(v);
  std::vector<double> dev;
  dev.reserve(v.size());
  for (double x : v) dev.push_back(std::fabs(x - m));
  return median(std::move(dev));
}

double cv(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  return ratio_or_limits(stddev(v), mean(v));
}

double robust_cv(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  return ratio_or_limits(1.4826 * mad(v), median(v));
}

double quantile_sorted(const std::vector<double>& s, double q) {
  if (s.empty()) return kNaN;
  double h = (static_cast<double>(s.size()) - 1) * std::clamp(q, 0.0, 1.0);
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (h - static_cast<double>(lo)) * (s[hi] - s[lo]);
}

Summary summarize(const std::vector<double>& v) {
  Summary s;
  s.n = v.size();
  if (v.empty()) {
    s.median = s.mad = s.mean = s.stddev = s.cv = s.robust_cv = s.min = s.max = kNaN;
    return s;
  }
  s.median = median(v);
  s.mad = mad(v);
  s.mean = mean(v);
  s.stddev = stddev(v);
  s.cv = cv(v);
  s.robust_cv = robust_cv(v);
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  s.min = *mn;
  s.max = *mx;
  return s;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

namespace {

// Number of arrangements giving each U = 0..n1*n2 under the null, for
// samples of n1 and n2 without ties: f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u),
// built column by column (j) keeping one distribution per i. Values are
// counts as doubles (C(100, 50) ~ 1e29 fits with relative error ~1e-16).
std::vector<double> u_distribution(size_t n1, size_t n2) {
  // col[i] = distribution of U for sizes (i, j) at the current j.
  std::vector<std::vector<double>> col(n1 + 1);
  for (size_t i = 0; i <= n1; ++i) col[i] = {1.0};  // j = 0: U is always 0
  for (size_t j = 1; j <= n2; ++j) {
    std::vector<std::vector<double>> next(n1 + 1);
    next[0] = {1.0};
    for (size_t i = 1; i <= n1; ++i) {
      std::vector<double> d(i * j + 1, 0.0);
      // x's largest element above all j of y: adds j to U (from (i-1, j)).
      for (size_t u = 0; u < next[i - 1].size(); ++u) d[u + j] += next[i - 1][u];
      // y's largest element above all: U unchanged (from (i, j-1)).
      for (size_t u = 0; u < col[i].size(); ++u) d[u] += col[i][u];
      next[i] = std::move(d);
    }
    col = std::move(next);
  }
  return col[n1];
}

}  // namespace

double min_two_sided_p(size_t n1, size_t n2) {
  if (n1 == 0 || n2 == 0) return 1;
  // 2 / C(n1 + n2, n1) computed in logs.
  double log_c = std::lgamma(static_cast<double>(n1 + n2 + 1)) - std::lgamma(static_cast<double>(n1 + 1)) -
                 std::lgamma(static_cast<double>(n2 + 1));
  return std::min(1.0, 2.0 * std::exp(-log_c));
}

UTest mann_whitney_u(const std::vector<double>& x, const std::vector<double>& y) {
  UTest t;
  const size_t n1 = x.size(), n2 = y.size();
  if (n1 == 0 || n2 == 0) return t;

  // Mid-ranks of the pooled sample; tie group sizes for the variance.
  std::vector<std::pair<double, int>> pooled;
  pooled.reserve(n1 + n2);
  for (double v : x) pooled.emplace_back(v, 0);
  for (double v : y) pooled.emplace_back(v, 1);
  std::sort(pooled.begin(), pooled.end());
  double rank_sum_x = 0, tie_term = 0;
  for (size_t i = 0; i < pooled.size();) {
    size_t j = i;
    while (j < pooled.size() && pooled[j].first == pooled[i].first) ++j;
    double t_size = static_cast<double>(j - i);
    double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k)
      if (pooled[k].second == 0) rank_sum_x += mid_rank;
    if (j - i > 1) {
      t.ties = true;
      tie_term += t_size * t_size * t_size - t_size;
    }
    i = j;
  }
  const double dn1 = static_cast<double>(n1), dn2 = static_cast<double>(n2);
  t.u = rank_sum_x - dn1 * (dn1 + 1) / 2;

  if (!t.ties && n1 < kExactLimit && n2 < kExactLimit) {
    t.exact = true;
    std::vector<double> d = u_distribution(n1, n2);
    double total = std::accumulate(d.begin(), d.end(), 0.0);
    size_t q = static_cast<size_t>(std::llround(t.u));
    double le = 0, ge = 0;
    for (size_t u = 0; u < d.size(); ++u) {
      if (u <= q) le += d[u];
      if (u >= q) ge += d[u];
    }
    t.p_less = le / total;
    t.p_greater = ge / total;
    // Two-sided as in R: double the tail on the side U lies.
    double tail = t.u > dn1 * dn2 / 2 ? t.p_greater : t.p_less;
    t.p_two_sided = std::min(1.0, 2 * tail);
    return t;
  }

  const double n = dn1 + dn2;
  const double sigma = std::sqrt(dn1 * dn2 / 12 * ((n + 1) - tie_term / (n * (n - 1))));
  const double centered = t.u - dn1 * dn2 / 2;
  if (sigma == 0) return t;  // every value equal: no evidence either way
  double sign = centered > 0 ? 1 : (centered < 0 ? -1 : 0);
  t.z = (centered - sign * 0.5) / sigma;
  t.p_two_sided = std::min(1.0, 2 * std::min(normal_cdf(t.z), normal_cdf(-t.z)));
  t.p_greater = normal_cdf(-(centered - 0.5) / sigma);
  t.p_less = normal_cdf((centered + 0.5) / sigma);
  return t;
}

std::vector<double> holm(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(m);
  double running = 0;
  for (size_t k = 0; k < m; ++k) {
    double v = std::min(1.0, static_cast<double>(m - k) * p[order[k]]);
    running = std::max(running, v);
    adj[order[k]] = running;
  }
  return adj;
}

std::vector<double> benjamini_hochberg(const std::vector<double>& p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] < p[b]; });
  std::vector<double> adj(m);
  double running = 1;
  for (size_t k = m; k-- > 0;) {
    double v = std::min(1.0, static_cast<double>(m) / static_cast<double>(k + 1) * p[order[k]]);
    running = std::min(running, v);
    adj[order[k]] = running;
  }
  return adj;
}

namespace {
uint64_t splitmix64(uint64_t& s) {
  uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Prng::Prng(uint64_t seed) {
  for (auto& w : s_) w = splitmix64(seed);
}

uint64_t Prng::next() {
  uint64_t result = rotl(s_[1] * 5, 7) * 9;
  uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

size_t Prng::below(size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(next()) * n) >> 64);
}

double Prng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Prng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 <= 0) u1 = 0x1.0p-53;
  return std::sqrt(-2 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
}

Interval bootstrap_ratio_of_medians(const std::vector<double>& x, const std::vector<double>& y, double level,
                                    int resamples, uint64_t seed) {
  Interval ci{kNaN, kNaN};
  if (x.empty() || y.empty() || resamples < 1 || median(x) == 0) return ci;
  Prng rng(seed);
  std::vector<double> ratios;
  ratios.reserve(static_cast<size_t>(resamples));
  std::vector<double> bx(x.size()), by(y.size());
  for (int r = 0; r < resamples; ++r) {
    for (auto& v : bx) v = x[rng.below(x.size())];
    for (auto& v : by) v = y[rng.below(y.size())];
    double mx = median(bx);
    if (mx == 0) continue;  // a resample of a base with zeros: ratio undefined
    ratios.push_back(median(by) / mx);
  }
  if (ratios.empty()) return ci;
  std::sort(ratios.begin(), ratios.end());
  double tail = (1 - level) / 2;
  ci.low = quantile_sorted(ratios, tail);
  ci.high = quantile_sorted(ratios, 1 - tail);
  return ci;
}

}  // namespace rmapbench::stats

namespace rmapbench::stats {

namespace {

// Continued fraction of the incomplete beta function (Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300;
  double qab = a + b, qap = a + 1, qam = a - 1, c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return h;
}

// Regularized incomplete beta I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front =
      std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_cf(a, b, x) / a;
  return 1 - front * beta_cf(b, a, 1 - x) / b;
}

}  // namespace

double student_t_cdf(double t, double df) {
  if (std::isnan(t) || std::isnan(df) || df <= 0) return std::numeric_limits<double>::quiet_NaN();
  if (std::isinf(df) || df > 1e7) return normal_cdf(t);
  if (std::isinf(t)) return t > 0 ? 1 : 0;
  const double x = df / (df + t * t);
  const double tail = 0.5 * incomplete_beta(df / 2, 0.5, x);  // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1)) return std::numeric_limits<double>::quiet_NaN();
  double lo = -1e4, hi = 1e4;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return (lo + hi) / 2;
}

double normal_quantile(double p) { return student_t_quantile(p, std::numeric_limits<double>::infinity()); }

std::vector<double> run_medians(const std::vector<double>& samples, const std::vector<int>& runs) {
  std::map<int, std::vector<double>> by_run;
  for (size_t i = 0; i < samples.size(); ++i) by_run[i < runs.size() ? runs[i] : 0].push_back(samples[i]);
  std::vector<double> out;
  for (auto& [run, v] : by_run) out.push_back(median(v));
  return out;
}

double RunLevelTest::detectable(double level) const {
  if (!(se > 0) || !(df > 0)) return std::numeric_limits<double>::infinity();
  return std::expm1(student_t_quantile(1 - level / 2, df) * se);
}

std::optional<RunLevelTest> run_level_test(const std::vector<double>& base, const std::vector<int>& base_runs,
                                           const std::vector<double>& next, const std::vector<int>& next_runs,
                                           double profile_sd, double profile_df) {
  const auto mb = run_medians(base, base_runs), mn = run_medians(next, next_runs);
  if (mb.empty() || mn.empty()) return std::nullopt;
  std::vector<double> lb, ln;
  for (double v : mb) {
    if (!(v > 0) || !std::isfinite(v)) return std::nullopt;
    lb.push_back(std::log(v));
  }
  for (double v : mn) {
    if (!(v > 0) || !std::isfinite(v)) return std::nullopt;
    ln.push_back(std::log(v));
  }
  RunLevelTest r;
  r.runs_base = static_cast<int>(lb.size());
  r.runs_next = static_cast<int>(ln.size());
  r.log_ratio = mean(ln) - mean(lb);
  const double df_obs = static_cast<double>(lb.size() + ln.size()) - 2;
  double ss = 0;
  for (double v : lb) ss += (v - mean(lb)) * (v - mean(lb));
  for (double v : ln) ss += (v - mean(ln)) * (v - mean(ln));
  const bool have_profile = profile_sd > 0 && profile_df > 0;
  if (df_obs >= 1) r.sd_observed = std::sqrt(ss / df_obs);
  if (df_obs >= 1 && have_profile) {
    // Both estimate the host's between-run spread: pooled for the standard
    // error; the drift below which nothing is flagged never below the profile.
    r.sd_pooled = std::sqrt((ss + profile_df * profile_sd * profile_sd) / (df_obs + profile_df));
    r.sd_between = std::max(r.sd_pooled, profile_sd);
    r.floor_applied = r.sd_observed < profile_sd;
    r.df = df_obs + profile_df;
  } else if (df_obs >= 1) {
    r.sd_between = r.sd_pooled = r.sd_observed;
    r.df = df_obs;
  } else if (have_profile) {
    r.sd_between = r.sd_pooled = profile_sd;
    r.floor_applied = true;
    r.df = profile_df;
  } else {
    return std::nullopt;
  }
  r.se = r.sd_pooled * std::sqrt(1.0 / static_cast<double>(lb.size()) + 1.0 / static_cast<double>(ln.size()));
  if (r.se <= 0) {
    // Identical run medians everywhere: no spread to scale by.
    r.t = r.log_ratio == 0 ? 0 : std::copysign(std::numeric_limits<double>::infinity(), r.log_ratio);
    r.p_two_sided = r.log_ratio == 0 ? 1 : 0;
    r.ci = {std::exp(r.log_ratio), std::exp(r.log_ratio)};
    return r;
  }
  r.t = r.log_ratio / r.se;
  r.p_two_sided = std::min(1.0, 2 * student_t_cdf(-std::fabs(r.t), r.df));
  const double q = student_t_quantile(0.975, r.df);
  r.ci = {std::exp(r.log_ratio - q * r.se), std::exp(r.log_ratio + q * r.se)};
  return r;
}

}  // namespace rmapbench::stats
