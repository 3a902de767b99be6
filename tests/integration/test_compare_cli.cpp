// compare / baseline / check / report end to end through the real binary:
// exit codes, messages, and no file overwritten or half-written on error.
//
// CompareRealRun.* run the fork storm on this host (label: integration;
// select them alone with `ctest -R CompareRealRun`); together they take
// well under two minutes.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "run_rmapbench.hpp"

using rmapbench::testing::describe;
using rmapbench::testing::Outcome;
using rmapbench::testing::read_file;
using rmapbench::testing::run_rmapbench;
using rmapbench::testing::TempDir;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& name) { return std::string(RMAPBENCH_TEST_DATA_DIR) + "/results/" + name; }

void write(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Every file under dir (recursively), relative paths.
std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file()) out.push_back(fs::relative(it->path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST(CompareCli, AAExitsZeroAndShiftExitsOne) {
  Outcome aa = run_rmapbench({"compare", fixture("base.json"), fixture("aa.json")});
  EXPECT_EQ(aa.exit_code, 0) << describe(aa);
  EXPECT_NE(aa.out.find("0 regression(s), 0 improvement(s)"), std::string::npos) << aa.out;
  EXPECT_EQ(aa.out.find('\033'), std::string::npos) << "no colour when stdout is not a terminal";

  Outcome shift = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json")});
  EXPECT_EQ(shift.exit_code, 1) << describe(shift);
  EXPECT_NE(shift.out.find("regression"), std::string::npos);

  // --threshold above the shift: nothing flagged.
  Outcome lenient = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json"), "--threshold", "real_time=10",
                                   "--threshold", "anon_vma_per_child=100"});
  EXPECT_EQ(lenient.exit_code, 0) << describe(lenient);
}

TEST(CompareCli, EveryFormat) {
  Outcome email = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json"), "--format", "email"});
  EXPECT_EQ(email.exit_code, 1) << describe(email);
  std::istringstream lines(email.out);
  for (std::string l; std::getline(lines, l);) {
    EXPECT_LE(l.size(), 72u) << l;
    for (unsigned char c : l) EXPECT_LT(c, 0x7f) << l;
  }
  Outcome json = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json"), "--format=json"});
  EXPECT_EQ(json.exit_code, 1);
  auto j = nlohmann::json::parse(json.out);
  EXPECT_EQ(j["regressed"], true);
  // vmas:1000 and, since issue 10, the per-VMA slope of the vmas 1/64/1000 sweep
  // it moves (fork_storm/fork_exit_wait/vmas:*/per_vmas).
  EXPECT_EQ(j["counts"]["regression"], 2);
  Outcome junit = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json"), "--format", "junit"});
  EXPECT_EQ(junit.exit_code, 1);
  EXPECT_EQ(junit.out.rfind("<?xml", 0), 0u);
  EXPECT_NE(junit.out.find("<failure"), std::string::npos);
  Outcome md = run_rmapbench({"compare", fixture("base.json"), fixture("aa.json"), "--format", "markdown"});
  EXPECT_EQ(md.exit_code, 0);
  EXPECT_NE(md.out.find("| verdict |"), std::string::npos);
  Outcome bad = run_rmapbench({"compare", fixture("base.json"), fixture("aa.json"), "--format", "html"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--format html"), std::string::npos) << bad.err;
}

TEST(CompareCli, BadInputsExitTwoNamingTheFileAndTheProblem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated.json", "truncated JSON"},
      {"other_tool.json", "a file from another tool"},
      {"unknown_schema.json", "unknown rmapbench.schema_version '2'"},
      {"duplicates.json", "duplicate benchmark"},
      {"zero_repetitions.json", "zero repetitions"},
      {"mismatched_units.json", "mismatched time units"},
      {"other_host.json", "refusing to compare"},
  };
  for (const auto& [file, message] : cases) {
    Outcome o = run_rmapbench({"compare", fixture("base.json"), fixture(file)});
    EXPECT_EQ(o.exit_code, 2) << file << "\n" << describe(o);
    EXPECT_NE(o.err.find(file), std::string::npos) << o.err;
    EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
    EXPECT_TRUE(o.out.empty()) << file << ": nothing on stdout when refusing";
  }
  Outcome forced = run_rmapbench({"compare", fixture("base.json"), fixture("other_host.json"), "--force", "--format", "email"});
  EXPECT_EQ(forced.exit_code, 0) << describe(forced);
  EXPECT_NE(forced.out.find("arch: x86_64 vs aarch64"), std::string::npos) << "the header says what differed";
  EXPECT_EQ(run_rmapbench({"compare", fixture("base.json")}).exit_code, 2);
  EXPECT_EQ(run_rmapbench({"compare", fixture("base.json"), fixture("aa.json"), "--alpha", "2"}).exit_code, 2);
  EXPECT_EQ(run_rmapbench({"compare", fixture("base.json"), fixture("aa.json"), "--bogus"}).exit_code, 2);
  Outcome help = run_rmapbench({"compare", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Exit status"), std::string::npos);
}

TEST(CompareCli, OutFileIsWrittenWholeOrNotAtAll) {
  TempDir tmp;
  std::string out = tmp.path + "/report.txt";
  Outcome ok = run_rmapbench({"compare", fixture("base.json"), fixture("shift5.json"), "--out", out});
  EXPECT_EQ(ok.exit_code, 1) << describe(ok);
  EXPECT_TRUE(ok.out.empty());
  std::string written = read_file(out);
  EXPECT_NE(written.find("regression"), std::string::npos);

  // An input error leaves an existing --out untouched.
  Outcome bad = run_rmapbench({"compare", fixture("base.json"), fixture("truncated.json"), "--out", out});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(read_file(out), written);

  // An unwritable --out: exit 2, nothing created.
  std::string file = tmp.path + "/plainfile";
  write(file, "x");
  Outcome unwritable = run_rmapbench({"compare", fixture("base.json"), fixture("aa.json"), "--out", file + "/r.txt"});
  EXPECT_EQ(unwritable.exit_code, 2) << describe(unwritable);
  EXPECT_NE(unwritable.err.find("not a directory"), std::string::npos) << unwritable.err;
  EXPECT_EQ(files_under(tmp.path), (std::vector<std::string>{"plainfile", "report.txt"})) << "no temporary left behind";
}

TEST(BaselineCli, SaveNeverOverwritesWithoutReplace) {
  TempDir tmp;
  std::string dir = tmp.path + "/baselines";
  Outcome save = run_rmapbench({"baseline", "save", fixture("base.json"), "--dir", dir});
  ASSERT_EQ(save.exit_code, 0) << describe(save);
  auto files = files_under(dir);
  ASSERT_EQ(files.size(), 1u);
  EXPECT_TRUE(files[0].starts_with("x86_64/")) << files[0];
  EXPECT_TRUE(files[0].ends_with("/6.1.0-13-amd64-stock.json")) << files[0];
  std::string path = dir + "/" + files[0];
  EXPECT_EQ(read_file(path), read_file(fixture("base.json"))) << "saved byte for byte";
  struct stat before {};
  ASSERT_EQ(stat(path.c_str(), &before), 0);

  // Same arch/host/kernel (aa.json): refused, the existing baseline untouched.
  Outcome again = run_rmapbench({"baseline", "save", fixture("aa.json"), "--dir", dir});
  EXPECT_EQ(again.exit_code, 2) << describe(again);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--replace"), std::string::npos) << again.err;
  EXPECT_EQ(read_file(path), read_file(fixture("base.json")));
  struct stat after {};
  ASSERT_EQ(stat(path.c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino);
  EXPECT_EQ(files_under(dir).size(), 1u) << "no temporary left behind";

  // --replace swaps it atomically.
  Outcome replace = run_rmapbench({"baseline", "save", fixture("aa.json"), "--dir", dir, "--replace"});
  EXPECT_EQ(replace.exit_code, 0) << describe(replace);
  EXPECT_EQ(read_file(path), read_file(fixture("aa.json")));
  EXPECT_EQ(files_under(dir).size(), 1u);

  // A different variant goes next to it.
  EXPECT_EQ(run_rmapbench({"baseline", "save", fixture("shift5.json"), "--dir", dir}).exit_code, 0);
  EXPECT_EQ(files_under(dir).size(), 2u);

  Outcome list = run_rmapbench({"baseline", "list", "--dir", dir});
  EXPECT_EQ(list.exit_code, 0) << describe(list);
  EXPECT_NE(list.out.find("6.1.0-13-amd64-stock.json"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("6.1.0-13-amd64-anon_vma_lazy.json"), std::string::npos) << list.out;
}

TEST(BaselineCli, InvalidResultsAndUnwritableDirsWriteNothing) {
  TempDir tmp;
  std::string dir = tmp.path + "/baselines";
  for (const auto& [file, message] : std::vector<std::pair<std::string, std::string>>{
           {"truncated.json", "truncated JSON"},
           {"duplicates.json", "duplicate benchmark"},
           {"plain_gbench.json", "not an rmapbench result"},
           {"other_tool.json", "a file from another tool"}}) {
    Outcome o = run_rmapbench({"baseline", "save", fixture(file), "--dir", dir});
    EXPECT_EQ(o.exit_code, 2) << file << "\n" << describe(o);
    EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
  }
  EXPECT_TRUE(files_under(tmp.path).empty());

  // A directory that cannot be created (a path through a regular file, and
  // /proc, which even root cannot write into).
  std::string file = tmp.path + "/plainfile";
  write(file, "x");
  Outcome through_file = run_rmapbench({"baseline", "save", fixture("base.json"), "--dir", file + "/baselines"});
  EXPECT_EQ(through_file.exit_code, 2) << describe(through_file);
  EXPECT_NE(through_file.err.find("cannot create"), std::string::npos) << through_file.err;
  Outcome proc = run_rmapbench({"baseline", "save", fixture("base.json"), "--dir", "/proc/rmapbench-test-baselines"});
  EXPECT_EQ(proc.exit_code, 2) << describe(proc);
  EXPECT_EQ(files_under(tmp.path), std::vector<std::string>{"plainfile"});

  // An interrupted run is not a reference.
  auto j = nlohmann::json::parse(read_file(fixture("base.json")));
  j["context"]["rmapbench.complete"] = "false";
  write(tmp.path + "/partial.json", j.dump());
  Outcome partial = run_rmapbench({"baseline", "save", tmp.path + "/partial.json", "--dir", dir});
  EXPECT_EQ(partial.exit_code, 2);
  EXPECT_NE(partial.err.find("interrupted"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir));

  EXPECT_EQ(run_rmapbench({"baseline"}).exit_code, 2);
  EXPECT_EQ(run_rmapbench({"baseline", "frob"}).exit_code, 2);
}

TEST(CheckCli, AgainstTheMatchingBaseline) {
  TempDir tmp;
  std::string dir = tmp.path + "/baselines";
  ASSERT_EQ(run_rmapbench({"baseline", "save", fixture("base.json"), "--dir", dir}).exit_code, 0);

  Outcome aa = run_rmapbench({"check", fixture("aa.json"), "--dir", dir});
  EXPECT_EQ(aa.exit_code, 0) << describe(aa);
  EXPECT_NE(aa.err.find("no regression"), std::string::npos) << aa.err;

  // No baseline for the lazy variant: exit 2 with the available ones listed.
  Outcome none = run_rmapbench({"check", fixture("shift5.json"), "--dir", dir});
  EXPECT_EQ(none.exit_code, 2) << describe(none);
  EXPECT_NE(none.err.find("no baseline"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("6.1.0-13-amd64-stock.json"), std::string::npos) << none.err;

  // An explicit baseline: the shift is a regression.
  Outcome reg = run_rmapbench({"check", fixture("shift5.json"), "--baseline", fixture("base.json"), "--format", "junit"});
  EXPECT_EQ(reg.exit_code, 1) << describe(reg);
  EXPECT_NE(reg.out.find("<failure"), std::string::npos);

  // An incompatible baseline is refused like in compare.
  Outcome other = run_rmapbench({"check", fixture("other_host.json"), "--baseline", fixture("base.json")});
  EXPECT_EQ(other.exit_code, 2) << describe(other);

  EXPECT_EQ(run_rmapbench({"check", fixture("aa.json"), "--filter", "x"}).exit_code, 2);
  EXPECT_EQ(run_rmapbench({"check", fixture("truncated.json"), "--dir", dir}).exit_code, 2);
}

TEST(ReportCli, SummaryAndPlots) {
  Outcome one = run_rmapbench({"report", fixture("base.json")});
  EXPECT_EQ(one.exit_code, 0) << describe(one);
  EXPECT_NE(one.out.find("fork_storm/fork_exit_wait/vmas:1000"), std::string::npos);
  EXPECT_NE(one.out.find("skipped: needs >= 2 NUMA nodes"), std::string::npos);
  Outcome two = run_rmapbench({"report", fixture("base.json"), fixture("shift5.json")});
  EXPECT_EQ(two.exit_code, 0) << describe(two);
  EXPECT_NE(two.out.find("[2] 6.1.0-13-amd64 anon_vma_lazy"), std::string::npos) << two.out;
  EXPECT_EQ(run_rmapbench({"report", fixture("truncated.json")}).exit_code, 2);
  EXPECT_EQ(run_rmapbench({"report"}).exit_code, 2);

  TempDir tmp;
  // A failed workload in a result: exit 1.
  auto j = nlohmann::json::parse(read_file(fixture("base.json")));
  for (auto& e : j["benchmarks"])
    if (e["name"].get<std::string>().starts_with("cow/")) {
      e["error_occurred"] = true;
      e["error_message"] = "error: COW write leaked into the parent";
    }
  write(tmp.path + "/failed.json", j.dump());
  Outcome failed = run_rmapbench({"report", tmp.path + "/failed.json"});
  EXPECT_EQ(failed.exit_code, 1) << describe(failed);
  EXPECT_NE(failed.out.find("FAILED: error: COW write leaked"), std::string::npos) << failed.out;

  // gnuplot missing: a clear error, exit 2, no images.
  std::string plots = tmp.path + "/plots";
  Outcome nognuplot = run_rmapbench({"report", fixture("base.json"), "--plot", plots}, {"PATH=/nonexistent"});
  EXPECT_EQ(nognuplot.exit_code, 2) << describe(nognuplot);
  EXPECT_NE(nognuplot.err.find("gnuplot not found on PATH"), std::string::npos) << nognuplot.err;
  EXPECT_TRUE(files_under(plots).empty());

  if (rmapbench::testing::run_command({"sh", "-c", "command -v gnuplot"}).exit_code != 0)
    GTEST_SKIP() << "gnuplot is not installed: plots not drawn";
  Outcome drawn = run_rmapbench({"report", fixture("base.json"), fixture("shift5.json"), "--plot", plots});
  EXPECT_EQ(drawn.exit_code, 0) << describe(drawn);
  const std::string stem = plots + "/fork_storm-fork_exit_wait-vs-vmas";
  for (const char* ext : {".png", ".svg", ".dat", ".gp"}) EXPECT_TRUE(fs::exists(stem + ext)) << stem << ext;
  EXPECT_EQ(read_file(stem + ".png").substr(1, 3), "PNG");
  std::string svg = read_file(stem + ".svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("6.1.0-13-amd64 anon_vma_lazy"), std::string::npos) << "one line per kernel, labelled";
  for (const auto& f : files_under(plots)) EXPECT_EQ(f.find(".partial"), std::string::npos) << f;
}

// --- Real runs on this host --------------------------------------------------

namespace {

// Runs the fork storm; returns the results path or fails the test. Each run
// is one process, so with ASLR on each run gets one random memory layout,
// which shifts page_faults per fork by whole faults from run to run (measured
// on this host: 31.9, 32.9 or 33.9 per process, identical within a process).
// No number of repetitions inside one run can reveal that, so the comparison
// tests run under `setarch -R` (this process tree only, no global knob), as
// compare's note tells users to.
std::string real_run(const TempDir& tmp, const std::string& name, const std::vector<std::string>& extra) {
  std::string out = tmp.path + "/" + name;
  struct utsname u {};
  uname(&u);
  // One run (one process) that the tests split: --runs 1, since the quick
  // profile became separate runs (issue 10).
  std::vector<std::string> argv = {"setarch", u.machine, "-R", RMAPBENCH_BINARY, "run", "--quiet", "--runs", "1", "--out", out};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Outcome o = rmapbench::testing::run_command(argv, {}, 120);
  EXPECT_EQ(o.exit_code, 0) << describe(o);
  return o.exit_code == 0 ? out : "";
}

// The largest robust CV (1.4826 * MAD / median) of real_time over the
// benchmarks of a results file, computed here independently of compare.
double worst_robust_cv(const std::string& path) {
  auto j = nlohmann::json::parse(read_file(path));
  std::map<std::string, std::vector<double>> by_name;
  for (const auto& e : j["benchmarks"])
    if (e.value("run_type", "iteration") == "iteration" && !e.value("error_occurred", false))
      by_name[e["name"]].push_back(e["real_time"].get<double>());
  double worst = 0;
  for (auto& [name, v] : by_name) {
    std::sort(v.begin(), v.end());
    double med = v[v.size() / 2];
    std::vector<double> dev;
    for (double x : v) dev.push_back(std::fabs(x - med));
    std::sort(dev.begin(), dev.end());
    worst = std::max(worst, 1.4826 * dev[dev.size() / 2] / med);
  }
  return worst;
}

// Why this host cannot give a fair A/A or 5% comparison right now, if it cannot:
// another load was running when a run started (load average >= CPUs), or the
// repetitions spread more than max_cv. For the 5% test that is 5%: with 40
// repetitions a side, the standard error of each median is then about 1% and
// a 5% shift stands out; beyond it "no change" is the honest verdict and says
// nothing about the statistics.
std::string host_too_busy(const std::string& a, const std::string& b, double max_cv) {
  for (const auto& path : {a, b}) {
    auto ctx = nlohmann::json::parse(read_file(path))["context"];
    double load = ctx.contains("load_avg") && ctx["load_avg"].is_array() ? ctx["load_avg"][0].get<double>() : 0;
    double cpus = ctx.value("num_cpus", 1.0);
    if (load >= cpus)
      return "another load is running on this host (load average " + std::to_string(load) + " on " +
             std::to_string(static_cast<int>(cpus)) + " CPUs when a run started)";
  }
  double noise = std::max(worst_robust_cv(a), worst_robust_cv(b));
  if (noise > max_cv)
    return "this host is too noisy right now: real_time robust CV " + std::to_string(noise * 100) + "% > " +
           std::to_string(max_cv * 100) + "%";
  return "";
}

}  // namespace

// The repetitions of one run that `keep` selects, written to `file` as a
// results file of their own, with "vmas:<from>" renamed "vmas:<to>".
// Aggregates are left out: they describe all the repetitions.
std::string split_run(const nlohmann::json& run, const std::string& file,
                      const std::function<bool(const nlohmann::json&)>& keep, const std::string& from = "",
                      const std::string& to = "") {
  nlohmann::json part = run;
  part["benchmarks"] = nlohmann::json::array();
  for (const auto& e : run["benchmarks"]) {
    if (e.value("run_type", "") != "iteration" || !keep(e)) continue;
    std::string text = e.dump();
    if (!from.empty())
      for (size_t p = 0; (p = text.find("vmas:" + from, p)) != std::string::npos; p += 5 + to.size())
        text.replace(p, 5 + from.size(), "vmas:" + to);
    part["benchmarks"].push_back(nlohmann::json::parse(text));
  }
  write(file, part.dump());
  return file;
}

// Two halves of one quick run of the same kernel on the same host (even and
// odd repetitions, which ran interleaved in random order): nothing may be
// flagged, neither a regression nor an improvement. Interleaved halves share
// whatever the host does meanwhile; two runs one after the other on this
// shared VM can differ by 30% (another guest's load), a real difference
// between the runs that compare rightly flags and an A/A must not depend on.
TEST(CompareRealRun, AAOfTwoQuickForkStormRunsFlagsNothing) {
  TempDir tmp;
  std::string both = real_run(tmp, "both.json",
                              {"--profile", "quick", "--filter", "fork_storm/fork_exit_wait/", "--repetitions", "20"});
  ASSERT_FALSE(both.empty());
  const nlohmann::json run = nlohmann::json::parse(read_file(both));
  auto parity = [](int p) { return [p](const nlohmann::json& e) { return e["repetition_index"].get<int>() % 2 == p; }; };
  const std::string a = split_run(run, tmp.path + "/a.json", parity(0));
  const std::string b = split_run(run, tmp.path + "/b.json", parity(1));
  if (std::string busy = host_too_busy(a, b, 1.0); !busy.empty()) GTEST_SKIP() << "an A/A needs a quiet host: " << busy;
  Outcome o = run_rmapbench({"compare", a, b, "--format", "json"});
  ASSERT_NE(o.exit_code, 2) << describe(o);
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["counts"]["regression"], 0) << run_rmapbench({"compare", a, b}).out;
  EXPECT_EQ(j["counts"]["improvement"], 0) << run_rmapbench({"compare", a, b}).out;
  EXPECT_EQ(j["counts"]["error"], 0);
  EXPECT_EQ(o.exit_code, 0);
  EXPECT_GE(j["benchmarks"].size(), 1u);
}

// 1050 instead of 1000 faulted VMAs is about 5% more kernel work per fork.
// Both sizes run in one process with their repetitions interleaved in random
// order, so a drift of the shared host lands on both alike instead of on
// whichever ran second; the run is then split into a base file (vmas:1000)
// and a new file (vmas:1050, renamed vmas:1000), and compare must flag the
// difference.
TEST(CompareRealRun, FivePercentMoreKernelWorkIsFlagged) {
  TempDir tmp;
  std::string both = real_run(tmp, "both.json",
                              {"--filter", "fork_storm/fork_exit_wait/vmas:", "--sweep", "vmas=1000,1050",
                               "--repetitions", "40", "--benchmark_min_time=0.05"});
  ASSERT_FALSE(both.empty());
  const nlohmann::json run = nlohmann::json::parse(read_file(both));
  auto size = [](const char* s) {
    return [s](const nlohmann::json& e) { return e["name"].get<std::string>().find(s) != std::string::npos; };
  };
  const std::string a = split_run(run, tmp.path + "/a.json", size("vmas:1000"));
  const std::string b = split_run(run, tmp.path + "/b.json", size("vmas:1050"), "1050", "1000");

  if (std::string busy = host_too_busy(a, b, 0.05); !busy.empty())
    GTEST_SKIP() << "cannot validate a 5% effect: " << busy;

  Outcome o = run_rmapbench({"compare", a, b, "--format", "json"});
  EXPECT_EQ(o.exit_code, 1) << run_rmapbench({"compare", a, b}).out;
  auto j = nlohmann::json::parse(o.out);
  bool flagged = false;
  for (const auto& bench : j["benchmarks"])
    if (bench["name"] == "fork_storm/fork_exit_wait/vmas:1000")
      for (const auto& m : bench["metrics"])
        if (m["metric"] == "real_time") {
          flagged = m["verdict"] == "regression";
          EXPECT_GT(m["change_pct"].get<double>(), 2.0);
          EXPECT_LT(m["change_pct"].get<double>(), 12.0);
        }
  EXPECT_TRUE(flagged) << run_rmapbench({"compare", a, b}).out;
}

// `check` without RESULT starts `rmapbench run --profile quick` itself: first
// with no baseline (exit 2, the available ones listed), then against a
// baseline saved from a run on this host. The threshold is set out of reach:
// this test is about the mechanics, the two tests above about the verdicts.
TEST(CompareRealRun, CheckStartsAFreshQuickRun) {
  TempDir tmp;
  const std::string dir = tmp.path + "/baselines";
  const std::vector<std::string> fresh = {"--dir", dir, "--filter", "fork_storm/fork_exit_wait/vmas:1$", "--repetitions", "5"};
  std::vector<std::string> args = {"check"};
  args.insert(args.end(), fresh.begin(), fresh.end());
  Outcome none = run_rmapbench(args, {}, 120);
  EXPECT_EQ(none.exit_code, 2) << describe(none);
  EXPECT_NE(none.err.find("no baseline"), std::string::npos) << none.err;
  EXPECT_NE(none.err.find("There are no baselines under"), std::string::npos) << none.err;

  std::string r = real_run(tmp, "r.json", {"--filter", "fork_storm/fork_exit_wait/vmas:1$", "--repetitions", "5"});
  ASSERT_FALSE(r.empty());
  Outcome save = run_rmapbench({"baseline", "save", r, "--dir", dir});
  ASSERT_EQ(save.exit_code, 0) << describe(save);
  Outcome list = run_rmapbench({"baseline", "list", "--dir", dir});
  EXPECT_NE(list.out.find("* "), std::string::npos) << "taken on this host: " << list.out;

  args.insert(args.end(), {"--threshold", "1000", "--format", "json"});
  Outcome checked = run_rmapbench(args, {}, 120);
  EXPECT_EQ(checked.exit_code, 0) << describe(checked);
  auto j = nlohmann::json::parse(checked.out);  // stdout carries only the report
  // The workload, and the host reference every run samples alongside.
  ASSERT_EQ(j["benchmarks"].size(), 2u) << checked.out;
  std::set<std::string> names{j["benchmarks"][0]["name"], j["benchmarks"][1]["name"]};
  EXPECT_EQ(names, (std::set<std::string>{"fork_storm/fork_exit_wait/vmas:1", "host_reference/user_loop"}));
}

// Issue 14 item 6: release + variant over 255 bytes aborted `check` (rc 134,
// uncaught filesystem_error "File name too long"), `baseline save` above
// about 4,100 characters. Names are bounded; nothing aborts.
TEST(BaselineCli, LongReleaseAndVariantAreBoundedNotAnAbort) {
  TempDir tmp;
  const std::string dir = tmp.path + "/baselines";
  for (size_t len : {300u, 4200u}) {
    nlohmann::json j = nlohmann::json::parse(read_file(fixture("base.json")));
    j["context"]["variant"] = std::string(len, 'v');
    j["context"]["kernel_release"] = "6.1.0-" + std::string(len, 'r');
    const std::string file = tmp.path + "/long" + std::to_string(len) + ".json";
    write(file, j.dump());
    Outcome check = run_rmapbench({"check", file, "--dir", dir});
    EXPECT_EQ(check.exit_code, 2) << describe(check);
    EXPECT_NE(check.err.find("no baseline"), std::string::npos) << check.err;
    Outcome save = run_rmapbench({"baseline", "save", file, "--dir", dir});
    EXPECT_EQ(save.exit_code, 0) << describe(save);
    Outcome again = run_rmapbench({"check", file, "--dir", dir});
    EXPECT_LE(again.exit_code, 1) << describe(again);
  }
  for (const auto& f : files_under(dir)) {
    size_t pos = 0;
    while (pos < f.size()) {
      size_t slash = f.find('/', pos);
      if (slash == std::string::npos) slash = f.size();
      EXPECT_LE(slash - pos, 255u) << f;
      pos = slash + 1;
    }
  }
}
