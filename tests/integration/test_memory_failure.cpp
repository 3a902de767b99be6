// The memory_failure workload on this host, through the real binary. It
// poisons memory, so it must never run without `--allow-destructive`: every
// row skips and names the option. With it, a kernel without
// CONFIG_MEMORY_FAILURE (this development host) skips with that reason;
// `--runs K` gives the option to every run. Where the kernel has
// CONFIG_MEMORY_FAILURE the workload really runs in a QEMU guest
// (README "QEMU test hosts"); this test then only checks the opt-in.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;

namespace {

const char* kOptInReason = "skipped: destructive: poisons memory; run with --allow-destructive (a QEMU guest passes it)";

bool lock_busy(const Outcome& o) {
  return o.exit_code == 2 && o.err.find("another rmapbench run holds") != std::string::npos;
}

Outcome run_waiting_for_lock(const std::vector<std::string>& args) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  for (;;) {
    Outcome o = run_rmapbench(args);
    if (!lock_busy(o) || std::chrono::steady_clock::now() > deadline) return o;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

// The error message of every memory_failure row, in order.
std::vector<std::string> row_messages(const json& results) {
  std::vector<std::string> messages;
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    if (b.at("name").get<std::string>().rfind("memory_failure/", 0) != 0) continue;
    messages.push_back(b.value("error_message", "(no error: it ran)"));
  }
  return messages;
}

bool kernel_has_memory_failure() { return read_file("/proc/meminfo").find("HardwareCorrupted:") != std::string::npos; }

std::vector<std::string> args(const std::string& out, std::vector<std::string> extra) {
  std::vector<std::string> a = {"run", "--quiet", "--repetitions=1", "--filter", "^memory_failure/", "--out", out};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

}  // namespace

TEST(MemoryFailure, WithoutTheOptInEveryRowSkipsAndNamesIt) {
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_waiting_for_lock(args(out, {"--runs=1"}));
  ASSERT_EQ(o.exit_code, 0) << describe(o);
  const json results = json::parse(read_file(out));
  EXPECT_EQ(results.at("context").at("rmapbench.allow_destructive"), "false");
  const auto messages = row_messages(results);
  ASSERT_EQ(messages.size(), 4u) << "hard and soft at sharers 0 and 4 (quick)";
  for (const auto& m : messages) EXPECT_EQ(m, kOptInReason);
}

TEST(MemoryFailure, WithTheOptInAKernelWithoutMemoryFailureSkipsWithThatReason) {
  if (kernel_has_memory_failure()) GTEST_SKIP() << "this kernel has CONFIG_MEMORY_FAILURE: nothing poisoned on a host";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_waiting_for_lock(args(out, {"--runs=1", "--allow-destructive"}));
  ASSERT_EQ(o.exit_code, 0) << describe(o);
  const json results = json::parse(read_file(out));
  EXPECT_EQ(results.at("context").at("rmapbench.allow_destructive"), "true");
  const auto messages = row_messages(results);
  ASSERT_EQ(messages.size(), 4u);
  for (const auto& m : messages) {
    EXPECT_EQ(m.rfind("skipped: CONFIG_MEMORY_FAILURE not set", 0), 0u) << m;
  }
}

// --runs K re-executes `run` K times: each run gets the option.
TEST(MemoryFailure, EverySeparateRunGetsTheOptIn) {
  if (kernel_has_memory_failure()) GTEST_SKIP() << "this kernel has CONFIG_MEMORY_FAILURE: nothing poisoned on a host";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_waiting_for_lock(args(out, {"--runs=2", "--allow-destructive", "--sweep=sharers=0"}));
  ASSERT_EQ(o.exit_code, 0) << describe(o);
  const json results = json::parse(read_file(out));
  EXPECT_EQ(results.at("context").at("rmapbench.allow_destructive"), "true");
  std::vector<int> runs;
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    runs.push_back(b.at("run_index"));
    EXPECT_EQ(b.value("error_message", "").rfind("skipped: CONFIG_MEMORY_FAILURE not set", 0), 0u) << b.dump();
  }
  EXPECT_EQ(runs.size(), 4u) << "hard and soft, in each of 2 runs";
}
