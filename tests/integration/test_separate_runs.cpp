// Verdicts across SEPARATE `rmapbench run` processes, exactly as a user
// compares two kernels (run, reboot, run, compare) - issue 10. Unlike the
// split-run tests in test_compare_cli.cpp, nothing here shares a process:
// each side is its own run, with its own layout and host phase.
//
// These take the host's run lock like any run; while another run holds it
// they wait (up to 5 minutes) and then fail saying so.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "run_rmapbench.hpp"

using rmapbench::testing::describe;
using rmapbench::testing::Outcome;
using rmapbench::testing::read_file;
using rmapbench::testing::run_rmapbench;
using rmapbench::testing::TempDir;
using json = nlohmann::json;

namespace {

// rmapbench, waiting while another run holds the host's lock.
Outcome run_waiting(const std::vector<std::string>& args, const std::vector<std::string>& env = {}, int timeout = 600) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  for (;;) {
    Outcome o = run_rmapbench(args, env, timeout);
    const bool busy = o.exit_code == 2 && o.err.find("another rmapbench run holds") != std::string::npos;
    if (!busy || std::chrono::steady_clock::now() > deadline) return o;
    std::this_thread::sleep_for(std::chrono::seconds(3));
  }
}

json real_time_row(const json& report, const std::string& benchmark) {
  for (const auto& b : report["benchmarks"])
    if (b["name"] == benchmark)
      for (const auto& m : b["metrics"])
        if (m["metric"] == "real_time") return m;
  return json();
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += to.size()) s.replace(p, from.size(), to);
  return s;
}

}  // namespace

// The harness turns ASLR off for its own process tree and records it;
// --keep-aslr leaves it on.
TEST(SeparateRuns, RunTurnsAslrOffUnlessAsked) {
  TempDir tmp;
  const std::string va = read_file("/proc/sys/kernel/randomize_va_space");
  for (bool keep : {false, true}) {
    const std::string out = tmp.path + (keep ? "/keep.json" : "/off.json");
    std::vector<std::string> args = {"run", "--quiet", "--filter", "^fork_storm/fork_exit_wait/vmas:1$",
                                     "--repetitions", "1", "--runs", "1", "--out", out};
    if (keep) args.push_back("--keep-aslr");
    Outcome o = run_waiting(args);
    ASSERT_EQ(o.exit_code, 0) << describe(o);
    const json ctx = json::parse(read_file(out))["context"];
    const bool host_off = va.rfind("0", 0) == 0;
    EXPECT_EQ(ctx.value("aslr_effective", ""), keep && !host_off ? "on" : "off") << ctx.dump(1);
    EXPECT_FALSE(ctx.value("aslr_how", "").empty());
    if (!keep && !host_off) {
      EXPECT_NE(ctx["aslr_how"].get<std::string>().find("rmapbench"), std::string::npos);
    }
  }
}

// --runs K: K processes, one result, a run index per repetition; compare pools
// several files per side.
TEST(SeparateRuns, RunsKGivesOneResultWithARunIndexAndSidesPoolFiles) {
  TempDir tmp;
  const std::string a = tmp.path + "/a.json", b = tmp.path + "/b.json";
  for (const auto& out : {a, b}) {
    Outcome o = run_waiting({"run", "--quiet", "--filter", "^fork_storm/fork_exit_wait/vmas:1$", "--repetitions", "2",
                             "--runs", "2", "--out", out});
    ASSERT_EQ(o.exit_code, 0) << describe(o);
  }
  const json r = json::parse(read_file(a));
  EXPECT_EQ(r["context"].value("rmapbench.runs", ""), "2");
  std::set<int> runs;
  for (const auto& e : r["benchmarks"])
    if (e.value("run_type", "") == "iteration") runs.insert(e.value("run_index", -1));
  EXPECT_EQ(runs, (std::set<int>{0, 1}));
  for (const auto& f : std::filesystem::directory_iterator(tmp.path))
    EXPECT_EQ(f.path().string().find(".run"), std::string::npos) << "left behind: " << f.path();
  Outcome c = run_rmapbench({"compare", a, b, "--", a, "--format", "json"});
  ASSERT_NE(c.exit_code, 2) << describe(c);
  const json row = real_time_row(json::parse(c.out), "fork_storm/fork_exit_wait/vmas:1");
  ASSERT_TRUE(row.is_object()) << c.out;
  EXPECT_EQ(row["run_test"]["runs_base"], 4);
  EXPECT_EQ(row["run_test"]["runs_new"], 2);
}

// A/A: two default quick runs of the fork workloads, one after the other, as
// separate processes, on a host calibrated as the README says (rmapbench
// calibrate: its own between-invocation drift is the floor). Nothing may be
// flagged. Without the profile, two invocations minutes apart on this shared
// VM differed by +2.9% in fork_exit_wait/vmas:1000 while each one's three
// runs agreed closely: consecutive runs share the host's phase, separate
// invocations do not, and only a calibration measures the latter.
TEST(SeparateRuns, AaOfTwoDefaultQuickRunsFlagsNothing) {
  TempDir tmp;
  const std::string dir = tmp.path + "/baselines";
  const std::string filter = "^(fork_storm|fork_width)/";
  Outcome cal = run_waiting({"calibrate", "--runs", "3", "--dir", dir, "--quiet", "--filter", filter});
  ASSERT_EQ(cal.exit_code, 0) << describe(cal);
  const std::string a = tmp.path + "/a.json", b = tmp.path + "/b.json";
  for (const auto& out : {a, b}) {
    Outcome o = run_waiting({"run", "--quiet", "--filter", filter, "--out", out});
    ASSERT_EQ(o.exit_code, 0) << describe(o);
  }
  const std::vector<std::string> env{"RMAPBENCH_BASELINE_DIR=" + dir};
  Outcome o = run_rmapbench({"compare", a, b, "--format", "json"}, env);
  ASSERT_NE(o.exit_code, 2) << describe(o);
  const json j = json::parse(o.out);
  const std::string text = run_rmapbench({"compare", a, b, "--format", "email"}, env).out;
  std::printf("%s\n", text.c_str());
  EXPECT_EQ(j["counts"]["regression"], 0) << text;
  EXPECT_EQ(j["counts"]["improvement"], 0) << text;
  EXPECT_EQ(o.exit_code, 0) << text;
}

// Base forks with 1000 faulted VMAs, new with 1000 + extra: a known amount of
// extra kernel work in anon_vma_fork/unlink_anon_vmas, base and new as
// separate default quick runs (6 runs of 3), compared under the host's noise
// profile from a calibration of 3 runs. new's results are renamed to base's
// benchmark name, as a patched kernel's would carry it.
namespace {

struct KnownExtraWork {
  json row;          // real_time of fork_storm/fork_exit_wait/vmas:1000
  std::string text;  // the comparison as a user reads it
};

KnownExtraWork compare_with_extra_vmas(const TempDir& tmp, int extra_vmas) {
  const std::string dir = tmp.path + "/baselines";
  const std::string filter = "^fork_storm/fork_exit_wait/vmas:";
  Outcome cal = run_waiting({"calibrate", "--runs", "3", "--dir", dir, "--quiet", "--filter", filter, "--sweep",
                             "vmas=1000"});
  EXPECT_EQ(cal.exit_code, 0) << describe(cal);
  if (cal.exit_code != 0) return {};
  const std::string a = tmp.path + "/a.json", b = tmp.path + "/b.json";
  const std::string new_vmas = std::to_string(1000 + extra_vmas);
  for (const auto& [out, vmas] : {std::pair{a, std::string("1000")}, {b, new_vmas}}) {
    Outcome o = run_waiting({"run", "--quiet", "--filter", filter, "--sweep", "vmas=" + vmas, "--out", out});
    EXPECT_EQ(o.exit_code, 0) << describe(o);
    if (o.exit_code != 0) return {};
  }
  {
    const std::string renamed = replace_all(read_file(b), "vmas:" + new_vmas, "vmas:1000");
    std::ofstream f(b, std::ios::trunc);
    f << renamed;
  }
  const std::vector<std::string> env{"RMAPBENCH_BASELINE_DIR=" + dir};
  Outcome o = run_rmapbench({"compare", a, b, "--format", "json"}, env);
  EXPECT_NE(o.exit_code, 2) << describe(o);
  if (o.exit_code == 2) return {};
  KnownExtraWork k{real_time_row(json::parse(o.out), "fork_storm/fork_exit_wait/vmas:1000"),
                   run_rmapbench({"compare", a, b}, env).out};
  if (k.row.is_object())
    std::printf("vmas 1000 -> %s: change %+.1f%%, could see >= %.1f%%, verdict %s\n", new_vmas.c_str(),
                k.row.value("change_pct", 0.0), k.row.value("detectable_pct", 0.0),
                k.row.value("verdict", "").c_str());
  return k;
}

}  // namespace

// 1050 instead of 1000 (about 50 x 2.5 us more kernel work, some 4-5% of
// fork+exit+wait). Where the profile says such a change is detectable, it
// must be flagged; where it is not, the row must say what it could not see -
// and never call it an improvement.
TEST(SeparateRuns, KnownExtraWorkIsFlaggedWhenDetectableElseSaysWhatItCouldNotSee) {
  TempDir tmp;
  const KnownExtraWork k = compare_with_extra_vmas(tmp, 50);
  ASSERT_TRUE(k.row.is_object()) << k.text;
  ASSERT_TRUE(k.row["run_test"].is_object()) << "the noise profile was not used\n" << k.text;
  const double detectable = k.row["detectable_pct"].get<double>();
  EXPECT_NE(k.row["verdict"], "improvement") << k.text;
  if (detectable < 3.0) {
    EXPECT_EQ(k.row["verdict"], "regression") << "the profile says a 3% change is detectable\n" << k.text;
  } else if (k.row["verdict"] == "no change" || k.row["verdict"] == "noisy") {
    EXPECT_NE(k.row["reason"].get<std::string>().find("could not see < "), std::string::npos) << k.text;
  }
}

// The quick profile must flag a large real slowdown (issue 10: with 3 runs per
// side it could not see < 30-37% here, and a +26-31% kernel slowdown of fork
// went unflagged). 1400 instead of 1000 VMAs is some +35% of fork+exit+wait.
// No escape for a noisy host: a quick profile that cannot see this is a
// failure of the quick profile. (What it could see is printed, not asserted:
// 22-34% on a quiet host, 58% at a load average of 2.7, where the change was
// still flagged.)
TEST(SeparateRuns, QuickProfileFlagsALargeKnownSlowdown) {
  TempDir tmp;
  const KnownExtraWork k = compare_with_extra_vmas(tmp, 400);
  ASSERT_TRUE(k.row.is_object()) << k.text;
  EXPECT_EQ(k.row["verdict"], "regression") << k.text;
}
