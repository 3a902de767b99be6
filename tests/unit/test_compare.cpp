// Verdict logic, thresholds, exact metrics and the compatibility check.
#include <gtest/gtest.h>

#include "results_fixture.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/compare/compare.hpp"

using namespace rmapbench;
using compare::Verdict;
using rmapbench::testing::around;
using rmapbench::testing::fixture_path;
using rmapbench::testing::host_context;
using rmapbench::testing::load_fixture;
using rmapbench::testing::make_results;

namespace {

compare::Comparison run(const results::ResultsFile& a, const results::ResultsFile& b, const compare::Options& o = {}) {
  auto c = compare::compare(a, b, o);
  if (!c) throw std::runtime_error(c.status().message());
  return *c;
}

const compare::MetricRow& row(const compare::Comparison& c, const std::string& bench, const std::string& metric) {
  for (const auto& b : c.benchmarks)
    if (b.name == bench)
      for (const auto& m : b.metrics)
        if (m.metric == metric) return m;
  throw std::runtime_error("no row " + bench + " " + metric);
}

const compare::BenchmarkRow& bench(const compare::Comparison& c, const std::string& name) {
  for (const auto& b : c.benchmarks)
    if (b.name == name) return b;
  throw std::runtime_error("no benchmark " + name);
}

}  // namespace

TEST(Compare, AAComparisonFlagsNothing) {
  compare::Options no_fits;
  no_fits.sweep_fits = false;  // pins the fixture's own rows (the sweep fits: SweepFits below)
  auto c = run(load_fixture("base.json"), load_fixture("aa.json"), no_fits);
  EXPECT_FALSE(c.regressed());
  EXPECT_EQ(c.count(Verdict::regression), 0u);
  EXPECT_EQ(c.count(Verdict::improvement), 0u);
  EXPECT_EQ(c.count(Verdict::no_change), 5u);
  EXPECT_EQ(c.count(Verdict::skipped), 1u);
  EXPECT_TRUE(c.incompatibilities.empty());
  EXPECT_FALSE(c.forced);
  // Comparing a file with itself: every statistical p is 1, every change 0.
  auto same = run(load_fixture("base.json"), load_fixture("base.json"));
  for (const auto& b : same.benchmarks)
    for (const auto& m : b.metrics) {
      EXPECT_EQ(m.verdict, Verdict::no_change) << b.name << " " << m.metric;
      EXPECT_DOUBLE_EQ(m.change_pct, 0);
    }
}

TEST(Compare, FivePercentShiftIsFlagged) {
  compare::Options no_fits;
  no_fits.sweep_fits = false;
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"), no_fits);
  EXPECT_TRUE(c.regressed());
  const auto& r = row(c, "fork_storm/fork_exit_wait/vmas:1000", "real_time");
  EXPECT_EQ(r.verdict, Verdict::regression) << r.reason;
  EXPECT_TRUE(r.significant);
  EXPECT_NEAR(r.change_pct, 5, 1.5);
  EXPECT_LT(r.p_adjusted, 0.05);
  EXPECT_GT(r.ci.low, 1.0);  // the bootstrap CI excludes "no change"
  ASSERT_TRUE(r.u);
  EXPECT_TRUE(r.u->exact);
  EXPECT_EQ(bench(c, "fork_storm/fork_exit_wait/vmas:1000").verdict, Verdict::regression);
  // Unshifted benchmarks stay unflagged.
  EXPECT_EQ(row(c, "fork_storm/fork_exit_wait/vmas:1", "real_time").verdict, Verdict::no_change);
  // Kernel config differences are reported, not refused.
  ASSERT_EQ(c.config_differences.size(), 1u);
  EXPECT_EQ(c.config_differences[0].what, "CONFIG_ANON_VMA_LAZY");
  EXPECT_EQ(c.config_differences[0].base, "not set");
  EXPECT_EQ(c.config_differences[0].next, "y");
  // The correction family: the tests of primary metrics only (issue 10: the
  // diagnostic counters - forks_per_s, page_faults - no longer dilute it).
  EXPECT_EQ(c.comparisons, 5u);
  EXPECT_EQ(c.comparisons + c.diagnostic_comparisons, 11u);  // every test made
}

TEST(Compare, ThresholdGatesSignificantChanges) {
  compare::Options o;
  o.threshold_pct = 10;
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"), o);
  const auto& r = row(c, "fork_storm/fork_exit_wait/vmas:1000", "real_time");
  EXPECT_EQ(r.verdict, Verdict::no_change);
  EXPECT_TRUE(r.significant);
  EXPECT_NE(r.reason.find("significant but"), std::string::npos) << r.reason;
  // A per-metric threshold overrides the global one for that metric only.
  compare::Options per;
  per.metric_threshold_pct["real_time"] = 10;
  auto d = run(load_fixture("base.json"), load_fixture("shift5.json"), per);
  EXPECT_EQ(row(d, "fork_storm/fork_exit_wait/vmas:1000", "real_time").verdict, Verdict::no_change);
  EXPECT_DOUBLE_EQ(row(d, "fork_storm/fork_exit_wait/vmas:1000", "real_time").threshold_pct, 10);
}

TEST(Compare, ExactMetricsAreComparedExactly) {
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"));
  const auto& r = row(c, "anon_vma_footprint/held_children/vmas:1000", "anon_vma_per_child");
  EXPECT_EQ(r.info.kind, MetricKind::exact);
  EXPECT_EQ(r.verdict, Verdict::improvement) << r.reason;  // 1000 -> 1 objects, lower is better
  EXPECT_FALSE(r.u);                                        // no statistics for exact metrics
  EXPECT_NE(r.reason.find("exact: 1000 -> 1"), std::string::npos) << r.reason;

  auto ctx = host_context();
  auto exact = [&](std::vector<double> base, std::vector<double> next, compare::Options o = {}) {
    auto a = make_results("a.json", ctx, {{"f", around(100, 0.01), {{"anon_vma_per_child", base}}, ""}});
    auto b = make_results("b.json", ctx, {{"f", around(100, 0.01, 10, 1), {{"anon_vma_per_child", next}}, ""}});
    return row(run(a, b, o), "f", "anon_vma_per_child");
  };
  std::vector<double> ten_2000(10, 2000), ten_2001(10, 2001);
  EXPECT_EQ(exact(ten_2000, ten_2000).verdict, Verdict::no_change);
  // One object more per child is a regression: no threshold, no test.
  auto one_more = exact(ten_2000, ten_2001);
  EXPECT_EQ(one_more.verdict, Verdict::regression) << one_more.reason;
  // Unless a per-metric tolerance says otherwise.
  compare::Options tolerant;
  tolerant.metric_threshold_pct["anon_vma_per_child"] = 1;
  EXPECT_EQ(exact(ten_2000, ten_2001, tolerant).verdict, Verdict::no_change);
  // A kernel count that moves between repetitions (system-wide slab activity)
  // cannot be compared exactly: it is compared statistically, and says so.
  std::vector<double> varying(10, 2000);
  varying[3] = 2004;
  auto v = exact(ten_2000, varying);
  EXPECT_EQ(v.verdict, Verdict::no_change) << v.reason;
  EXPECT_TRUE(v.u);
  EXPECT_EQ(v.reason.rfind("exact metric varies within new (2000..2004), compared statistically: ", 0), 0u) << v.reason;
  auto lazy = exact(around(1067, 0.002), around(1, 0.002, 10, 1));  // ~1 anon_vma per VMA -> ~none
  EXPECT_EQ(lazy.verdict, Verdict::improvement) << lazy.reason;
  EXPECT_NE(lazy.reason.find("compared statistically"), std::string::npos) << lazy.reason;
}

TEST(Compare, NoisyRowsSayWhy) {
  auto c = run(load_fixture("base.json"), load_fixture("noisy.json"));
  EXPECT_FALSE(c.regressed());
  const auto& few = row(c, "cow/child_write/sharers:8", "real_time");
  EXPECT_EQ(few.verdict, Verdict::noisy);
  EXPECT_EQ(few.reason, "3 repetitions < 5 (new)");
  const auto& wide = row(c, "fork_storm/fork_exit_wait/vmas:1000", "real_time");
  EXPECT_EQ(wide.verdict, Verdict::noisy);
  EXPECT_NE(wide.reason.find("% > 10% (new)"), std::string::npos) << wide.reason;
  EXPECT_EQ(wide.reason.rfind("robust CV ", 0), 0u) << wide.reason;
}

TEST(Compare, ChangeLargerThanTheSpreadIsFlaggedDespiteHighCv) {
  auto ctx = host_context();
  std::vector<double> base = around(100, 0.2, 12), next = around(200, 0.2, 12, 1);  // +100%, CV ~12%
  auto c = run(make_results("a.json", ctx, {{"x", base, {}, ""}}), make_results("b.json", ctx, {{"x", next, {}, ""}}));
  const auto& r = row(c, "x", "real_time");
  EXPECT_EQ(r.verdict, Verdict::regression) << r.reason;
  EXPECT_NE(r.reason.find("beyond CV"), std::string::npos) << r.reason;
}

TEST(Compare, DirectionComesFromTheMetricsTable) {
  auto ctx = host_context();
  // forks_per_s is higher-is-better: a 10% drop is a regression, a 10% rise an improvement.
  auto a = make_results("a.json", ctx, {{"x", around(100, 0.01), {{"forks_per_s", around(1000, 0.01)}}, ""}});
  auto down = make_results("b.json", ctx, {{"x", around(100, 0.01, 10, 1), {{"forks_per_s", around(900, 0.01, 10, 1)}}, ""}});
  auto up = make_results("c.json", ctx, {{"x", around(100, 0.01, 10, 1), {{"forks_per_s", around(1100, 0.01, 10, 1)}}, ""}});
  EXPECT_EQ(row(run(a, down), "x", "forks_per_s").verdict, Verdict::regression);
  EXPECT_EQ(row(run(a, up), "x", "forks_per_s").verdict, Verdict::improvement);
  // And real_time (lower is better) 10% faster is an improvement.
  auto faster = make_results("d.json", ctx, {{"x", around(90, 0.01, 10, 1), {}, ""}});
  EXPECT_EQ(row(run(a, faster), "x", "real_time").verdict, Verdict::improvement);
}

TEST(Compare, AbsentSkippedAndFailedBenchmarks) {
  auto ctx = host_context();
  auto a = make_results("a.json", ctx,
                        {{"both", around(10, 0.01), {}, ""},
                         {"gone", around(10, 0.01), {}, ""},
                         {"skip2", {}, {}, "skipped: no THP"},
                         {"breaks", around(10, 0.01), {}, ""},
                         {"skip_new", around(10, 0.01), {}, ""}});
  auto b = make_results("b.json", ctx,
                        {{"both", around(10, 0.01, 10, 1), {}, ""},
                         {"skip2", {}, {}, "skipped: no THP"},
                         {"breaks", {}, {}, "error: child 3 lost its mapping"},
                         {"skip_new", {}, {}, "skipped: no KSM"},
                         {"fresh", around(10, 0.01), {}, ""}});
  auto c = run(a, b);
  EXPECT_EQ(bench(c, "both").verdict, Verdict::no_change);
  EXPECT_EQ(bench(c, "gone").verdict, Verdict::only_in_base);
  EXPECT_EQ(bench(c, "fresh").verdict, Verdict::only_in_new);
  EXPECT_EQ(bench(c, "skip2").verdict, Verdict::skipped);
  EXPECT_EQ(bench(c, "skip2").reason, "no THP");
  EXPECT_EQ(bench(c, "skip_new").verdict, Verdict::only_in_base);
  EXPECT_NE(bench(c, "skip_new").reason.find("skipped: no KSM"), std::string::npos);
  EXPECT_EQ(bench(c, "breaks").verdict, Verdict::error);
  EXPECT_EQ(bench(c, "breaks").reason, "failed in new: child 3 lost its mapping");
  EXPECT_TRUE(c.regressed());  // a correctness failure fails the gate
  // Display order: failures and regressions first.
  EXPECT_EQ(c.sorted().front()->name, "breaks");
}

TEST(Compare, IncompatibleHostsAreRefusedWithTheDifferences) {
  auto r = compare::compare(load_fixture("base.json"), load_fixture("other_host.json"), {});
  ASSERT_FALSE(r);
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("refusing to compare"), std::string::npos) << m;
  EXPECT_NE(m.find("arch: x86_64 vs aarch64"), std::string::npos) << m;
  EXPECT_NE(m.find("host: CPU model"), std::string::npos) << m;
  EXPECT_NE(m.find("host: CPUs: 2 vs 8"), std::string::npos) << m;
  EXPECT_NE(m.find("thp.enabled: madvise vs never"), std::string::npos) << m;
  EXPECT_NE(m.find("--force"), std::string::npos) << m;
  EXPECT_EQ(m.find("pages_sharing"), std::string::npos) << "KSM statistics are not settings: " << m;

  compare::Options force;
  force.force = true;
  auto c = run(load_fixture("base.json"), load_fixture("other_host.json"), force);
  EXPECT_TRUE(c.forced);
  EXPECT_EQ(c.incompatibilities.size(), 4u);
}

TEST(Compare, EmulatedVsNativeIsRefused) {
  auto ctx = host_context();
  auto emu = host_context();
  emu["emulation"] = "qemu-tcg";
  auto r = compare::compare(make_results("a.json", ctx, {{"x", around(10, 0.01), {}, ""}}),
                            make_results("b.json", emu, {{"x", around(10, 0.01), {}, ""}}), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("emulation: none vs qemu-tcg"), std::string::npos) << r.status().message();
  // KSM knob values too.
  auto knob = host_context();
  knob["ksm.run"] = "1";
  auto k = compare::compare(make_results("a.json", ctx, {{"x", around(10, 0.01), {}, ""}}),
                            make_results("b.json", knob, {{"x", around(10, 0.01), {}, ""}}), {});
  ASSERT_FALSE(k);
  EXPECT_NE(k.status().message().find("ksm.run: 0 vs 1"), std::string::npos);
}

// Issue 12: a 6.1 and a 6.12 guest were refused over "thp.mthp_sizes_kb:  vs
// 8 16 32 ...": what a kernel can do is shown like its CONFIG_ options,
// never refused; a knob someone set still is.
TEST(Compare, KernelCapabilitiesAreShownNotRefused) {
  auto old_kernel = host_context();
  old_kernel["thp.mthp_sizes_kb"] = "";
  auto new_kernel = host_context();
  new_kernel["thp.mthp_sizes_kb"] = "16 32 64 128 256 512 1024 2048";
  auto r = compare::compare(make_results("a.json", old_kernel, {{"x", around(10, 0.01), {}, ""}}),
                            make_results("b.json", new_kernel, {{"x", around(10, 0.01), {}, ""}}), {});
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->incompatibilities.empty());
  bool shown = false;
  for (const auto& d : r->config_differences)
    if (d.what == "thp.mthp_sizes_kb" && d.base == "none" && d.next == "16 32 64 128 256 512 1024 2048") shown = true;
  EXPECT_TRUE(shown);
}

// Issue 14: root's older results say "firecracker" where every user's probe
// now says "kvm" for the same VM.
TEST(Compare, FirecrackerAndKvmAreTheSameVirtualization) {
  auto fc = host_context();
  fc["emulation"] = "firecracker";
  auto kvm = host_context();
  kvm["emulation"] = "kvm";
  auto r = compare::compare(make_results("a.json", fc, {{"x", around(10, 0.01), {}, ""}}),
                            make_results("b.json", kvm, {{"x", around(10, 0.01), {}, ""}}), {});
  ASSERT_TRUE(r) << r.status().message();
  auto tcg = host_context();
  tcg["emulation"] = "qemu-tcg";
  EXPECT_FALSE(compare::compare(make_results("a.json", kvm, {{"x", around(10, 0.01), {}, ""}}),
                                make_results("b.json", tcg, {{"x", around(10, 0.01), {}, ""}}), {}));
}

TEST(Compare, MismatchedUnitsAreAnInputError) {
  auto r = compare::compare(load_fixture("base.json"), load_fixture("mismatched_units.json"), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("mismatched time units"), std::string::npos);
}

TEST(Compare, PlainGoogleBenchmarkFilesCompareWithANote) {
  auto c = run(load_fixture("plain_gbench.json"), load_fixture("plain_gbench.json"));
  bool noted = false;
  for (const auto& n : c.notes) noted = noted || n.find("compatibility not checked") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_FALSE(c.regressed());
}

TEST(Compare, TooFewRepetitionsForTheFamilyIsNoted) {
  auto ctx = host_context();
  std::vector<rmapbench::testing::SyntheticBench> a, b;
  for (int i = 0; i < 8; ++i) {
    a.push_back({"x" + std::to_string(i), around(10, 0.01, 5), {}, ""});
    b.push_back({"x" + std::to_string(i), around(11, 0.01, 5, 1), {}, ""});
  }
  auto c = run(make_results("a.json", ctx, a), make_results("b.json", ctx, b));
  // 5 vs 5 repetitions: the smallest p is 2/252 = 0.0079 > 0.05/8.
  bool noted = false;
  for (const auto& n : c.notes) noted = noted || n.find("smallest possible p") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Compare, HolmIsAvailable) {
  compare::Options o;
  o.correction = compare::Correction::holm;
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"), o);
  EXPECT_EQ(row(c, "fork_storm/fork_exit_wait/vmas:1000", "real_time").verdict, Verdict::regression);
  EXPECT_NE(c.test_description().find("Holm-Bonferroni"), std::string::npos);
}

TEST(HostFingerprint, StableAndDocumented) {
  auto ctx = host_context();
  std::map<std::string, std::string> c;
  for (auto it = ctx.begin(); it != ctx.end(); ++it) c[it.key()] = it.value().get<std::string>();
  auto fp = baseline::fingerprint(c);
  ASSERT_TRUE(fp);
  EXPECT_EQ(fp->canonical(),
            "cpu_model=Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz\ncpus=2\nnuma=numa_node0_cpus=0-1;numa_nodes=1;\n"
            "mem_gib=8\n");
  EXPECT_EQ(fp->id().size(), 12u);
  // Memory moves a little between kernels; the id does not.
  c["mem_total_bytes"] = "8300000000";
  c["numa_node0_memory_bytes"] = "123";
  c["kernel_release"] = "6.9.0";
  c["hostname"] = "elsewhere";
  EXPECT_EQ(baseline::fingerprint(c)->id(), fp->id());
  c["cpus_online"] = "4";
  EXPECT_NE(baseline::fingerprint(c)->id(), fp->id());
  EXPECT_FALSE(baseline::fingerprint({}));
}

// A results file is anyone's text: counts and sizes no host has (the fuzzer
// found 33333333333333333333 CPUs, a UB conversion to int) stay unknown.
TEST(HostFingerprint, NumbersNoHostHasStayUnknown) {
  for (const char* cpus : {"33333333333333333333", "1e400", "-5", "nan", "inf", "-inf", "1e19"}) {
    std::map<std::string, std::string> c{{"cpu_model", "x"}, {"cpus_online", cpus}, {"mem_total_bytes", cpus}};
    auto fp = baseline::fingerprint(c);
    ASSERT_TRUE(fp) << cpus;
    EXPECT_EQ(fp->cpus, 0) << cpus;
    EXPECT_EQ(fp->mem_gib, 0) << cpus;
    c = {{"cpu_model", "x"}, {"num_cpus", cpus}, {"mem_total_kb", cpus}};
    fp = baseline::fingerprint(c);
    ASSERT_TRUE(fp) << cpus;
    EXPECT_EQ(fp->cpus, 0) << cpus;
    EXPECT_EQ(fp->mem_gib, 0) << cpus;
  }
  auto fp = baseline::fingerprint({{"cpu_model", "x"}, {"cpus_online", "64"}, {"mem_total_kb", "16777216"}});
  ASSERT_TRUE(fp);
  EXPECT_EQ(fp->cpus, 64);
  EXPECT_EQ(fp->mem_gib, 16);
}

TEST(Baseline, Location) {
  auto r = load_fixture("base.json");
  auto where = baseline::locate(r);
  ASSERT_TRUE(where) << where.status().message();
  EXPECT_EQ(where->relative_path(), "x86_64/" + where->host_id + "/6.1.0-13-amd64-stock.json");
  auto plain = load_fixture("plain_gbench.json");
  auto nowhere = baseline::locate(plain);
  ASSERT_FALSE(nowhere);
  EXPECT_NE(nowhere.status().message().find("not an rmapbench result"), std::string::npos);
  EXPECT_EQ(baseline::sanitize("a/b c"), "a_b_c");
  EXPECT_EQ(baseline::sanitize(".."), "_..");
}

// Issue 10, item 5: a sweep's per-unit cost (slope) and fixed part are fitted
// per repetition and compared like any benchmark. shift5.json moves only
// vmas:1000 (+5.6%) of fork_exit_wait's vmas 1/64/1000: the per-VMA slope
// rises, and the A/A fixture's does not.
TEST(SweepFits, SlopeAndFixedPartAreComparedLikeAnyBenchmark) {
  auto c = run(load_fixture("base.json"), load_fixture("shift5.json"));
  const auto& slope = row(c, "fork_storm/fork_exit_wait/vmas:*/per_vmas", "real_time");
  EXPECT_EQ(slope.verdict, Verdict::regression) << slope.reason;
  EXPECT_NEAR(slope.change_pct, 6, 2);
  ASSERT_TRUE(slope.base);
  EXPECT_NEAR(slope.base->median, (2616.0 - 132.93) / 999, 0.3);  // about 2.5 us per VMA
  EXPECT_GT(slope.ci.low, 1.0);
  const auto& fixed = row(c, "fork_storm/fork_exit_wait/vmas:*/fixed", "real_time");
  EXPECT_TRUE(fixed.tested);
  auto aa = run(load_fixture("base.json"), load_fixture("aa.json"));
  EXPECT_EQ(row(aa, "fork_storm/fork_exit_wait/vmas:*/per_vmas", "real_time").verdict, Verdict::no_change);
  EXPECT_FALSE(aa.regressed());
}

// Two separate full-profile runs of fork_storm/fork_exit_wait on one kernel,
// recorded on this project's 2-CPU VM at a load average of 10 (builds
// running). The sweep's fixed part (a diagnostic row) read +298%, p 0.041,
// and made `compare` exit 1 although no primary metric regressed: a
// benchmark whose metrics are all diagnostic must never gate.
TEST(Compare, ABenchmarkOfDiagnosticRowsOnlyNeverCountsAsARegression) {
  auto c = run(load_fixture("full_aa_busy_base.json"), load_fixture("full_aa_busy_new.json"));
  const compare::BenchmarkRow* fixed = nullptr;
  for (const auto& b : c.benchmarks)
    if (b.name == "fork_storm/fork_exit_wait/vmas:*/fixed") fixed = &b;
  ASSERT_NE(fixed, nullptr);
  ASSERT_FALSE(fixed->metrics.empty());
  EXPECT_EQ(fixed->metrics.front().verdict, compare::Verdict::regression) << "the fixture no longer shows the case";
  EXPECT_NE(fixed->verdict, compare::Verdict::regression) << fixed->reason;
  EXPECT_EQ(c.count(compare::Verdict::regression), 0u);
}
