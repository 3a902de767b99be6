// fork_storm times its forks in the lean forker (benchmarks/forker): the
// results say so, and where the forker cannot be started the benchmark
// skips saying why instead of timing forks of the large process.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;

namespace {

std::vector<std::string> storm_args(const std::string& out) {
  return {"run",    "--quiet", "--repetitions=2", "--runs=1", "--benchmark_min_time=0.001", "--filter", "^fork_storm/",
          "--sweep=vmas=1,64", "--out", out};
}

std::vector<json> iteration_rows(const std::string& path) {
  std::vector<json> rows;
  const json j = json::parse(read_file(path));
  for (const json& b : j.at("benchmarks"))
    if (b.at("run_type") == "iteration") rows.push_back(b);
  return rows;
}

long vmas_of(const std::string& name) { return std::stol(name.substr(name.find("vmas:") + 5)); }

}  // namespace

TEST(ForkStormForker, ForksRunInTheLeanProcess) {
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_rmapbench(storm_args(out));
  ASSERT_EQ(o.exit_code, 0) << o.err << o.out;
  const auto rows = iteration_rows(out);
  ASSERT_GE(rows.size(), 12u);  // 3 phases x 2 sizes x 2 repetitions at least
  for (const json& b : rows) {
    const std::string name = b.at("name");
    ASSERT_FALSE(b.value("error_occurred", false)) << b.dump();
    const long vmas = vmas_of(name);
    // The layout, its two guards, the stamp page and the static program's
    // own handful; the suite's process has about 80 more.
    ASSERT_TRUE(b.contains("forker_vmas")) << b.dump();
    EXPECT_GE(b.at("forker_vmas").get<double>(), vmas + 3) << name;
    EXPECT_LE(b.at("forker_vmas").get<double>(), vmas + 20) << name;
    EXPECT_NE(b.value("label", "").find("lean process with"), std::string::npos) << b.dump();
    for (const char* c : {"fork_us", "exit_us", "page_faults", "context_switches", "cpu_migrations", "sys_us"})
      EXPECT_TRUE(b.contains(c)) << name << " lacks " << c;
    EXPECT_GT(b.at("real_time").get<double>(), 0) << name;
  }
}

TEST(ForkStormForker, FallsBackToTheFileNextToTheBinaryAndSkipsWithoutIt) {
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  const std::vector<std::string> file_only = {"RMAPBENCH_TEST_FORKER_FROM=file"};
  Outcome from_file = run_rmapbench(storm_args(out), file_only);
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err << from_file.out;
  for (const json& b : iteration_rows(out)) EXPECT_FALSE(b.value("error_occurred", false)) << b.dump();

  // A copy of rmapbench alone in a directory: no file to fall back to.
  const std::string lone = dir.path + "/rmapbench";
  std::filesystem::copy_file(RMAPBENCH_BINARY, lone);
  std::vector<std::string> argv{lone};
  for (const auto& a : storm_args(out)) argv.push_back(a);
  Outcome lone_run = run_command(argv, file_only);
  EXPECT_EQ(lone_run.exit_code, 0) << "a skip is not a failure: " << lone_run.err << lone_run.out;
  const auto rows = iteration_rows(out);
  ASSERT_FALSE(rows.empty());
  for (const json& b : rows) {
    ASSERT_TRUE(b.value("error_occurred", false)) << b.dump();
    const std::string msg = b.at("error_message");
    EXPECT_EQ(msg.rfind("skipped: cannot start the lean process the forks are timed from", 0), 0u) << msg;
    EXPECT_NE(msg.find(dir.path + "/rmapbench-forker"), std::string::npos) << msg;
  }
}
