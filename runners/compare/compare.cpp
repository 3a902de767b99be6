#include "runners/compare/compare.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "runners/compare/baseline.hpp"

namespace rmapbench::compare {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string pct(double fraction) { return fmt::format("{:.0f}%", fraction * 100); }

// KSM/THP sysfs files that are statistics, not settings: they differ between
// any two runs and say nothing about the knobs.
bool knob_is_statistic(const std::string& key) {
  static const std::set<std::string> stats = {
      "full_scans",      "general_profit",     "ksm_zero_pages", "pages_scanned",    "pages_shared",
      "pages_sharing",   "pages_skipped",      "pages_unshared", "pages_volatile",   "stable_node_chains",
      "stable_node_dups", "pages_collapsed",   "zero_pages_sharing"};
  auto dot = key.find_last_of("./");
  std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
  return stats.count(leaf) || key.find("stats") != std::string::npos;
}

}  // namespace

const char* correction_name(Correction c) {
  return c == Correction::holm ? "Holm-Bonferroni" : "Benjamini-Hochberg";
}

std::string noise_key(const std::string& benchmark, const std::string& metric) { return benchmark + "\t" + metric; }

double Options::threshold_for(const std::string& metric) const {
  auto it = metric_threshold_pct.find(metric);
  return it == metric_threshold_pct.end() ? threshold_pct : it->second;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::regression: return "regression";
    case Verdict::improvement: return "improvement";
    case Verdict::no_change: return "no change";
    case Verdict::noisy: return "noisy";
    case Verdict::only_in_base: return "only in base";
    case Verdict::only_in_new: return "only in new";
    case Verdict::skipped: return "skipped";
    case Verdict::error: return "error";
  }
  return "?";
}

int verdict_rank(Verdict v) {
  switch (v) {
    case Verdict::error: return 0;
    case Verdict::regression: return 1;
    case Verdict::improvement: return 2;
    case Verdict::noisy: return 3;
    case Verdict::only_in_base: return 4;
    case Verdict::only_in_new: return 5;
    case Verdict::no_change: return 6;
    case Verdict::skipped: return 7;
  }
  return 8;
}

size_t Comparison::count(Verdict v) const {
  return static_cast<size_t>(std::count_if(benchmarks.begin(), benchmarks.end(),
                                           [v](const BenchmarkRow& b) { return b.verdict == v; }));
}

std::vector<const BenchmarkRow*> Comparison::sorted() const {
  std::vector<const BenchmarkRow*> out;
  for (const auto& b : benchmarks) out.push_back(&b);
  std::stable_sort(out.begin(), out.end(), [](const BenchmarkRow* a, const BenchmarkRow* b) {
    return verdict_rank(a->verdict) < verdict_rank(b->verdict);
  });
  return out;
}

std::string Comparison::test_description(bool brief) const {
  std::string per_metric;
  for (const auto& [m, t] : options.metric_threshold_pct) per_metric += fmt::format(", {} {:g}%", m, t);
  const std::string levels =
      runs_base > 1 || runs_next > 1 || !options.noise.empty()
          ? fmt::format("; runs are the unit: {} vs {} run(s), run medians compared (t on logs, between-run spread "
                        "pooled{}), one run per side without a profile by its repetitions",
                        runs_base, runs_next,
                        options.noise.empty() ? "" : " with the host noise profile's by degrees of freedom; the profile is the floor of the drift")
          : "";
  if (brief)
    return fmt::format(
        "two-sided Mann-Whitney U, {} over {} comparisons of primary metrics, alpha {:g}; flagged only beyond "
        "{:g}%{}; noisy below {} repetitions or above {:g}% robust CV; exact metrics compared exactly; {} "
        "diagnostic tests shown, never gating{}",
        correction_name(options.correction), comparisons, options.alpha, options.threshold_pct, per_metric,
        options.min_repetitions, options.max_cv_pct, diagnostic_comparisons, levels);
  return fmt::format(
      "two-sided Mann-Whitney U per metric (exact without ties when both sides have < {} repetitions, "
      "else normal approximation with tie and continuity correction), {} correction over {} comparisons "
      "at alpha {:g}; flagged only when also beyond {:g}%{}; noisy below {} repetitions or above "
      "{:g}% robust CV (1.4826*MAD/median); exact metrics compared exactly; 95% percentile bootstrap CI "
      "of the ratio of medians ({} resamples, fixed seed); the family holds primary metrics only, {} diagnostic "
      "tests are corrected apart and never gate{}; \"could not see < X%\" = the smallest change significant at "
      "alpha/m (and beyond the threshold)",
      stats::kExactLimit, correction_name(options.correction), comparisons, options.alpha, options.threshold_pct,
      per_metric, options.min_repetitions, options.max_cv_pct, options.bootstrap_resamples, diagnostic_comparisons,
      levels);
}

namespace {
// Context keys that describe what a kernel can do, not a setting someone
// chose: two kernel versions differ in them by nature (6.1 lists no mTHP
// sizes, 6.12 lists eight). Shown with the CONFIG_ differences, never a
// reason to refuse.
bool kernel_capability(const std::string& key) { return key == "thp.mthp_sizes_kb" || key == "thp.hpage_pmd_size"; }

// Firecracker runs on KVM: results recorded before the emulation probe used
// only what every user can read said "firecracker" where it now says "kvm".
std::string emulation_class(const std::string& e) { return e == "firecracker" ? "kvm" : e; }
}  // namespace

std::vector<Difference> incompatibilities(const results::ResultsFile& base, const results::ResultsFile& next) {
  std::vector<Difference> d;
  auto both = [&](const std::string& key, std::string& a, std::string& b) {
    a = base.get(key);
    b = next.get(key);
    return !a.empty() && !b.empty();
  };
  std::string a, b;
  if (both("arch", a, b) && a != b) d.push_back({"arch", a, b});
  auto fa = baseline::fingerprint(base.context), fb = baseline::fingerprint(next.context);
  if (fa && fb && fa->id() != fb->id()) {
    if (fa->cpu_model != fb->cpu_model) d.push_back({"host: CPU model", fa->cpu_model, fb->cpu_model});
    if (fa->cpus != fb->cpus) d.push_back({"host: CPUs", std::to_string(fa->cpus), std::to_string(fb->cpus)});
    if (fa->numa != fb->numa) d.push_back({"host: NUMA layout", fa->numa, fb->numa});
    if (fa->mem_gib != fb->mem_gib)
      d.push_back({"host: memory", fmt::format("{} GiB", fa->mem_gib), fmt::format("{} GiB", fb->mem_gib)});
  }
  if (both("emulation", a, b) && emulation_class(a) != emulation_class(b)) d.push_back({"emulation", a, b});
  for (const auto& [key, value] : base.context) {
    if (!(key.starts_with("thp.") || key.starts_with("ksm.")) || knob_is_statistic(key) || kernel_capability(key))
      continue;
    auto it = next.context.find(key);
    if (it != next.context.end() && it->second != value) d.push_back({key, value, it->second});
  }
  return d;
}

namespace {

KernelInfo kernel_info(const results::ResultsFile& f) {
  KernelInfo k;
  k.label = f.label();
  k.release = f.get("kernel_release", "unknown");
  k.variant = f.get("variant", "unknown");
  k.path = f.path;
  k.repetitions = f.repetitions();
  k.profile = f.get("rmapbench.profile");
  return k;
}

std::vector<Difference> config_differences(const results::ResultsFile& base, const results::ResultsFile& next) {
  std::set<std::string> keys;
  for (const auto* f : {&base, &next})
    for (const auto& [k, v] : f->context)
      if (k.starts_with("config.CONFIG_")) keys.insert(k);
  std::vector<Difference> d;
  for (const auto& k : keys) {
    std::string a = base.get(k, "not set"), b = next.get(k, "not set");
    if (a != b) d.push_back({k.substr(7), a, b});
  }
  for (const std::string k : {"thp.mthp_sizes_kb", "thp.hpage_pmd_size"}) {
    std::string a = base.get(k, "unknown"), b = next.get(k, "unknown");
    if (a.empty()) a = "none";
    if (b.empty()) b = "none";
    if (a != b) d.push_back({k, a, b});
  }
  return d;
}

// "skipped: needs NUMA" -> "needs NUMA" (the verdict already says skipped / failed).
std::string without_prefix(const std::string& m) {
  for (const char* p : {"skipped: ", "error: "})
    if (m.starts_with(p)) return m.substr(std::string_view(p).size());
  return m;
}

std::string repetition_shortfall(size_t nb, size_t nn, int min) {
  auto m = static_cast<size_t>(min);
  if (nb < m && nn < m)
    return nb == nn ? fmt::format("{} repetitions < {} (both)", nb, min)
                    : fmt::format("{} and {} repetitions < {}", nb, nn, min);
  if (nb < m) return fmt::format("{} repetitions < {} (base)", nb, min);
  return fmt::format("{} repetitions < {} (new)", nn, min);
}

// An exact metric is compared exactly only when each side's repetitions all
// agree; a kernel count that moves between repetitions (system-wide slab
// activity) is compared statistically instead, and the reason says so.
bool compared_exactly(const MetricRow& r) {
  return r.info.kind == MetricKind::exact && r.base && r.next && r.base->min == r.base->max &&
         r.next->min == r.next->max;
}

std::string exact_variation(const MetricRow& r) {
  if (r.info.kind != MetricKind::exact || !r.base || !r.next) return "";
  for (auto [side, s] : {std::pair{"base", &*r.base}, {"new", &*r.next}})
    if (s->min != s->max)
      return fmt::format("exact metric varies within {} ({:g}..{:g}), compared statistically: ", side, s->min, s->max);
  return "";
}

// The standard error of the log ratio of two sides' medians from their
// repetitions alone: a median's 1.2533 sigma / sqrt(n), with each side's
// robust CV as sigma on the log scale.
double medians_standard_error(const stats::Summary& b, const stats::Summary& n) {
  if (b.n == 0 || n.n == 0) return kInf;
  return 1.2533 * std::sqrt(b.robust_cv * b.robust_cv / static_cast<double>(b.n) +
                            n.robust_cv * n.robust_cv / static_cast<double>(n.n));
}

// The standard error of a row's log change: its run-level test's, else its repetitions'.
double row_standard_error(const MetricRow& r) {
  if (r.runs_test) return r.runs_test->se;
  if (!r.base || !r.next) return kInf;
  return medians_standard_error(*r.base, *r.next);
}

// The only place a metric's verdict is decided.
void decide(MetricRow& r, const Options& o, bool base_aggregates, bool next_aggregates,
            const std::optional<HostShift>& host) {
  r.threshold_pct = o.threshold_for(r.metric);
  if (!r.base || !r.next) {
    r.verdict = r.base ? Verdict::only_in_base : Verdict::only_in_new;
    r.reason = r.base ? "metric absent from new" : "metric absent from base";
    return;
  }
  auto direction = [&](double change) {
    bool worse = r.info.better == Better::lower ? change > 0 : change < 0;
    return worse ? Verdict::regression : Verdict::improvement;
  };

  if (compared_exactly(r)) {
    // Counted by the kernel and every repetition agrees: any difference beyond
    // the metric's own threshold (default: none) counts, no statistics.
    r.threshold_pct = o.metric_threshold_pct.count(r.metric) ? o.metric_threshold_pct.at(r.metric) : 0.0;
    double diff = r.next->median - r.base->median;
    double scale = std::max(std::fabs(r.base->median), std::fabs(r.next->median));
    bool beyond = std::fabs(diff) > 1e-12 * scale && std::fabs(r.change_pct) > r.threshold_pct;
    if (!beyond) {
      r.verdict = Verdict::no_change;
      r.reason = diff == 0 ? "exact: equal" : fmt::format("exact: within {:g}%", r.threshold_pct);
      return;
    }
    r.significant = true;
    r.verdict = direction(diff);
    r.reason = fmt::format("exact: {:g} -> {:g}", r.base->median, r.next->median);
    return;
  }

  // Statistical metrics, and exact ones whose repetitions disagree.
  auto statistical = [&] {
    if (base_aggregates || next_aggregates) {
      r.verdict = Verdict::noisy;
      r.reason = fmt::format("only aggregates in {} (no per-repetition samples)",
                             base_aggregates && next_aggregates ? "both" : (base_aggregates ? "base" : "new"));
      return;
    }
    const auto min = static_cast<size_t>(o.min_repetitions);
    if (r.base->n < min || r.next->n < min) {
      r.verdict = Verdict::noisy;
      r.reason = repetition_shortfall(r.base->n, r.next->n, o.min_repetitions);
      return;
    }
    r.significant = r.p_adjusted < o.alpha;
    bool beyond = std::fabs(r.change_pct) > r.threshold_pct;  // NaN compares false
    double worst_cv = std::max(r.base->robust_cv, r.next->robust_cv);
    if (worst_cv * 100 > o.max_cv_pct && !(r.significant && beyond && std::fabs(r.change_pct) > worst_cv * 100)) {
      r.verdict = Verdict::noisy;
      bool b = r.base->robust_cv * 100 > o.max_cv_pct, n = r.next->robust_cv * 100 > o.max_cv_pct;
      r.reason = fmt::format("robust CV {} > {:g}% ({})", pct(worst_cv), o.max_cv_pct, b && n ? "both" : (b ? "base" : "new"));
      return;
    }
    // A change inside the between-run drift (the spread of run medians, never
    // below the host profile's) is not flagged, however significant: the
    // sides ran at different times, and a host phase longer than a side's runs
    // moves all of them together.
    if (r.significant && beyond && r.runs_test) {
      const double drift = std::expm1(r.runs_test->sd_between) * 100;
      if (std::fabs(r.change_pct) <= drift) {
        r.verdict = Verdict::no_change;
        r.reason = fmt::format("significant but |{:+.1f}%| is inside the between-run drift ({:.1f}%)", r.change_pct,
                               drift);
        return;
      }
    }
    // The host reference ran no kernel code: when it moved (significantly)
    // between the sides, the host moved. A timing row that moved with it is
    // not flagged: it must also be beyond the host's change by more than the
    // threshold or the drift, the same way, and significantly so
    // (test_beyond_host). Only ever a flag less: a row that moved against
    // the host keeps its own (smaller) change.
    const bool host_known = host && !std::isnan(r.beyond_host_pct);
    if (r.significant && beyond && host_known) {
      const double allowance =
          std::max(r.threshold_pct, r.runs_test ? std::expm1(r.runs_test->sd_between) * 100 : 0.0);
      if (std::signbit(r.beyond_host_pct) != std::signbit(r.change_pct) || std::fabs(r.beyond_host_pct) <= allowance ||
          !(r.p_beyond_host < o.alpha)) {
        r.verdict = Verdict::no_change;
        r.reason = fmt::format("moved with the host: {:+.1f}% here, {:+.1f}% in the host reference (no kernel code); "
                               "{:+.1f}% beyond it{}",
                               r.change_pct, (host->ratio - 1) * 100, r.beyond_host_pct,
                               std::fabs(r.beyond_host_pct) <= allowance
                                   ? fmt::format(" is inside {:.1f}%", allowance)
                                   : fmt::format(", p {:.2g} after correction", r.p_beyond_host));
        return;
      }
    }
    if (r.significant && beyond) {
      r.verdict = direction(r.change_pct);
      r.reason = fmt::format("p {:.2g} < {:g} after correction, |{:+.1f}%| > {:g}%", r.p_adjusted, o.alpha, r.change_pct,
                             r.threshold_pct);
      if (host_known && std::fabs(host->ratio - 1) >= 0.005)
        r.reason += fmt::format(", {:+.1f}% beyond the host reference's {:+.1f}%", r.beyond_host_pct,
                                (host->ratio - 1) * 100);
      if (worst_cv * 100 > o.max_cv_pct) r.reason += fmt::format(" (beyond CV {})", pct(worst_cv));
      return;
    }
    r.verdict = Verdict::no_change;
    r.reason = r.significant ? fmt::format("significant but |{:+.1f}%| <= {:g}%", r.change_pct, r.threshold_pct)
                             : fmt::format("not significant (p {:.2g} after correction)", r.p_adjusted);
  };
  statistical();
  r.reason = exact_variation(r) + r.reason;
}

// The smallest |change| (in %) this row could have flagged: the change whose
// test reaches significance at the Bonferroni level alpha / m of its family
// (BH is never stricter than that for one row), and never below the row's
// practical threshold. Run-level rows: from the t quantile and the standard
// error of the run medians. Repetition-level rows: +inf when the U-test
// cannot reach that level with these repetition counts at all, else the
// normal approximation with each side's robust CV (median's standard error
// 1.2533 sigma / sqrt(n)).
void set_detectable(MetricRow& r, const Options& o, size_t family) {
  if (!r.tested || !r.base || !r.next) return;
  const double level = o.alpha / static_cast<double>(std::max<size_t>(1, family));
  double d = kInf;
  if (r.runs_test) {
    d = r.runs_test->detectable(level) * 100;
  } else if (r.u && stats::min_two_sided_p(r.base->n, r.next->n) <= level) {
    const double se = row_standard_error(r);
    d = std::expm1(stats::normal_quantile(1 - level / 2) * se) * 100;
  }
  if (r.runs_test) d = std::max(d, std::expm1(r.runs_test->sd_between) * 100);  // never inside the drift
  r.detectable_pct = std::max(d, o.threshold_for(r.metric));
}

// After decide(): a diagnostic metric's flag is shown but never gates, and a
// "no change" says what it could not have seen.
void annotate(MetricRow& r) {
  if (!r.primary && (r.verdict == Verdict::regression || r.verdict == Verdict::improvement))
    r.reason = "diagnostic, does not gate: " + r.reason;
  const bool spread_noisy = r.verdict == Verdict::noisy && r.reason.find("robust CV") != std::string::npos;
  if ((r.verdict == Verdict::no_change || spread_noisy) && r.tested && !std::isnan(r.detectable_pct))
    r.reason += std::isinf(r.detectable_pct) ? " (could not see any change: too few repetitions for the correction)"
                : r.detectable_pct > 1000 ? " (could not see any change below 10x: too few runs for their spread)"
                                          : fmt::format(" (could not see < {:.0f}%)", r.detectable_pct);
  if (r.runs_test && r.runs_test->floor_applied && r.verdict == Verdict::no_change)
    r.reason += fmt::format(" [host's between-run spread {:.1f}% used as floor]", r.floor_pct);
}

MetricRow make_row(const results::ResultsFile& base, const results::Benchmark* bb, const results::ResultsFile& next,
                   const results::Benchmark* nb, const std::string& metric, const Options& o) {
  MetricRow r;
  r.metric = metric;
  r.info = base.metric_info(*bb, metric);
  if (!r.info.declared) {
    auto ni = next.metric_info(*nb, metric);
    if (ni.declared) r.info = ni;
  }
  r.base_samples = bb->samples(metric);
  r.next_samples = nb->samples(metric);
  // A sweep fit (results::add_sweep_fits): its real_time is time per unit of the key.
  if (auto p = bb->name.rfind(":*/per_"); p != std::string::npos && metric == "real_time")
    r.info.unit = bb->time_unit + "/" + bb->name.substr(p + 7);
  r.base_runs = bb->sample_runs(metric);
  r.next_runs = nb->sample_runs(metric);
  r.primary = r.info.role == MetricRole::primary;
  // A sweep's fixed part (intercept) is shown, not gating: the slope and the
  // points themselves carry the verdict, and the family stays small enough
  // for the quick profile's repetitions to reach significance.
  if (bb->name.ends_with(":*/fixed")) r.primary = false;
  // The host's speed, not the kernel's: shown, used to judge the others.
  if (bb->name == kHostReferenceBenchmark) r.primary = false;
  if (!r.base_samples.empty()) r.base = stats::summarize(r.base_samples);
  if (!r.next_samples.empty()) r.next = stats::summarize(r.next_samples);
  r.ratio = kNaN;
  r.change_pct = kNaN;
  r.ci = {kNaN, kNaN};
  r.p_adjusted = kNaN;
  if (r.base && r.next) {
    if (r.base->median == r.next->median) {
      r.ratio = 1;
      r.change_pct = 0;
    } else if (r.base->median == 0) {
      r.ratio = kInf;
      r.change_pct = r.next->median > 0 ? kInf : -kInf;
    } else {
      r.ratio = r.next->median / r.base->median;
      r.change_pct = (r.ratio - 1) * 100 * (r.base->median < 0 ? -1 : 1);
    }
    if (!compared_exactly(r)) {
      // Runs are the unit of replication: with several runs on a side, or the
      // host's between-run spread from its noise profile, the run medians are
      // compared; otherwise the repetitions of one run per side (U-test).
      double profile_sd = kNaN, profile_df = 0;
      if (auto it = o.noise.find(noise_key(bb->name, metric)); it != o.noise.end() && it->second.runs >= 2) {
        profile_sd = it->second.sd_log;
        profile_df = it->second.runs - 1;
        r.floor_pct = std::expm1(profile_sd) * 100;
      }
      std::optional<stats::RunLevelTest> rt;
      if (!bb->from_aggregates && !nb->from_aggregates)
        rt = stats::run_level_test(r.base_samples, r.base_runs, r.next_samples, r.next_runs, profile_sd, profile_df);
      if (rt) {
        r.runs_test = rt;
        r.p_raw = rt->p_two_sided;
        r.ci = rt->ci;
      } else {
        r.u = stats::mann_whitney_u(r.base_samples, r.next_samples);
        r.p_raw = r.u->p_two_sided;
        r.ci = stats::bootstrap_ratio_of_medians(r.base_samples, r.next_samples, 0.95, o.bootstrap_resamples,
                                                 o.seed ^ fnv1a(bb->name + "\n" + metric));
      }
      r.tested = true;
    }
  }
  return r;
}

// The 1-minute load average Google Benchmark recorded when the run started,
// against the CPU count: a host busy with other work drifts between runs.
std::optional<std::string> busy_host_note(const results::ResultsFile& f, const char* side) {
  double load = 0, cpus = 0;
  try {
    auto la = nlohmann::json::parse(f.get("load_avg", "[]"));
    if (!la.is_array() || la.empty() || !la[0].is_number()) return std::nullopt;
    load = la[0].get<double>();
    cpus = std::stod(f.get("cpus_online", f.get("num_cpus", "0")));
  } catch (...) {
    return std::nullopt;
  }
  if (cpus <= 0 || load < cpus) return std::nullopt;
  return fmt::format("the {} run started with a load average of {:.1f} on {:g} CPUs: other work was running, "
                     "and timings of separate runs drift with it; re-run on a quiet host before trusting a "
                     "flag",
                     side, load, cpus);
}

// Each primary timing row's change beyond the host reference's, and the p
// of "none": the row's standard error and the reference's together, t with
// the row's degrees of freedom, corrected over the primary family like the
// rows' own tests (when the host moved, every row's own test is significant,
// so their correction says nothing about this one).
void test_beyond_host(Comparison& c, const Options& o, const std::vector<MetricRow*>& primary) {
  if (!c.host_shift || !c.host_shift->moved) return;
  std::vector<MetricRow*> rows;
  std::vector<double> p;
  for (auto* r : primary) {
    if (r->metric != "real_time" || !std::isfinite(r->change_pct)) continue;
    r->beyond_host_pct = ((1 + r->change_pct / 100) / c.host_shift->ratio - 1) * 100;
    const double se = std::hypot(row_standard_error(*r), c.host_shift->se_log);
    const double t = std::log1p(r->beyond_host_pct / 100) / se;
    rows.push_back(r);
    p.push_back(!(se > 0) ? (t == 0 ? 1.0 : 0.0)
                          : 2 * stats::student_t_cdf(-std::fabs(t), r->runs_test ? r->runs_test->df : kInf));
  }
  const auto adjusted = o.correction == Correction::holm ? stats::holm(p) : stats::benjamini_hochberg(p);
  for (size_t i = 0; i < rows.size(); ++i) rows[i]->p_beyond_host = adjusted[i];
}

// The host reference's change between the sides (benchmarks/harness/
// host_reference.hpp), and a note saying what it was or why there is none.
void host_reference(Comparison& c, const results::ResultsFile& base, const results::ResultsFile& next,
                    const Options& options) {
  const results::Benchmark* bb = base.find(kHostReferenceBenchmark);
  const results::Benchmark* nb = next.find(kHostReferenceBenchmark);
  const bool in_base = bb && bb->ran(), in_next = nb && nb->ran();
  if (!in_base || !in_next) {
    if (base.has_rmapbench_context && next.has_rmapbench_context)
      c.notes.push_back(fmt::format(
          "no host reference in {} (results of an older rmapbench): a host that ran one side slower (another guest, "
          "an SMT sibling, a frequency change) cannot be told from a kernel change",
          !in_base && !in_next ? "either side" : (!in_base ? "base" : "new")));
    return;
  }
  const auto bs = bb->samples("real_time"), ns = nb->samples("real_time");
  const auto b = stats::summarize(bs), n = stats::summarize(ns);
  if (!(b.median > 0) || !(n.median > 0)) return;
  HostShift h;
  h.ratio = n.median / b.median;
  double df = kInf;
  if (auto rt = stats::run_level_test(bs, bb->sample_runs("real_time"), ns, nb->sample_runs("real_time"), kNaN, 0)) {
    h.se_log = rt->se;
    df = rt->df;
  } else {
    h.se_log = medians_standard_error(b, n);
  }
  h.p = h.se_log > 0 ? 2 * stats::student_t_cdf(-std::fabs(std::log(h.ratio)) / h.se_log, df) : (h.ratio == 1 ? 1 : 0);
  h.moved = h.p < options.alpha;
  c.host_shift = h;
  const double change = (h.ratio - 1) * 100;
  auto steal = [](const results::Benchmark* x) {
    auto v = x->samples(kStealMetric);
    return v.empty() ? std::string("?") : fmt::format("{:.1f}%", stats::summarize(v).mean);
  };
  c.notes.push_back(fmt::format(
      "host reference (a user-space loop, no kernel code, sampled through each run): {:+.1f}% in new ({:.2f} vs "
      "{:.2f} ms, hypervisor steal {} vs {}); {}",
      change, b.median / 1000, n.median / 1000, steal(bb), steal(nb),
      h.moved ? fmt::format("the host moved (p {:.2g}): a timing row is flagged only for what it moved beyond it", h.p)
              : fmt::format("within the reference's own spread (p {:.2g}): rows are judged on their own change", h.p)));
  if (std::fabs(change) > 10)
    c.notes.push_back(fmt::format("the host itself ran the new side {:.0f}% {}: verdicts rest on the assumption that "
                                  "the kernel's paths moved with it; re-run both sides on a quiet host",
                                  std::fabs(change), change > 0 ? "slower" : "faster"));
}

}  // namespace

Result<Comparison> compare(const results::ResultsFile& base_in, const results::ResultsFile& next_in, const Options& options) {
  if (Status s = results::check_time_units(base_in, next_in); s.failed()) return s;
  // Per-unit costs of the sweeps (slope and fixed part) are compared like any benchmark.
  results::ResultsFile base = base_in, next = next_in;
  if (options.sweep_fits) {
    results::add_sweep_fits(base);
    results::add_sweep_fits(next);
  }

  Comparison c;
  c.options = options;
  c.base = kernel_info(base);
  c.next = kernel_info(next);
  c.config_differences = config_differences(base, next);
  c.incompatibilities = incompatibilities(base, next);
  if (!c.incompatibilities.empty()) {
    if (!options.force) {
      std::string msg = fmt::format("refusing to compare {} with {}: they differ in", base.path, next.path);
      for (const auto& d : c.incompatibilities) msg += fmt::format("\n  {}: {} vs {}", d.what, d.base, d.next);
      msg += "\nTimings from different hosts or settings are not comparable; --force compares anyway "
             "(the report then says what differed).";
      return Status::error(msg);
    }
    c.forced = true;
  }

  auto fp = baseline::fingerprint(base.context);
  c.host = fmt::format("{}, {}", base.get("arch", "arch unknown"),
                       fp ? fp->describe() + ", host-id " + fp->id() : std::string("host facts unknown"));
  if (std::string e = base.get("emulation"); !e.empty() && e != "none" && !e.starts_with("unknown"))
    c.host += (e.find("tcg") != std::string::npos ? ", emulated (" : ", virtual machine (") + e + ")";

  for (const auto* f : {&base, &next}) c.notes.insert(c.notes.end(), f->notes.begin(), f->notes.end());
  for (auto [f, side] : {std::pair{&base, "base"}, {&next, "new"}})
    if (auto note = busy_host_note(*f, side)) c.notes.push_back(*note);
  // One process per run means one memory layout per run: with ASLR on, the
  // layout's effect differs between runs and not within one. rmapbench run
  // turns it off for its own process tree unless --keep-aslr.
  auto aslr_of = [](const results::ResultsFile& f) -> std::pair<std::string, std::string> {
    if (std::string e = f.get("aslr_effective"); !e.empty()) return {e, f.get("aslr_how")};
    std::string a = f.get("aslr");
    if (a.empty() || a.starts_with("unknown")) return {"", ""};
    return {a == "0" ? "off" : "on", "randomize_va_space=" + a + ", recorded before rmapbench turned it off itself"};
  };
  const auto aslr_base = aslr_of(base), aslr_next = aslr_of(next);
  if (!aslr_base.first.empty() && !aslr_next.first.empty() && aslr_base.first != aslr_next.first)
    c.notes.push_back(fmt::format("ASLR differs between the sides: base {} ({}), new {} ({}). Layout-dependent "
                                  "counters such as page_faults move with the layout; they are diagnostic and "
                                  "never flag, but compare runs made the same way (rmapbench run turns ASLR off "
                                  "unless --keep-aslr)",
                                  aslr_base.first, aslr_base.second, aslr_next.first, aslr_next.second));
  else if (aslr_base.first == "on" || aslr_next.first == "on")
    c.notes.push_back(fmt::format(
        "ASLR was on for {} ({}): each run had its own random memory layout, which moves layout-sensitive counts "
        "such as page_faults by whole events per operation from run to run - a difference the repetitions within "
        "one run cannot show. rmapbench run turns ASLR off for its own processes unless --keep-aslr; older "
        "results: setarch $(uname -m) -R rmapbench run ...",
        aslr_base.first == "on" && aslr_next.first == "on" ? "both runs" : (aslr_base.first == "on" ? "the base run" : "the new run"),
        aslr_base.first == "on" ? aslr_base.second : aslr_next.second));
  // Between-run variation: known from several runs per side or the host's
  // noise profile; otherwise the verdicts rest on one run per side.
  if ((base.runs() < 2 || next.runs() < 2) && options.noise.empty())
    c.notes.push_back(fmt::format(
        "between-run variation unknown: {} run(s) in base, {} in new and no noise profile for this host, so rows "
        "with one run on a side compare the repetitions of single runs, which understate the spread between runs "
        "(a reboot, another layout, another host phase). Use rmapbench run --runs K, or rmapbench calibrate once "
        "per host",
        base.runs(), next.runs()));
  else if (!options.noise.empty())
    c.notes.push_back(fmt::format("the host's noise profile ({}) is the floor under every row's between-run spread",
                                  options.noise_source.empty() ? "given" : options.noise_source));
  if (!base.has_rmapbench_context || !next.has_rmapbench_context)
    c.notes.push_back("host compatibility not checked: a file has no rmapbench host facts");
  if (c.base.profile != c.next.profile && !c.base.profile.empty() && !c.next.profile.empty())
    c.notes.push_back(fmt::format("profiles differ: base {}, new {}", c.base.profile, c.next.profile));

  std::vector<std::string> names;
  for (const auto& b : base.benchmarks) names.push_back(b.name);
  for (const auto& b : next.benchmarks)
    if (!base.find(b.name)) names.push_back(b.name);

  for (const auto& name : names) {
    const results::Benchmark* bb = base.find(name);
    const results::Benchmark* nb = next.find(name);
    BenchmarkRow row;
    row.name = name;
    row.time_unit = (bb ? bb : nb)->time_unit;
    if (bb) row.base_message = bb->skip_message ? *bb->skip_message : bb->error_message.value_or("");
    if (nb) row.next_message = nb->skip_message ? *nb->skip_message : nb->error_message.value_or("");
    if (!nb) {
      row.verdict = Verdict::only_in_base;
      row.reason = bb->ran() ? "absent from new" : "absent from new; base: " + row.base_message;
    } else if (!bb) {
      row.verdict = nb->error_message ? Verdict::error : Verdict::only_in_new;
      row.reason = nb->ran() ? "absent from base" : "absent from base; new: " + row.next_message;
    } else if (nb->error_message) {
      row.verdict = Verdict::error;
      row.reason = "failed in new: " + without_prefix(*nb->error_message);
    } else if (!bb->ran() && !nb->ran()) {
      row.verdict = Verdict::skipped;
      row.reason = row.base_message == row.next_message
                       ? without_prefix(row.next_message)
                       : "base: " + row.base_message + "; new: " + row.next_message;
    } else if (!nb->ran()) {
      row.verdict = Verdict::only_in_base;
      row.reason = "new: " + row.next_message;
    } else if (!bb->ran()) {
      row.verdict = Verdict::only_in_new;
      row.reason = "base: " + row.base_message;
    } else {
      std::vector<std::string> metrics = bb->metric_names();
      for (const auto& m : nb->metric_names())
        if (std::find(metrics.begin(), metrics.end(), m) == metrics.end()) metrics.push_back(m);
      for (const auto& m : metrics) row.metrics.push_back(make_row(base, bb, next, nb, m, options));
    }
    c.benchmarks.push_back(std::move(row));
  }

  // The correction family: every test of a primary metric in this report.
  // Diagnostic metrics are corrected among themselves, for display only.
  std::vector<MetricRow*> primary, diagnostic;
  for (auto& b : c.benchmarks)
    for (auto& m : b.metrics)
      if (m.tested) (m.primary ? primary : diagnostic).push_back(&m);
  for (auto* family : {&primary, &diagnostic}) {
    std::vector<double> p;
    for (auto* m : *family) p.push_back(m->p_raw);
    std::vector<double> adj = options.correction == Correction::holm ? stats::holm(p) : stats::benjamini_hochberg(p);
    for (size_t i = 0; i < family->size(); ++i) {
      (*family)[i]->p_adjusted = adj[i];
      set_detectable(*(*family)[i], options, family->size());
    }
  }
  host_reference(c, base, next, options);
  test_beyond_host(c, options, primary);
  c.comparisons = primary.size();
  c.diagnostic_comparisons = diagnostic.size();
  c.runs_base = base.runs();
  c.runs_next = next.runs();

  double best_reachable = 1;
  for (auto& b : c.benchmarks) {
    if (b.metrics.empty()) continue;
    const results::Benchmark* bb = base.find(b.name);
    const results::Benchmark* nb = next.find(b.name);
    for (auto& m : b.metrics) {
      decide(m, options, bb->from_aggregates, nb->from_aggregates, c.host_shift);
      annotate(m);
      if (m.primary && m.u && m.base && m.next && m.verdict != Verdict::noisy)
        best_reachable = std::min(best_reachable, stats::min_two_sided_p(m.base->n, m.next->n));
    }
    // Benchmark verdict: any flagged primary metric, else the latency's verdict.
    auto any = [&](Verdict v) {
      for (const auto& m : b.metrics)
        if (m.primary && m.verdict == v) return &m;
      return static_cast<const MetricRow*>(nullptr);
    };
    const MetricRow* pick = any(Verdict::regression);
    if (!pick) pick = any(Verdict::improvement);
    if (!pick) pick = &b.metrics.front();  // real_time
    b.verdict = pick->verdict;
    b.reason = pick->metric + ": " + pick->reason;
    if (pick->verdict == Verdict::only_in_base || pick->verdict == Verdict::only_in_new) b.verdict = Verdict::noisy;
    // A benchmark with no primary metric (a sweep's fixed part) is shown
    // with its change, but a diagnostic row alone never gates.
    if (!pick->primary && (b.verdict == Verdict::regression || b.verdict == Verdict::improvement))
      b.verdict = Verdict::no_change;
  }
  if (c.comparisons > 0 && best_reachable > options.alpha / static_cast<double>(c.comparisons))
    c.notes.push_back(fmt::format("with these repetition counts the smallest possible p is {:.2g}, above alpha/m = "
                                  "{:.2g}: an isolated change cannot be flagged; run more repetitions",
                                  best_reachable, options.alpha / static_cast<double>(c.comparisons)));
  return c;
}

}  // namespace rmapbench::compare
