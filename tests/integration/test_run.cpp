// `rmapbench run` end to end at tiny sizes: the JSON it writes, and every
// error it promises (README "Exit codes").
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <nlohmann/json.hpp>

#include "run_rmapbench.hpp"

using namespace rmapbench::testing;
using nlohmann::json;

namespace {

// Every sweep at its smallest, so a whole workload runs in about a second.
const std::vector<std::string> kTiny = {
    "--repetitions=2",      "--runs=1", "--benchmark_min_time=0.001", "--sweep=vmas=4",     "--sweep=depth=2",
    "--sweep=new_vmas=4",   "--sweep=children=2",         "--sweep=forkers=1",  "--sweep=sharers=2",
    "--quiet"};

std::vector<std::string> tiny(std::vector<std::string> extra) {
  std::vector<std::string> args{"run"};
  args.insert(args.end(), kTiny.begin(), kTiny.end());
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

json load(const std::string& path) { return json::parse(read_file(path)); }

// The workload families whose quick benchmarks --filter selects, from the
// binary's own description of itself (list --json): a new workload joins
// the expectation without editing a list here.
std::set<std::string> families_selected_by(const std::string& filter) {
  Outcome o = run_rmapbench({"list", "--json"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const std::regex re(filter, std::regex::extended);
  std::set<std::string> families;
  for (const json& w : json::parse(o.out))
    for (const json& name : w.at("profiles").at("quick"))
      if (std::regex_search(name.get<std::string>(), re)) families.insert(w.at("name").get<std::string>());
  return families;
}

// Runs as user nobody (and optionally under a process limit).
std::vector<std::string> as_nobody(std::vector<std::string> args, int nproc = 0) {
  std::vector<std::string> argv{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"};
  if (nproc > 0) {
    argv.insert(argv.end(), {"prlimit", "--nproc=" + std::to_string(nproc), "--"});
  }
  argv.push_back(RMAPBENCH_BINARY);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

int processes_of_user(uid_t uid) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (stat(entry.path().c_str(), &st) == 0 && st.st_uid == uid) ++n;
  }
  return n;
}

}  // namespace

TEST(Run, EveryIssue2WorkloadWritesCompleteJson) {
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_rmapbench(tiny({"--filter", "^(fork_|anon_vma|cow_)", "--out", out}));
  ASSERT_EQ(o.exit_code, 0) << o.err << o.out;
  EXPECT_NE(o.out.find("results: " + out), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(out + ".partial"));
  json j = load(out);

  const json& ctx = j.at("context");
  for (const char* key : {"kernel_release", "arch", "variant", "cpu_model", "numa_nodes", "thp.enabled", "ksm.run",
                          "governor", "aslr", "emulation", "config.CONFIG_KSM", "lockdown", "perf_event_paranoid",
                          "rmapbench.schema_version", "rmapbench.version", "rmapbench.profile", "compiler",
                          "rmapbench.complete", "rmapbench.metrics", "host_name", "library_build_type"})
    EXPECT_TRUE(ctx.contains(key)) << "context lacks " << key;
  EXPECT_EQ(ctx.at("rmapbench.complete"), "true");
  EXPECT_EQ(ctx.at("rmapbench.schema_version"), "1");
  json metrics = json::parse(ctx.at("rmapbench.metrics").get<std::string>());
  EXPECT_EQ(metrics.at("fork_us").at("better"), "lower");
  EXPECT_EQ(metrics.at("anon_vma_per_child").at("kind"), "exact");

  std::set<std::string> families;
  for (const json& b : j.at("benchmarks")) {
    const std::string name = b.at("name");
    EXPECT_EQ(name.find("manual_time"), std::string::npos) << name;
    EXPECT_EQ(name.find("/iterations:"), std::string::npos) << name;
    families.insert(name.substr(0, name.find('/')));
    if (b.value("error_occurred", false)) {
      const std::string msg = b.at("error_message");
      EXPECT_EQ(msg.rfind("skipped: ", 0), 0u) << name << ": " << msg;  // a skip says why; an error would fail the run
      continue;
    }
    if (b.at("run_type") != "iteration") continue;
    EXPECT_GT(b.at("real_time").get<double>(), 0) << name;
    EXPECT_TRUE(b.contains("sys_us") || name.rfind("fork_width", 0) == 0 || name.rfind("fork_concurrent", 0) == 0 ||
                name.rfind("anon_vma_footprint", 0) == 0)
        << name << " lacks the per-operation counters";
    if (name.rfind("fork_storm", 0) == 0) {
      for (const char* c : {"fork_us", "exit_us", "page_faults", "context_switches", "cpu_migrations", "sys_us"})
        EXPECT_TRUE(b.contains(c)) << name << " lacks " << c;
    }
    if (name.rfind("anon_vma_footprint", 0) == 0 && getuid() == 0) {
      for (const char* c : {"anon_vma_per_child", "anon_vma_chain_per_child", "vm_area_struct_per_child"})
        EXPECT_TRUE(b.contains(c)) << name << " lacks " << c;
    }
  }
  EXPECT_EQ(families, families_selected_by("^(fork_|anon_vma|cow_)"));
}

TEST(Run, FootprintCountsComeFromTheKernel) {
  if (getuid() != 0) GTEST_SKIP() << "slab counters need root";
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  Outcome o = run_rmapbench({"run", "--quiet", "--repetitions=1", "--runs=1", "--filter", "anon_vma_footprint/children/",
                             "--sweep=vmas=1000", "--sweep=children=4", "--out", out});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const json results = load(out);  // a named value: a range-for over a temporary's member dangles
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    // Each live child holds about one anon_vma and two anon_vma_chains per
    // faulted VMA (its own + the link to the parent's anon_vma).
    EXPECT_NEAR(b.at("anon_vma_per_vma").get<double>(), 1.0, 0.15) << b.dump();
    EXPECT_NEAR(b.at("anon_vma_chain_per_vma").get<double>(), 2.0, 0.3) << b.dump();
  }
}

TEST(Run, OracleFailureIsReportedAndExitsOne) {
  TempDir dir;
  const std::string out = dir.path + "/r.json";
  for (const char* workload : {"fork_storm", "fork_width", "anon_vma_footprint", "cow_after_fork"}) {
    Outcome o = run_rmapbench(tiny({"--filter", std::string("^") + workload + "/", "--out", out}),
                              {std::string("RMAPBENCH_TEST_CORRUPT=") + workload});
    EXPECT_EQ(o.exit_code, 1) << workload << ": " << o.err << o.out;
    EXPECT_NE(o.out.find("FAILED:"), std::string::npos) << workload << ": " << o.out;
    json j = load(out);
    bool failed = false;
    for (const json& b : j.at("benchmarks"))
      if (b.value("error_occurred", false) && b.at("error_message").get<std::string>().rfind("error: ", 0) == 0)
        failed = true;
    EXPECT_TRUE(failed) << workload;
  }
}

TEST(Run, UnknownFilterIsAUsageError) {
  Outcome o = run_rmapbench({"run", "--filter", "no_such_workload"});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("no benchmark matches --filter 'no_such_workload'"), std::string::npos) << o.err;
  Outcome bad = run_rmapbench({"run", "--filter", "fork_storm("});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("not a valid regular expression"), std::string::npos) << bad.err;
}

TEST(Run, BadOptionsAreUsageErrors) {
  for (std::vector<std::string> args : {std::vector<std::string>{"run", "--bogus"},
                                        {"run", "--profile", "medium"},
                                        {"run", "--repetitions", "0"},
                                        {"run", "--sweep", "vmas=x"},
                                        {"nonsense"}}) {
    Outcome o = run_rmapbench(args);
    EXPECT_EQ(o.exit_code, 2) << args[1];
    EXPECT_FALSE(o.err.empty());
  }
}

// Issue 14 item 9: an unknown sweep name ran the whole default sweep, and
// vmas=0 got past the parser.
TEST(Run, UnknownSweepNamesAndValuesOutsideTheRangeAreUsageErrors) {
  Outcome bogus = run_rmapbench({"run", "--sweep", "bogus=1"});
  EXPECT_EQ(bogus.exit_code, 2);
  EXPECT_NE(bogus.err.find("no workload has a sweep parameter 'bogus'"), std::string::npos) << bogus.err;
  EXPECT_NE(bogus.err.find("vmas"), std::string::npos) << "the valid names are listed: " << bogus.err;
  for (const char* s : {"vmas=0", "children=0", "thp_kb=3", "max_page_sharing=1", "children=2000000000"}) {
    Outcome o = run_rmapbench({"run", "--sweep", s});
    EXPECT_EQ(o.exit_code, 2) << s;
    EXPECT_NE(o.err.find(std::string("--sweep ") + s + ":"), std::string::npos) << o.err;
  }
  // A value only some workloads refuse is fine when only the others run.
  Outcome thp = run_rmapbench({"run", "--sweep", "sharers=0", "--filter", "thp_pmd_split",
                               "--benchmark_list_tests=true"});
  EXPECT_EQ(thp.exit_code, 0) << thp.err;
}

TEST(Run, UnwritableOutputIsRefusedBeforeRunning) {
  TempDir dir;
  Outcome o = run_rmapbench(tiny({"--filter", "fork_storm/fork_only", "--out", "/proc/rmapbench/r.json"}));
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("cannot write /proc/rmapbench/r.json"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("fork_storm/fork_only/vmas"), std::string::npos) << "it ran before refusing";
  Outcome dir_out = run_rmapbench(tiny({"--filter", "fork_storm/fork_only", "--out", dir.path}));
  EXPECT_EQ(dir_out.exit_code, 2);
  EXPECT_NE(dir_out.err.find("is a directory"), std::string::npos) << dir_out.err;
}

// Issue 14 item 11: listing made `run` exit 2 and left an empty .partial.
TEST(Run, BenchmarkListTestsOnlyLists) {
  TempDir dir;
  for (const char* flag : {"--benchmark_list_tests=true", "--benchmark_list_tests"}) {
    Outcome o = run_rmapbench({"run", "--filter", "fork_storm/fork_only", flag, "--out", dir.path + "/r.json"});
    EXPECT_EQ(o.exit_code, 0) << flag << ": " << o.err;
    EXPECT_NE(o.out.find("fork_storm/fork_only/vmas:1"), std::string::npos) << o.out;
    EXPECT_TRUE(std::filesystem::is_empty(dir.path)) << flag << " wrote a file";
  }
}

TEST(Run, WithoutPermissionTheSlabCountsAreAbsentWithTheReason) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to switch to user nobody";
  TempDir dir;
  chmod(dir.path.c_str(), 0777);
  const std::string out = dir.path + "/r.json";
  Outcome o = run_command(as_nobody(tiny({"--filter", "anon_vma_footprint/children", "--out", out})));
  ASSERT_EQ(o.exit_code, 0) << o.err << o.out;
  const json results = load(out);
  for (const json& b : results.at("benchmarks")) {
    if (b.at("run_type") != "iteration") continue;
    EXPECT_FALSE(b.contains("anon_vma_per_child")) << "a count was reported without access to the counters";
    EXPECT_NE(b.value("label", "").find("Permission denied"), std::string::npos) << b.dump();
  }
}

// Without permission for the knobs they tune (ksmd; drop_caches for the
// deferred split), those workloads skip with that reason, the run still
// succeeds, and the knobs keep their values.
TEST(Run, WithoutPermissionForKnobsTheirWorkloadsSkipWithTheReason) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to switch to user nobody";
  auto knobs = [] {
    std::string all;
    for (const char* k : {"/sys/kernel/mm/ksm/run", "/sys/kernel/mm/ksm/pages_to_scan",
                          "/sys/kernel/mm/ksm/sleep_millisecs", "/sys/kernel/mm/transparent_hugepage/enabled"})
      all += std::string(k) + "=" + read_file(k);
    return all;
  };
  const std::string before = knobs();
  TempDir dir;
  chmod(dir.path.c_str(), 0777);
  const std::string out = dir.path + "/r.json";
  Outcome o = run_command(as_nobody(tiny({"--filter", "^ksm_merge/|^thp_split/deferred_shrinker/", "--out", out})));
  EXPECT_EQ(o.exit_code, 0) << o.err << o.out;
  int skipped = 0;
  const json results = load(out);  // named: a range-for over a temporary's member dangles
  for (const json& b : results.at("benchmarks")) {
    const std::string message = b.value("error_message", "");
    EXPECT_EQ(message.rfind("skipped: needs root", 0), 0u) << b.dump();
    skipped += message.empty() ? 0 : 1;
  }
  EXPECT_GT(skipped, 0);
  EXPECT_EQ(knobs(), before);
}

TEST(Run, ForkLimitIsThatWorkloadsErrorAndLeavesNoProcesses) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to switch to user nobody (root ignores RLIMIT_NPROC)";
  TempDir dir;
  chmod(dir.path.c_str(), 0777);
  const std::string out = dir.path + "/r.json";
  const int before = processes_of_user(65534);
  // Room for the runner and a few children, not for 40 sharers.
  Outcome o = run_command(as_nobody(tiny({"--filter", "^fork_width/|^fork_storm/fork_only", "--sweep=children=40",
                                          "--out", out}),
                                    before + 6));
  EXPECT_EQ(o.exit_code, 1) << o.err << o.out;
  json j = load(out);
  bool width_failed = false, storm_ran = false;
  for (const json& b : j.at("benchmarks")) {
    const std::string name = b.at("name");
    if (name.rfind("fork_width", 0) == 0 && b.value("error_occurred", false)) {
      width_failed = true;
      EXPECT_NE(b.at("error_message").get<std::string>().find("RLIMIT_NPROC"), std::string::npos) << b.dump();
    }
    if (name.rfind("fork_storm", 0) == 0 && !b.value("error_occurred", false)) storm_ran = true;
  }
  EXPECT_TRUE(width_failed);
  EXPECT_TRUE(storm_ran) << "the rest of the run must continue";
  usleep(200 * 1000);
  EXPECT_EQ(processes_of_user(65534), before) << "processes of the run outlived it";
}

TEST(List, ShowsEveryWorkloadAndWhetherItRunsHere) {
  Outcome o = run_rmapbench({"list", "--json", "--benchmarks"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  json j = json::parse(o.out);
  std::set<std::string> names;
  for (const json& w : j) {
    names.insert(w.at("name"));
    EXPECT_FALSE(w.at("kernel_path").get<std::string>().empty());
    EXPECT_FALSE(w.at("parameters").get<std::string>().empty());
    if (!w.at("runnable").get<bool>()) {
      EXPECT_FALSE(w.at("reason").get<std::string>().empty()) << w.dump();
    }
    EXPECT_FALSE(w.at("benchmarks").empty()) << w.at("name");
  }
  for (const char* w : {"fork_storm", "fork_depth", "fork_width", "fork_concurrent", "fork_refork", "anon_vma_footprint",
                        "cow_after_fork"})
    EXPECT_TRUE(names.count(w)) << w;
  Outcome text = run_rmapbench({"list"});
  EXPECT_EQ(text.exit_code, 0);
  EXPECT_NE(text.out.find("fork_storm  [runs on this host]"), std::string::npos) << text.out;
}

TEST(Help, EveryCommandHasRealHelp) {
  Outcome top = run_rmapbench({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* cmd : {"run", "list", "doctor"}) {
    EXPECT_NE(top.out.find(cmd), std::string::npos);
    Outcome o = run_rmapbench({cmd, "--help"});
    EXPECT_EQ(o.exit_code, 0) << cmd;
    EXPECT_NE(o.out.find("Usage: rmapbench"), std::string::npos) << cmd;
  }
  EXPECT_NE(run_rmapbench({"run", "--help"}).out.find("Exit status"), std::string::npos);
}
