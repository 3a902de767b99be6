// The README's "Adding a workload" example, compiled into the unit tests
// only: a workload is this one file. It registers through RMAPBENCH_WORKLOAD
// like every workload and runs here through Google Benchmark for real
// (forks sharers, COW-faults pages), and the harness's bookkeeping (a skip
// in one repetition, before its loop) is checked next to it.
#include <benchmark/benchmark.h>
#include <gtest/gtest.h>

#include <fmt/core.h>

#include <map>
#include <string>
#include <vector>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/harness/run.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/processes.hpp"

// ------------------------------------------------------------ the example

namespace rmapbench {
namespace {

RMAPBENCH_METRIC(kWrittenPages, {"example_written_pages", "pages", Better::lower, MetricKind::exact,
                                 "pages the parent wrote (each a COW fault) per iteration"});

constexpr long kPages = 16;

// The variants: a table, one benchmark each (times every sweep point).
struct Variant {
  const char* name;
  long stride;  // the parent writes every stride-th page
};
constexpr Variant kVariants[] = {{"every_page", 1}, {"every_other_page", 2}};

void run(benchmark::State& state, const Variant& v, const long& sharers) {
  harness::Run run(state, {"an example of the harness"});
  const long written = kPages / v.stride;
  run.time([&]() -> Result<int64_t> {
    // Setup: pages with a pattern, shared with forked sharers.
    auto layout = mm::AnonLayout::create(1, kPages, static_cast<uint32_t>(run.iterations() + 1));
    if (!layout) return layout.status();
    auto sharers_view = [&](long) { return layout->verify().context("a sharer after the parent's writes"); };
    auto group = mm::ChildGroup::spawn(sharers, {}, sharers_view);
    if (!group) return group.status();
    // The timed operation (with the per-operation counters on): COW faults.
    int64_t ns = 0;
    Status counted = run.count(1, [&] {
      const int64_t t0 = mm::monotonic_ns();
      for (long p = 0; p < kPages; p += v.stride) layout->vma_start(0)[p * mm::page_size()] ^= 1;
      ns = mm::monotonic_ns() - t0;
      return Status::ok();
    });
    if (counted.failed()) return counted;
    // The oracle: every sharer still sees the original pattern.
    if (Status s = group->release(); s.failed()) return s;
    run.add(kWrittenPages, static_cast<double>(written));
    return ns;
  }, static_cast<double>(written));
  run.report_mean(kWrittenPages);
  run.report_counts(static_cast<double>(written));
  run.finish();
}

void register_example(Registrar& r) {
  std::vector<std::pair<std::string, long>> points;
  for (long s : r.sweep("sharers", {1, 2}, {1, 2, 4})) points.emplace_back(fmt::format("/sharers:{}", s), s);
  add_variants(r, kVariants, [&](const Variant&) { return points; }, run, 2);
}

}  // namespace

RMAPBENCH_WORKLOAD(example_cow, {.name = "example_cow",
                                 .kernel_path = "do_wp_page -> wp_page_copy",
                                 .description = "The parent writes pages it shares with S forked sharers.",
                                 .oracle = "every sharer still sees the original data.",
                                 .parameters = "sharers: S (quick 1,2; full 1,2,4)",
                                 .needs = {},
                                 .register_benchmarks = register_example});

// ------------------------------------------------------------ a skip before the loop

namespace {
int g_repetition = 0;
int g_attempt = 0;
void register_skips_second_repetition(Registrar& r) {
  r.add("harness_selftest/skip_in_second_repetition", [](benchmark::State& state) {
     if (++g_repetition == 2) return harness::stop(state, Status::skip("the host lacks it the second time"));
     for (auto _ : state) state.SetIterationTime(1e-6);
   })->Iterations(3)->Repetitions(3);
  // Every other attempt declined: each iteration is tried twice.
  r.add("harness_selftest/declined_then_done", [](benchmark::State& state) {
     harness::Run run(state);
     run.time([]() -> Result<int64_t> {
       if (++g_attempt % 2 == 1) return Status::declined("the kernel declined");
       return 1000;
     }, 2, 2);
     state.counters["declined"] = static_cast<double>(run.declined());
     state.counters["iterations"] = static_cast<double>(run.iterations());
     state.counters["timed_ns"] = run.timed_ns();
   })->Iterations(4);
}
}  // namespace

RMAPBENCH_WORKLOAD(harness_selftest, {.name = "harness_selftest",
                                      .kernel_path = "none",
                                      .description = "A benchmark that skips in its second repetition.",
                                      .oracle = "none",
                                      .parameters = "none",
                                      .needs = {},
                                      .register_benchmarks = register_skips_second_repetition});

}  // namespace rmapbench

namespace {

using rmapbench::Profile;
using rmapbench::Selection;

class Collector : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration) this->runs.push_back(r);
  }
  std::vector<Run> runs;
};

std::vector<Collector::Run> run_workload(const std::string& prefix, std::vector<std::string>* names) {
  benchmark::ClearRegisteredBenchmarks();
  Selection selection;
  selection.profile = Profile::quick;
  selection.wanted = [prefix](const std::string& name) { return name.rfind(prefix, 0) == 0; };
  *names = rmapbench::register_all_benchmarks(selection);
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);
  benchmark::ClearRegisteredBenchmarks();
  return collector.runs;
}

TEST(ExampleWorkload, IsOneFileAndRunsThroughTheHarness) {
  std::vector<std::string> names;
  auto runs = run_workload("example_cow/", &names);
  EXPECT_EQ(names, (std::vector<std::string>{"example_cow/every_page/sharers:1", "example_cow/every_page/sharers:2",
                                             "example_cow/every_other_page/sharers:1",
                                             "example_cow/every_other_page/sharers:2"}));
  ASSERT_EQ(runs.size(), 4u);
  for (const auto& r : runs) {
    const std::string name = rmapbench::suite_benchmark_name(r.run_name.str());
    EXPECT_FALSE(r.error_occurred) << name << ": " << r.error_message;
    EXPECT_EQ(r.iterations, 2) << name;
    const double written = name.find("every_other_page") != std::string::npos ? 8 : 16;
    ASSERT_TRUE(r.counters.count("example_written_pages")) << name;
    EXPECT_EQ(r.counters.at("example_written_pages").value, written) << name;
    EXPECT_TRUE(r.counters.count("sys_us")) << name;
    EXPECT_NE(r.report_label.find("an example of the harness"), std::string::npos) << name;
    EXPECT_GT(r.GetAdjustedRealTime(), 0) << name;
  }
}

TEST(Harness, ADeclinedAttemptIsTriedAgainAndCounted) {
  std::vector<std::string> names;
  auto runs = run_workload("harness_selftest/declined", &names);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].error_occurred) << runs[0].error_message;
  EXPECT_EQ(runs[0].counters.at("declined").value, 4);
  EXPECT_EQ(runs[0].counters.at("iterations").value, 4);
  EXPECT_EQ(runs[0].counters.at("timed_ns").value, 4000);
  EXPECT_NEAR(runs[0].GetAdjustedRealTime(), 0.5, 1e-9);  // us per unit: 1000 ns / 2
}

TEST(Harness, ASkipBeforeTheLoopInOneRepetitionKeepsTheOthers) {
  std::vector<std::string> names;
  auto runs = run_workload("harness_selftest/skip", &names);
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_FALSE(runs[0].error_occurred);
  EXPECT_TRUE(runs[1].error_occurred);
  EXPECT_EQ(runs[1].error_message.rfind("skipped: the host lacks it the second time", 0), 0u) << runs[1].error_message;
  EXPECT_FALSE(runs[2].error_occurred);
  for (const auto& r : runs) EXPECT_EQ(r.iterations, 3);
}

}  // namespace
