// The results loader: every bad input rejected with a message naming the
// file and the problem; good input read into the model.
#include <gtest/gtest.h>

#include "results_fixture.hpp"
#include "runners/results/results.hpp"

using namespace rmapbench;
using rmapbench::testing::fixture_path;

namespace {

std::string load_error(const std::string& fixture) {
  auto r = results::load_results(fixture_path(fixture));
  EXPECT_FALSE(r) << fixture << " was accepted";
  return r ? "" : r.status().message();
}

std::string parse_error(const std::string& text, const std::string& name = "x.json") {
  auto r = results::parse_results(text, name);
  EXPECT_FALSE(r) << "accepted: " << text;
  return r ? "" : r.status().message();
}

}  // namespace

TEST(ResultsLoader, ReadsTheFixture) {
  auto r = results::load_results(fixture_path("base.json"));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->has_rmapbench_context);
  EXPECT_EQ(r->get("kernel_release"), "6.1.0-13-amd64");
  EXPECT_EQ(r->label(), "6.1.0-13-amd64 stock");
  EXPECT_EQ(r->repetitions(), 10);
  ASSERT_EQ(r->benchmarks.size(), 6u);
  const results::Benchmark* b = r->find("fork_storm/fork_exit_wait/vmas:1000");
  ASSERT_NE(b, nullptr) << "Google Benchmark's /min_time:/manual_time decorations are dropped from the key";
  EXPECT_EQ(b->raw_name, "fork_storm/fork_exit_wait/vmas:1000/min_time:0.050/manual_time");
  EXPECT_EQ(b->time_unit, "us");
  EXPECT_EQ(b->repetitions.size(), 10u);
  EXPECT_EQ(b->samples("real_time").size(), 10u);
  EXPECT_EQ(b->samples("forks_per_s").size(), 10u);
  EXPECT_EQ(b->metric_names(), (std::vector<std::string>{"real_time", "forks_per_s", "page_faults"}));
  // Metrics table: direction and kind.
  EXPECT_EQ(r->metric_info(*b, "forks_per_s").better, Better::higher);
  EXPECT_EQ(r->metric_info(*b, "real_time").unit, "us");
  const results::Benchmark* f = r->find("anon_vma_footprint/held_children/vmas:1000");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(r->metric_info(*f, "anon_vma_per_child").kind, MetricKind::exact);
  // Skips keep their prefix; they did not run.
  const results::Benchmark* s = r->find("migrate/move_pages/sharers:8");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->ran());
  ASSERT_TRUE(s->skip_message);
  EXPECT_EQ(*s->skip_message, "skipped: needs >= 2 NUMA nodes (this host has 1)");
  EXPECT_FALSE(s->error_message);
}

TEST(ResultsLoader, TruncatedFile) {
  std::string m = load_error("truncated.json");
  EXPECT_NE(m.find("truncated.json"), std::string::npos) << m;
  EXPECT_NE(m.find("truncated JSON"), std::string::npos) << m;
}

TEST(ResultsLoader, CorruptJson) {
  std::string m = parse_error("{\"context\": {}, \"benchmarks\": [}", "corrupt.json");
  EXPECT_NE(m.find("corrupt.json: not valid JSON"), std::string::npos) << m;
}

TEST(ResultsLoader, EmptyFile) {
  EXPECT_NE(parse_error("", "e.json").find("e.json: empty file"), std::string::npos);
  EXPECT_NE(parse_error(" \n", "w.json").find("w.json: contains only white space"), std::string::npos);
}

TEST(ResultsLoader, FileFromAnotherTool) {
  std::string m = load_error("other_tool.json");
  EXPECT_NE(m.find("other_tool.json"), std::string::npos) << m;
  EXPECT_NE(m.find("not a Google Benchmark results file (a file from another tool?)"), std::string::npos) << m;
  EXPECT_NE(m.find("\"results\""), std::string::npos) << "names what it found: " << m;
  EXPECT_NE(parse_error("[1, 2]").find("a JSON array"), std::string::npos);
}

TEST(ResultsLoader, UnknownSchemaVersion) {
  std::string m = load_error("unknown_schema.json");
  EXPECT_NE(m.find("unknown_schema.json"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown rmapbench.schema_version '2'"), std::string::npos) << m;
}

TEST(ResultsLoader, DuplicateNameAndRepetition) {
  std::string m = load_error("duplicates.json");
  EXPECT_NE(m.find("duplicates.json"), std::string::npos) << m;
  EXPECT_NE(m.find("duplicate benchmark 'fork_storm/fork_exit_wait/vmas:1' repetition_index 3"), std::string::npos)
      << m;
}

TEST(ResultsLoader, ZeroRepetitions) {
  std::string m = load_error("zero_repetitions.json");
  EXPECT_NE(m.find("zero_repetitions.json"), std::string::npos) << m;
  EXPECT_NE(m.find("zero repetitions"), std::string::npos) << m;
  std::string none = parse_error(R"({"context": {}, "benchmarks": []})", "none.json");
  EXPECT_NE(none.find("none.json: no benchmark entries (zero repetitions)"), std::string::npos) << none;
}

TEST(ResultsLoader, MismatchedTimeUnitsBetweenFiles) {
  auto base = results::load_results(fixture_path("base.json"));
  auto ms = results::load_results(fixture_path("mismatched_units.json"));
  ASSERT_TRUE(base);
  ASSERT_TRUE(ms) << "consistent within itself: " << ms.status().message();
  Status s = results::check_time_units(*base, *ms);
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("base.json vs"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("mismatched_units.json"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("'us' in the first file and in 'ms' in the second"), std::string::npos) << s.message();
  EXPECT_FALSE(results::check_time_units(*base, *base).failed());
}

TEST(ResultsLoader, MixedTimeUnitsWithinOneFile) {
  std::string text = R"({"context": {}, "benchmarks": [
    {"name": "a", "run_type": "iteration", "repetitions": 2, "repetition_index": 0, "real_time": 1, "time_unit": "us"},
    {"name": "a", "run_type": "iteration", "repetitions": 2, "repetition_index": 1, "real_time": 1, "time_unit": "ns"}]})";
  EXPECT_NE(parse_error(text, "mixed.json").find("mixed.json: benchmark 'a' mixes time units"), std::string::npos);
}

TEST(ResultsLoader, BadMetricsTable) {
  nlohmann::json ctx = {{"rmapbench.schema_version", "1"},
                        {"rmapbench.metrics", R"({"fork_us": {"better": "up", "kind": "statistical"}})"}};
  std::string m = parse_error(rmapbench::testing::results_json(ctx, {{"a", {1, 2}, {}, ""}}), "m.json");
  EXPECT_NE(m.find("m.json: rmapbench.metrics entry 'fork_us' has unknown direction 'up'"), std::string::npos) << m;
  ctx["rmapbench.metrics"] = "{not json";
  m = parse_error(rmapbench::testing::results_json(ctx, {{"a", {1, 2}, {}, ""}}), "m.json");
  EXPECT_NE(m.find("m.json: context key rmapbench.metrics is not valid JSON"), std::string::npos) << m;
}

TEST(ResultsLoader, PlainGoogleBenchmarkFileIsAcceptedWithDefaults) {
  auto r = results::load_results(fixture_path("plain_gbench.json"));
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_FALSE(r->has_rmapbench_context);
  ASSERT_FALSE(r->notes.empty());
  EXPECT_NE(r->notes[0].find("plain Google Benchmark file without rmapbench context"), std::string::npos);
  const results::Benchmark* b = r->find("fork_storm/fork_exit_wait/vmas:1");
  ASSERT_NE(b, nullptr);
  auto info = r->metric_info(*b, "forks_per_s");
  EXPECT_FALSE(info.declared);
  EXPECT_EQ(info.better, Better::lower);  // the documented default
  EXPECT_EQ(info.kind, MetricKind::statistical);
  EXPECT_EQ(r->metric_info(*b, "items_per_second").better, Better::higher);  // Google Benchmark's own rate
}

TEST(ResultsLoader, SkipsAndErrorsByPrefix) {
  nlohmann::json ctx = rmapbench::testing::host_context();
  auto r = rmapbench::testing::make_results("p.json", ctx,
                                            {{"s", {}, {}, "skipped: no THP"},
                                             {"e", {}, {}, "error: child lost its mapping"},
                                             {"ok", {1, 2, 3}, {}, ""}});
  EXPECT_EQ(*r.find("s")->skip_message, "skipped: no THP");
  EXPECT_EQ(*r.find("e")->error_message, "error: child lost its mapping");
  EXPECT_TRUE(r.find("ok")->ran());
  // Google Benchmark >= 1.8 writes a skip as error_occurred false + message.
  auto r18 = results::parse_results(R"({"context": {}, "benchmarks": [
    {"name": "x", "run_type": "iteration", "repetitions": 1, "repetition_index": 0, "error_occurred": false,
     "error_message": "no NUMA", "real_time": 0, "time_unit": "us"}]})",
                                    "g18.json");
  ASSERT_TRUE(r18);
  EXPECT_EQ(*r18->find("x")->skip_message, "no NUMA");
}

// Issue 10: a skip that comes and goes between the runs of one result (KSM
// refusing max_page_sharing for a while) must not turn the benchmark into
// "only in base"; a failure in any run still fails it.
TEST(ResultsLoader, SkippedInSomeRunsIsComparedOnTheOthersButAFailureNeverIs) {
  auto entry = [](const std::string& name, int run, const std::string& message, double t) {
    nlohmann::json e = {{"name", name}, {"run_type", "iteration"}, {"repetitions", 1}, {"repetition_index", 0},
                        {"run_index", run}, {"real_time", t}, {"time_unit", "us"}};
    if (!message.empty()) {
      e["error_occurred"] = true;
      e["error_message"] = message;
    }
    return e;
  };
  nlohmann::json j = {{"context", nlohmann::json::object()},
                      {"benchmarks",
                       {entry("k", 0, "", 10), entry("k", 1, "skipped: KSM busy", 0), entry("k", 2, "", 11),
                        entry("f", 0, "", 10), entry("f", 1, "error: lost a mapping", 0), entry("f", 2, "", 11)}}};
  auto r = results::parse_results(j.dump(), "partial.json");
  ASSERT_TRUE(r) << r.status().message();
  const results::Benchmark* k = r->find("k");
  ASSERT_NE(k, nullptr);
  EXPECT_TRUE(k->ran());
  EXPECT_EQ(k->samples("real_time").size(), 2u);
  bool noted = false;
  for (const auto& n : r->notes) noted |= n.find("'k' was skipped in 1 run(s) and measured in 2") != std::string::npos;
  EXPECT_TRUE(noted);
  const results::Benchmark* f = r->find("f");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->ran());
  EXPECT_EQ(*f->error_message, "error: lost a mapping");
}

TEST(ResultsLoader, AggregatesOnlyAreAFallback) {
  auto r = results::parse_results(R"({"context": {}, "benchmarks": [
    {"name": "a_mean", "run_name": "a", "run_type": "aggregate", "repetitions": 7, "aggregate_name": "mean",
     "real_time": 11, "time_unit": "us"},
    {"name": "a_median", "run_name": "a", "run_type": "aggregate", "repetitions": 7, "aggregate_name": "median",
     "real_time": 10, "time_unit": "us", "faults": 3},
    {"name": "a_stddev", "run_name": "a", "run_type": "aggregate", "repetitions": 7, "aggregate_name": "stddev",
     "real_time": 1, "time_unit": "us"}]})",
                                  "agg.json");
  ASSERT_TRUE(r) << r.status().message();
  const results::Benchmark* a = r->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->from_aggregates);
  EXPECT_EQ(a->aggregate_of, 7);
  EXPECT_EQ(a->samples("real_time"), std::vector<double>{10});
  EXPECT_EQ(a->samples("faults"), std::vector<double>{3});
  // With per-repetition entries present, aggregates are ignored.
  auto both = results::parse_results(R"({"context": {}, "benchmarks": [
    {"name": "b", "run_type": "iteration", "repetitions": 2, "repetition_index": 0, "real_time": 1, "time_unit": "us"},
    {"name": "b", "run_type": "iteration", "repetitions": 2, "repetition_index": 1, "real_time": 3, "time_unit": "us"},
    {"name": "b_median", "run_name": "b", "run_type": "aggregate", "repetitions": 2, "aggregate_name": "median",
     "real_time": 2, "time_unit": "us"}]})",
                                     "both.json");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->find("b")->samples("real_time"), (std::vector<double>{1, 3}));
  EXPECT_FALSE(both->find("b")->from_aggregates);
}

TEST(ResultsLoader, InterruptedRunIsNoted) {
  nlohmann::json ctx = rmapbench::testing::host_context();
  ctx["rmapbench.complete"] = "false";
  auto r = rmapbench::testing::make_results("i.json", ctx, {{"a", {1, 2}, {}, ""}});
  bool noted = false;
  for (const auto& n : r.notes) noted = noted || n.find("interrupted") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(ResultsLoader, UnreadableFile) {
  auto r = results::load_results("/nonexistent/dir/r.json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("/nonexistent/dir/r.json: cannot open"), std::string::npos);
}

TEST(ResultsLoader, BenchmarkKey) {
  EXPECT_EQ(results::benchmark_key("w/vmas:1/min_time:0.050/repeats:3/manual_time"), "w/vmas:1");
  EXPECT_EQ(results::benchmark_key("w/threads:4/real_time"), "w/threads:4");
  EXPECT_EQ(results::benchmark_key("plain"), "plain");
  EXPECT_EQ(results::benchmark_key("manual_time/x"), "manual_time/x");  // the first component is the workload's
}

TEST(ResultsLoader, WrongFieldTypesAreErrorsNotCrashes) {
  auto entry = [](const std::string& field) {
    return R"({"context": {}, "benchmarks": [{"name": "a", "run_type": "iteration", "repetitions": 1,)"
           R"( "repetition_index": 0, "real_time": 1, "time_unit": "us", )" +
           field + "}]}";
  };
  EXPECT_NE(parse_error(entry(R"("threads": "four")"), "t.json").find("t.json: benchmarks[0] ('a'): \"threads\" is not a number"),
            std::string::npos);
  EXPECT_NE(parse_error(entry(R"("error_occurred": "yes")")).find("\"error_occurred\" is not true or false"),
            std::string::npos);
  EXPECT_NE(parse_error(entry(R"("threads": 1e300)")).find("not a small whole number"), std::string::npos);
  std::string bad_run_type = R"({"context": {}, "benchmarks": [{"name": "a", "run_type": 7, "real_time": 1, "time_unit": "us"}]})";
  EXPECT_NE(parse_error(bad_run_type).find("\"run_type\" is not a string"), std::string::npos);
  nlohmann::json ctx = {{"rmapbench.schema_version", "1"}, {"rmapbench.metrics", R"({"x": {"unit": 5}})"}};
  std::string m = parse_error(rmapbench::testing::results_json(ctx, {{"a", {1, 2}, {}, ""}}), "m.json");
  EXPECT_NE(m.find("m.json: rmapbench.metrics entry 'x': \"unit\" is not a string"), std::string::npos) << m;
}

// Truncations at every length and random byte damage (fixed seed): the loader
// answers with a result or an error message, never a crash or an exception.
TEST(ResultsLoader, DamagedInputNeverCrashes) {
  std::string good = rmapbench::testing::results_json(
      rmapbench::testing::host_context(),
      {{"w/vmas:1", {1, 2, 3}, {{"forks_per_s", {4, 5, 6}}}, ""}, {"w/skip", {}, {}, "skipped: x"}});
  for (size_t n = 0; n < good.size(); n += 7) {
    auto r = results::parse_results(std::string_view(good).substr(0, n), "cut.json");
    EXPECT_FALSE(r) << n;
  }
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  const std::string alphabet = "{}[]\":,0123456789-.eE ntrufalsx\\";
  size_t accepted = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string s = good;
    for (int k = 0; k < 1 + static_cast<int>(next() % 4); ++k) s[next() % s.size()] = alphabet[next() % alphabet.size()];
    auto r = results::parse_results(s, "damaged.json");
    if (r) {
      ++accepted;
    } else {
      EXPECT_EQ(r.status().message().rfind("damaged.json: ", 0), 0u) << r.status().message();
    }
  }
  EXPECT_LT(accepted, 3000u);
}
