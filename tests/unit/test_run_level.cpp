// Runs as the unit of replication (issue 10): the run-level test, the
// decision's false-positive rate over many synthetic A/A comparisons with
// between-run drift, its power on two-level data with a real change, the
// noise profile as a floor, primary vs diagnostic metrics, pooling files.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "runners/cli/run_processes.hpp"
#include "runners/compare/compare.hpp"
#include "runners/compare/noise_profile.hpp"
#include "runners/compare/stats.hpp"
#include "runners/results/results.hpp"

using namespace rmapbench;
using compare::Verdict;

namespace {

// Two-level data: run r's level drifts by exp(N(0, sd_between)), each
// repetition by exp(N(0, sd_within)) around it.
struct Host {
  double sd_between = 0.05, sd_within = 0.03;
};

results::Benchmark bench(const std::string& name, stats::Prng& g, const Host& h, int runs, int reps, double level,
                         int first_run = 0) {
  results::Benchmark b;
  b.name = b.raw_name = name;
  b.time_unit = "us";
  for (int r = 0; r < runs; ++r) {
    const double run_level = level * std::exp(h.sd_between * g.normal());
    for (int i = 0; i < reps; ++i) {
      results::Repetition rep;
      rep.index = i;
      rep.run = first_run + r;
      rep.iterations = 1;
      rep.real_time = run_level * std::exp(h.sd_within * g.normal());
      rep.counters["page_faults"] = 30 + r % 2;  // layout-dependent: moves between runs, never within
      b.repetitions.push_back(rep);
    }
  }
  return b;
}

results::ResultsFile side(stats::Prng& g, const Host& h, int benchmarks, int runs, int reps,
                          const std::vector<double>& levels) {
  results::ResultsFile f;
  f.path = "synthetic.json";
  f.metrics["real_time"] = {"us", Better::lower, MetricKind::statistical, "", MetricRole::primary, true};
  f.metrics["page_faults"] = {"faults/op", Better::lower, MetricKind::statistical, "", MetricRole::diagnostic, true};
  for (int k = 0; k < benchmarks; ++k)
    f.benchmarks.push_back(bench("b/" + std::to_string(k), g, h, runs, reps, levels[static_cast<size_t>(k)]));
  return f;
}

compare::Options profile_from(stats::Prng& g, const Host& h, int benchmarks, int runs, int reps) {
  compare::Options o;
  auto cal = side(g, h, benchmarks, runs, reps, std::vector<double>(static_cast<size_t>(benchmarks), 100.0));
  for (const auto& b : cal.benchmarks) {
    auto med = stats::run_medians(b.samples("real_time"), b.sample_runs("real_time"));
    std::vector<double> logs;
    for (double m : med) logs.push_back(std::log(m));
    o.noise[compare::noise_key(b.name, "real_time")] = {stats::stddev(logs), runs};
  }
  return o;
}

int flagged(const compare::Comparison& c) {
  return static_cast<int>(c.count(Verdict::regression) + c.count(Verdict::improvement));
}

}  // namespace

TEST(StudentT, KnownQuantiles) {
  EXPECT_NEAR(stats::student_t_cdf(2.776, 4), 0.975, 1e-3);
  EXPECT_NEAR(stats::student_t_cdf(12.706, 1), 0.975, 1e-3);
  EXPECT_NEAR(stats::student_t_cdf(-1.96, 1e9), 0.025, 1e-3);
  EXPECT_NEAR(stats::student_t_quantile(0.975, 10), 2.228, 1e-3);
  EXPECT_NEAR(stats::normal_quantile(0.995), 2.5758, 1e-3);
  EXPECT_NEAR(stats::student_t_cdf(0, 3), 0.5, 1e-12);
}

TEST(RunLevel, ComparesRunMediansAndNeedsABetweenRunSpread) {
  // One run per side and no profile: no between-run spread, no test.
  EXPECT_FALSE(stats::run_level_test({1, 2, 3}, {0, 0, 0}, {1, 2, 3}, {0, 0, 0}, NAN, 0));
  // Two runs per side: run medians 10, 12 vs 11, 13.
  auto t = stats::run_level_test({10, 10, 12, 12}, {0, 0, 1, 1}, {11, 11, 13, 13}, {0, 0, 1, 1}, NAN, 0);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->runs_base, 2);
  EXPECT_EQ(t->df, 2);
  EXPECT_GT(t->p_two_sided, 0.05);
  EXPECT_LT(t->ci.low, 1);
  EXPECT_GT(t->ci.high, 1);
  // The host's profile is a floor: a smaller observed spread does not count.
  auto floored = stats::run_level_test({10, 10, 10.1, 10.1}, {0, 0, 1, 1}, {10.5, 10.5, 10.6, 10.6}, {0, 0, 1, 1}, 0.05, 4);
  ASSERT_TRUE(floored);
  EXPECT_TRUE(floored->floor_applied);
  EXPECT_GE(floored->sd_between, 0.05);
  EXPECT_GT(floored->p_two_sided, 0.05);  // +5% inside a 5% between-run drift
  // One run per side with a profile: the profile gives the spread.
  auto single = stats::run_level_test({100, 101, 99}, {0, 0, 0}, {150, 151, 149}, {0, 0, 0}, 0.05, 4);
  ASSERT_TRUE(single);
  EXPECT_LT(single->p_two_sided, 0.01);
  EXPECT_GT(single->detectable(0.05), 0.1);  // 5% drift per run: ~+22% needed at df 4
}

// The whole decision (compare()) over 1000 synthetic A/A comparisons of 10
// benchmarks each, with between-run drift larger than the within-run spread:
// the share of comparisons flagging anything stays at or below alpha.
TEST(RunLevel, AaFalsePositiveRateOfTheWholeDecisionIsAtMostAlpha) {
  const Host h{0.05, 0.03};
  const std::vector<double> levels(10, 100.0);
  int with_flags = 0, rows_flagged = 0;
  stats::Prng g(42);
  for (int seed = 0; seed < 1000; ++seed) {
    auto base = side(g, h, 10, 3, 5, levels), next = side(g, h, 10, 3, 5, levels);
    auto c = compare::compare(base, next, compare::Options{});
    ASSERT_TRUE(c) << c.status().message();
    rows_flagged += flagged(*c);
    with_flags += flagged(*c) > 0;
    ASSERT_EQ(c->comparisons, 10u);  // page_faults (diagnostic) is not in the family
  }
  EXPECT_LE(with_flags, 50 + 15) << "comparisons with any flag, of 1000 (alpha 0.05)";
  RecordProperty("aa_comparisons_with_a_flag", with_flags);
  std::printf("A/A, 3 runs per side: %d of 1000 comparisons flagged something (%d rows)\n", with_flags, rows_flagged);
}

// The same with one run per side and the host's noise profile (5 A/A runs,
// a fresh calibration per comparison) as the between-run spread; and, for
// contrast, without it (the repetitions of one run understate the drift).
TEST(RunLevel, OneRunPerSideUsesTheNoiseProfileAndStaysAtAlpha) {
  const Host h{0.05, 0.03};
  const std::vector<double> levels(10, 100.0);
  int with_profile = 0, without = 0;
  stats::Prng g(7);
  for (int seed = 0; seed < 1000; ++seed) {
    compare::Options o = profile_from(g, h, 10, 5, 5);
    auto base = side(g, h, 10, 1, 5, levels), next = side(g, h, 10, 1, 5, levels);
    auto c = compare::compare(base, next, o);
    ASSERT_TRUE(c);
    with_profile += flagged(*c) > 0;
    if (seed < 200) {
      compare::Options none;
      none.min_repetitions = 5;
      auto u = compare::compare(base, next, none);
      without += flagged(*u) > 0;
    }
  }
  EXPECT_LE(with_profile, 50 + 15) << "with the profile, of 1000";
  std::printf("A/A, 1 run per side: %d of 1000 flagged with the noise profile; %d of 200 without it\n", with_profile,
              without);
  EXPECT_GT(without, 20) << "expected the single-run repetition test to flag drift (it is why runs matter)";
}

// Power on two-level data with drift: a +20% change of one benchmark among
// ten is flagged (as a regression, never an improvement) with 5 runs per side
// (3 runs leave 4 degrees of freedom: about half the time at this drift), and
// with 3 runs per side plus the host's noise profile.
TEST(RunLevel, PowerOnTwoLevelDataWithDrift) {
  const Host h{0.03, 0.05};
  std::vector<double> base_levels(10, 100.0), next_levels(10, 100.0);
  next_levels[3] = 120.0;
  int hits = 0, wrong = 0, others = 0;
  stats::Prng g(99);
  for (int seed = 0; seed < 200; ++seed) {
    const bool with_profile = seed % 2;
    compare::Options o = with_profile ? profile_from(g, h, 10, 5, 5) : compare::Options{};
    const int runs = with_profile ? 3 : 5;
    auto base = side(g, h, 10, runs, 5, base_levels), next = side(g, h, 10, runs, 5, next_levels);
    auto c = compare::compare(base, next, o);
    ASSERT_TRUE(c);
    for (const auto& b : c->benchmarks) {
      if (b.name == "b/3") {
        hits += b.verdict == Verdict::regression;
        wrong += b.verdict == Verdict::improvement;
      } else {
        others += b.verdict == Verdict::regression || b.verdict == Verdict::improvement;
      }
    }
  }
  std::printf("power, +20%%, 5 runs (or 3 + profile) x 5 repetitions per side, 3%% drift: %d of 200 flagged, %d wrong way, %d other "
              "rows flagged\n",
              hits, wrong, others);
  EXPECT_GE(hits, 160);
  EXPECT_EQ(wrong, 0);
  EXPECT_LE(others, 20);
}

// With one run per side and a profile, a row that cannot reach significance
// says what it could not see; a row that changed far beyond it is flagged.
TEST(RunLevel, EveryNoChangeRowSaysWhatItCouldNotSee) {
  const Host h{0.04, 0.03};
  stats::Prng g(5);
  compare::Options o = profile_from(g, h, 2, 5, 5);
  auto base = side(g, h, 2, 1, 5, {100, 100}), next = side(g, h, 2, 1, 5, {100, 200});
  auto c = compare::compare(base, next, o);
  ASSERT_TRUE(c);
  for (const auto& b : c->benchmarks) {
    const auto& rt = b.metrics.front();
    ASSERT_TRUE(rt.runs_test) << b.name;
    EXPECT_GT(rt.detectable_pct, 2) << b.name;
    if (b.name == "b/0") {
      EXPECT_EQ(rt.verdict, Verdict::no_change) << rt.reason;
      EXPECT_NE(rt.reason.find("could not see < "), std::string::npos) << rt.reason;
    } else {
      EXPECT_EQ(rt.verdict, Verdict::regression) << rt.reason;
    }
  }
}

TEST(Roles, DiagnosticMetricsShowButNeverGate) {
  results::ResultsFile base, next;
  for (auto* f : {&base, &next}) {
    f->metrics["real_time"] = {"us", Better::lower, MetricKind::statistical, "", MetricRole::primary, true};
    f->metrics["page_faults"] = {"faults/op", Better::lower, MetricKind::statistical, "", MetricRole::diagnostic, true};
    results::Benchmark b;
    b.name = "fork";
    b.time_unit = "us";
    for (int i = 0; i < 10; ++i) {
      results::Repetition r;
      r.index = i;
      r.real_time = 100 + i * 0.1;
      r.counters["page_faults"] = (f == &base ? 30 : 40) + i * 0.01;
      b.repetitions.push_back(r);
    }
    f->benchmarks.push_back(b);
  }
  auto c = compare::compare(base, next, compare::Options{});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->comparisons, 1u);
  EXPECT_EQ(c->diagnostic_comparisons, 1u);
  EXPECT_FALSE(c->regressed());
  const auto& pf = c->benchmarks[0].metrics[1];
  EXPECT_EQ(pf.metric, "page_faults");
  EXPECT_EQ(pf.verdict, Verdict::regression);  // shown as changed ...
  EXPECT_NE(pf.reason.find("diagnostic, does not gate"), std::string::npos) << pf.reason;
  EXPECT_EQ(c->benchmarks[0].verdict, Verdict::no_change);  // ... but the benchmark is not flagged
}

TEST(Roles, TablesWithoutRolesKeepTimeAndObjectCountsPrimary) {
  auto f = results::parse_results(
      R"({"context":{"rmapbench.schema_version":"1","rmapbench.metrics":
          "{\"real_time\":{\"unit\":\"time_unit\"},\"page_faults\":{\"unit\":\"faults/op\"},\"anon_vma_per_child\":{\"unit\":\"objects\",\"kind\":\"exact\"},\"x\":{\"unit\":\"us\",\"role\":\"primary\"}}"},
          "benchmarks":[{"name":"a","run_name":"a","run_type":"iteration","repetition_index":0,"real_time":1,"time_unit":"us","iterations":1}]})",
      "t.json");
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->metrics.at("real_time").role, MetricRole::primary);
  EXPECT_EQ(f->metrics.at("page_faults").role, MetricRole::diagnostic);
  EXPECT_EQ(f->metrics.at("anon_vma_per_child").role, MetricRole::primary);
  EXPECT_EQ(f->metrics.at("x").role, MetricRole::primary);
  auto bad = results::parse_results(
      R"({"context":{"rmapbench.schema_version":"1","rmapbench.metrics":"{\"x\":{\"role\":\"maybe\"}}"},"benchmarks":[]})",
      "t.json");
  EXPECT_FALSE(bad);
}

TEST(Runs, MergedRunsCarryARunIndexAndPoolAcrossFiles) {
  const std::string one =
      R"({"context":{"rmapbench.complete":"true"},"benchmarks":[{"name":"a","run_name":"a","run_type":"iteration","repetition_index":0,"real_time":1,"time_unit":"us","iterations":1}]})";
  const std::string merged = cli::merge_run_results({one, one, one});
  auto f = results::parse_results(merged, "m.json");
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->runs(), 3);
  EXPECT_EQ(f->get("rmapbench.runs"), "3");
  ASSERT_EQ(f->benchmarks.size(), 1u);
  EXPECT_EQ(f->benchmarks[0].sample_runs("real_time"), (std::vector<int>{0, 1, 2}));
  // Two files of one side: the second file's runs come after the first's.
  auto g = results::parse_results(merged, "n.json");
  auto both = results::combine_runs({*f, *g});
  EXPECT_EQ(both.runs(), 6);
  EXPECT_EQ(both.benchmarks[0].samples("real_time").size(), 6u);
  EXPECT_EQ(both.path, "m.json + n.json");
  // The same run and repetition twice in one file is still refused.
  auto dup = results::parse_results(
      R"({"benchmarks":[{"name":"a","run_type":"iteration","repetition_index":0,"run_index":1,"real_time":1,"time_unit":"us"},
                        {"name":"a","run_type":"iteration","repetition_index":0,"run_index":1,"real_time":1,"time_unit":"us"}]})",
      "d.json");
  EXPECT_FALSE(dup);
}

TEST(NoiseProfile, RoundTripsAndRefusesGarbage) {
  noise::Profile p;
  p.arch = "x86_64";
  p.host_id = "abc";
  p.runs = 5;
  p.benchmarks["b"]["real_time"] = {0.04, 5, 100};
  auto q = noise::parse(noise::to_json(p), "p");
  ASSERT_TRUE(q) << q.status().message();
  EXPECT_DOUBLE_EQ(q->benchmarks["b"]["real_time"].sd_log, 0.04);
  compare::Options o;
  noise::apply(*q, o, "p");
  EXPECT_EQ(o.noise.at(compare::noise_key("b", "real_time")).runs, 5);
  EXPECT_FALSE(noise::parse("{}", "p"));
  EXPECT_FALSE(noise::parse(R"({"rmapbench.noise_profile":1,"benchmarks":{"b":{"m":{"sd_log":-1,"runs":3}}}})", "p"));
}

TEST(Notes, AslrDifferenceAndUnknownBetweenRunVariationAreSaid) {
  stats::Prng g(3);
  const Host h;
  auto base = side(g, h, 1, 1, 5, {100}), next = side(g, h, 1, 1, 5, {100});
  base.context["aslr_effective"] = "off";
  base.context["aslr_how"] = "ADDR_NO_RANDOMIZE set by rmapbench for its process tree (re-exec)";
  next.context["aslr_effective"] = "on";
  next.context["aslr_how"] = "--keep-aslr";
  auto c = compare::compare(base, next, compare::Options{});
  ASSERT_TRUE(c);
  auto has = [&](const std::string& s) {
    for (const auto& n : c->notes)
      if (n.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("ASLR differs between the sides: base off")) << ::testing::PrintToString(c->notes);
  EXPECT_TRUE(has("between-run variation unknown")) << ::testing::PrintToString(c->notes);
  // Several runs per side: known, no such note.
  auto b3 = side(g, h, 1, 3, 5, {100}), n3 = side(g, h, 1, 3, 5, {100});
  auto c3 = compare::compare(b3, n3, compare::Options{});
  for (const auto& n : c3->notes) EXPECT_EQ(n.find("between-run variation unknown"), std::string::npos) << n;
}
