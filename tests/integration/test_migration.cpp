// The page-migration workload through the real rmapbench binary: `list
// --json` describes it with its needs and sweeps; on a host with one NUMA
// node every benchmark skips with that reason (it really runs in a 2-node
// QEMU guest: `rmapbench qemu --numa 2 -- run --filter '^page_migration/'`).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "kernels/host/host_facts.hpp"
#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;

namespace {

json workload(const std::string& name) {
  Outcome o = run_rmapbench({"list", "--json"});
  EXPECT_EQ(o.exit_code, 0) << describe(o);
  for (const json& w : json::parse(o.out))
    if (w.at("name") == name) return w;
  return json();
}

Outcome run_waiting_for_lock(const std::vector<std::string>& args) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  for (;;) {
    Outcome o = run_rmapbench(args);
    const bool busy = o.exit_code == 2 && o.err.find("another rmapbench run holds") != std::string::npos;
    if (!busy || std::chrono::steady_clock::now() > deadline) return o;
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
}

}  // namespace

TEST(Migration, ListShowsTheWorkloadWithItsNeedsAndSweeps) {
  const json w = workload("page_migration");
  ASSERT_FALSE(w.is_null()) << "list --json lacks page_migration";
  std::set<std::string> needs;
  for (const json& n : w.at("needs")) needs.insert(n.at("what").get<std::string>());
  EXPECT_TRUE(needs.count(">= 2 NUMA nodes")) << w.dump(2);
  std::set<std::string> sweeps;
  for (const json& s : w.at("sweep")) sweeps.insert(s.at("param").get<std::string>());
  EXPECT_EQ(sweeps, (std::set<std::string>{"sharers", "base_pages", "thps", "depth"})) << w.dump(2);
  // Every variant and folio kind in the quick profile.
  std::set<std::string> families;
  for (const json& name : w.at("profiles").at("quick")) {
    const std::string n = name.get<std::string>();
    families.insert(n.substr(0, n.find('/', n.find('/', n.find('/') + 1) + 1)));
  }
  for (const char* f : {"page_migration/move_pages/base", "page_migration/move_pages/thp", "page_migration/mbind/base",
                        "page_migration/mbind/thp", "page_migration/migrate_pages/base",
                        "page_migration/migrate_pages/thp"})
    EXPECT_TRUE(families.count(f)) << f << " not in the quick profile: " << w.at("profiles").at("quick").dump();
  // The fork chain: move_pages only, both kinds.
  const json& quick = w.at("profiles").at("quick");
  for (const char* row :
       {"page_migration/move_pages/base/pages:64/depth:4", "page_migration/move_pages/thp/folios:2/depth:4"})
    EXPECT_NE(std::find(quick.begin(), quick.end(), row), quick.end()) << row << " not in the quick profile";
  if (rmapbench::host::numa_node_count() < 2) {
    EXPECT_FALSE(w.at("runnable").get<bool>());
    EXPECT_EQ(w.at("reason").get<std::string>(),
              "needs >= 2 NUMA nodes (this host has " + std::to_string(rmapbench::host::numa_node_count()) + ")");
  }
}

TEST(Migration, EveryBenchmarkSkipsWithTheReasonOnOneNode) {
  if (rmapbench::host::numa_node_count() >= 2) GTEST_SKIP() << "this host has 2+ NUMA nodes: the workload runs here";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_waiting_for_lock(
      {"run", "--quiet", "--repetitions=1", "--runs=1", "--filter", "^page_migration/", "--out", out});
  ASSERT_EQ(o.exit_code, 0) << describe(o);
  const json results = json::parse(read_file(out));
  long rows = 0;
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    const std::string name = b.at("name");
    if (name.rfind("page_migration/", 0) != 0) continue;
    ++rows;
    EXPECT_TRUE(b.value("error_occurred", false)) << name << " did not skip";
    EXPECT_EQ(b.value("error_message", ""), "skipped: needs >= 2 NUMA nodes (this host has 1)") << name;
  }
  EXPECT_EQ(rows, 14) << "3 variants x 2 kinds x 2 sharer counts, and move_pages x 2 kinds at depth 4";
}
