// Issue 14: hostile or careless input. Results files are shared on mailing
// lists and in CI artifacts, so every string in them is treated as hostile;
// inputs are bounded in size and depth; names that become paths are bounded;
// the output-path rules of results::OutputFile.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "results_fixture.hpp"
#include "test_support.hpp"
#include "runners/cli/run_options.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/compare/compare.hpp"
#include "runners/compare/report.hpp"
#include "runners/compare/summary.hpp"
#include "runners/results/atomic_file.hpp"
#include "runners/results/results.hpp"

using namespace rmapbench;
using rmapbench::testing::fixture_path;
using rmapbench::testing::host_context;
using rmapbench::testing::make_results;
using rmapbench::testing::slurp;
using rmapbench::testing::SyntheticBench;
namespace fs = std::filesystem;

namespace {

using rmapbench::testing::TempDir;

// Benchmarks with hostile names and messages, a hostile kernel_release.
results::ResultsFile hostile(const std::string& path, const std::string& variant = "stock") {
  nlohmann::json ctx = host_context(variant);
  ctx["kernel_release"] = "x\nsystem(\"touch pwned\")\n\x1b[31m";
  std::vector<SyntheticBench> b = {
      {"fork\x1b]0;owned\x07/a|b\r\nc/vmas:1", {10, 11, 12, 10, 11}, {}, "", "us"},
      {"fork\x1b]0;owned\x07/a|b\r\nc/vmas:64", {20, 21, 22, 20, 21}, {}, "", "us"},
      {"bad\x1b[2J", {}, {}, "error: \x1b[2J</failure>\r\ncleared", "us"},
  };
  return make_results(path, ctx, b);
}

bool has_control(const std::string& s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\n') || c == 0x7f) return true;
  return false;
}

}  // namespace

// --- item 2: strings from results files --------------------------------------

TEST(Hardening, PrintableTextNeutralisesControlsAndBadUtf8) {
  EXPECT_EQ(results::printable_text("a\x1b[31mb\r\nc\td"), "a?[31mb??c d");
  EXPECT_EQ(results::printable_text("±µ 6.1"), "±µ 6.1");        // UTF-8 kept
  EXPECT_EQ(results::printable_text("\xc2\x9b" "1m"), "??1m");  // C1 CSI
  EXPECT_EQ(results::printable_text("\xff\xc0\xaf"), "???");   // invalid, overlong
  EXPECT_EQ(results::printable_text("\xef\xbf\xbe"), "???");   // U+FFFE
}

TEST(Hardening, LoadedStringsCarryNoControlCharacters) {
  auto r = hostile("h.json");
  EXPECT_FALSE(has_control(r.get("kernel_release")));
  for (const auto& b : r.benchmarks) {
    EXPECT_FALSE(has_control(b.name)) << b.name;
    if (b.error_message) {
      EXPECT_FALSE(has_control(*b.error_message));
    }
  }
}

TEST(Hardening, EveryReportFormatIsFreeOfControlsFromTheFile) {
  auto base = hostile("base.json"), next = hostile("next.json", "lazy");
  compare::Options o;
  o.bootstrap_resamples = 50;
  o.force = true;
  auto c = compare::compare(base, next, o);
  ASSERT_TRUE(c) << c.status().message();
  for (auto f : {report::Format::text, report::Format::markdown, report::Format::junit, report::Format::email,
                 report::Format::json})
    EXPECT_FALSE(has_control(report::render(*c, f))) << static_cast<int>(f);
  EXPECT_FALSE(has_control(report::render_summary({base, next})));
  // Markdown: a '|' in a name is escaped, so each row keeps its 11 cells.
  std::string md = report::render_markdown(*c);
  EXPECT_NE(md.find("a\\|b"), std::string::npos) << md;
  // junit: the name cannot close the element.
  EXPECT_EQ(report::render_junit(*c).find("</failure>\r"), std::string::npos);
}

TEST(Hardening, MarkdownEscapesTheBackslashBeforeABar) {
  nlohmann::json ctx = host_context();
  auto a = make_results("a.json", ctx, {{"w\\|x/n:1", {1, 2, 3, 1, 2}, {}, "", "us"}});
  auto c = compare::compare(a, a, {});
  ASSERT_TRUE(c);
  std::string md = report::render_markdown(*c);
  EXPECT_NE(md.find("w\\\\\\|x"), std::string::npos) << md;
}

TEST(Hardening, GnuplotScriptTakesNoCodeFromResultsStrings) {
  // The writer on its own (not relying on the loader's cleaning).
  report::ScalingPlot p;
  p.family = "x\nsystem(\"touch pwned\")\n#/vmas:*";
  p.parameter = "vmas'\nsystem('id')";
  p.unit = "us`id`";
  p.stem = "x-vs-vmas";
  p.series.push_back({"6.1 stock'\nsystem(\"touch pwned\")\n'$HOME\\", {{1, 2, 1, 3}, {64, 5, 4, 6}}});
  std::string script = report::gnuplot_script(p, "x-vs-vmas.dat", "x.png", "x.svg");
  std::string data = report::gnuplot_data(p);
  for (const std::string& line : {std::string("system(\"touch")}) EXPECT_EQ(script.find(line), std::string::npos);
  size_t pos = 0;
  while (pos < script.size()) {
    size_t nl = script.find('\n', pos);
    std::string line = script.substr(pos, nl - pos);
    pos = nl + 1;
    EXPECT_TRUE(line.rfind("#", 0) == 0 || line.rfind("set ", 0) == 0 || line.rfind("plot ", 0) == 0 ||
                line.rfind("     ", 0) == 0 || line == "replot" || line == "unset output")
        << "unexpected script line: " << line;
    EXPECT_EQ(std::count(line.begin(), line.end(), '\'') % 2, 0) << line;
    EXPECT_EQ(line.find_first_of("\"`$"), std::string::npos) << line;
  }
  for (char c : data) EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20);
  EXPECT_EQ(data.find("\nsystem"), std::string::npos) << data;
}

TEST(Hardening, PlotStemsAreShortPlainFileNames) {
  nlohmann::json ctx = host_context();
  std::string long_name = "w/" + std::string(400, 'n') + "/p\x01q:1";
  auto a = make_results("a.json", ctx,
                        {{"w/" + std::string(400, 'n') + "/v\nx:1", {1, 2, 3}, {}, "", "us"},
                         {"w/" + std::string(400, 'n') + "/v\nx:64", {4, 5, 6}, {}, "", "us"}});
  auto plots = report::scaling_plots({a});
  ASSERT_EQ(plots.size(), 1u);
  EXPECT_LE(plots[0].stem.size(), 100u);
  EXPECT_EQ(plots[0].stem.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~"),
            std::string::npos)
      << plots[0].stem;
}

// --- item 5: nesting depth ---------------------------------------------------

TEST(Hardening, DeeplyNestedJsonIsRefusedNotACrash) {
  const int depth = 50000;
  std::string deep = std::string(depth, '[') + std::string(depth, ']');
  std::string text = R"({"context":{"x":)" + deep + R"(},"benchmarks":[]})";
  auto r = results::parse_results(text, "deep.json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("nested deeper than 64 levels"), std::string::npos) << r.status().message();
  // The metrics table is JSON inside a string: bounded too.
  nlohmann::json ctx = host_context();
  ctx["rmapbench.metrics"] = "{\"a\":" + deep + "}";
  auto m = results::parse_results(rmapbench::testing::results_json(ctx, {{"w/n:1", {1, 2}, {}, "", "us"}}), "m.json");
  ASSERT_FALSE(m);
  EXPECT_NE(m.status().message().find("deeper than 64"), std::string::npos) << m.status().message();
}

// --- item 8 and 11: input size, directories, negative repetitions ------------

TEST(Hardening, InputsAboveTheLimitAreRefused) {
  auto z = results::read_text_file("/dev/zero");
  ASSERT_FALSE(z);
  EXPECT_NE(z.status().message().find("larger than 64 MiB"), std::string::npos) << z.status().message();
  TempDir d;
  const std::string big = d.path + "/big.json";
  int fd = open(big.c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(results::kMaxInputBytes) + 1), 0);  // sparse
  close(fd);
  auto b = results::load_results(big);
  ASSERT_FALSE(b);
  EXPECT_NE(b.status().message().find("larger than 64 MiB"), std::string::npos);
}

TEST(Hardening, ADirectoryIsCalledADirectory) {
  TempDir d;
  auto r = results::load_results(d.path);
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("is a directory"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("empty file"), std::string::npos);
}

TEST(Hardening, NegativeRepetitionsAreCalledNegative) {
  nlohmann::json doc = nlohmann::json::parse(rmapbench::testing::results_json(host_context(), {{"w/n:1", {1, 2}, {}, "", "us"}}));
  for (auto& b : doc["benchmarks"]) b["repetitions"] = -3;
  auto r = results::parse_results(doc.dump(), "neg.json");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("negative repetition count"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find("zero repetitions"), std::string::npos);
}

// --- item 6: names that become paths -----------------------------------------

TEST(Hardening, BaselinePathsStayWithinNameMax) {
  baseline::Location l;
  l.arch = "x86_64";
  l.host_id = "0123456789ab";
  l.kernel_release = std::string(300, 'r');
  l.variant = std::string(4200, 'v');
  const std::string rel = l.relative_path();
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string::npos) slash = rel.size();
    EXPECT_LE(slash - pos, 255u) << rel.substr(pos, 80);
    pos = slash + 1;
  }
  l.variant = std::string(4200, 'v') + "x";  // differs only past the cut
  EXPECT_NE(l.relative_path(), rel);
  // Short names are unchanged.
  l.kernel_release = "6.1.0";
  l.variant = "stock";
  EXPECT_EQ(l.relative_path(), "x86_64/0123456789ab/6.1.0-stock.json");
}

TEST(Hardening, ResultsFileNamesStayWithinNameMax) {
  std::string name = cli::results_file_name("results", std::string(300, 'h'), std::string(300, 'k'),
                                            std::string(300, 'v'), Profile::quick, "20260101T000000Z");
  EXPECT_LE(fs::path(name).filename().string().size(), 255u) << name;
  EXPECT_THROW(cli::parse_run_options({"--variant", std::string(300, 'v')}), std::invalid_argument);
  EXPECT_NO_THROW(cli::parse_run_options({"--variant", std::string(64, 'v')}));
}

// --- item 1: the output-path rules -------------------------------------------

TEST(Hardening, OutputFileNeverReplacesWhatIsNotARegularFile) {
  TempDir d;
  // A FIFO is streamed to (a reader is waiting), and stays a FIFO.
  const std::string fifo = d.path + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  ASSERT_FALSE(results::write_file_atomic(fifo, "hello\n").failed());
  char buf[16] = {};
  EXPECT_EQ(read(reader, buf, sizeof buf), 6);
  close(reader);
  struct stat st {};
  ASSERT_EQ(lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));

  // A symlink to a regular file: the target is replaced, the link stays.
  const std::string target = d.path + "/target", link = d.path + "/link";
  { std::ofstream(target) << "old"; }
  fs::create_symlink("target", link);
  ASSERT_FALSE(results::write_file_atomic(link, "new").failed());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(target), "new");

  // A dangling symlink and a directory are refused; nothing is left behind.
  fs::create_symlink("nowhere", d.path + "/dangling");
  auto s = results::write_file_atomic(d.path + "/dangling", "x");
  EXPECT_TRUE(s.failed());
  EXPECT_NE(s.message().find("does not exist"), std::string::npos) << s.message();
  fs::create_directory(d.path + "/dir");
  auto dir = results::write_file_atomic(d.path + "/dir", "x");
  EXPECT_TRUE(dir.failed());
  EXPECT_NE(dir.message().find("a directory"), std::string::npos) << dir.message();
  for (const auto& e : fs::directory_iterator(d.path))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();

  // /dev/full: the errno is named.
  auto full = results::write_file_atomic("/dev/full", "x");
  EXPECT_TRUE(full.failed());
  EXPECT_NE(full.message().find("No space left on device"), std::string::npos) << full.message();

  // Two writers of one name never share a temporary file.
  auto a = results::OutputFile::open(d.path + "/same.json");
  auto b = results::OutputFile::open(d.path + "/same.json");
  ASSERT_TRUE(a && b);
  ASSERT_FALSE(a->write("a").failed());
  ASSERT_FALSE(b->write("bb").failed());
  ASSERT_FALSE(a->commit().failed());
  EXPECT_EQ(slurp(d.path + "/same.json"), "a");
  ASSERT_FALSE(b->commit().failed());
  EXPECT_EQ(slurp(d.path + "/same.json"), "bb");
}

// run checks its --out before the lock (a bad one is refused whoever holds
// it) without creating a file; the temporary comes after the lock.
TEST(Hardening, OutputCheckCreatesNothing) {
  TempDir d;
  EXPECT_FALSE(results::OutputFile::check(d.path + "/r.json").failed());
  EXPECT_TRUE(fs::is_empty(d.path));
  EXPECT_TRUE(results::OutputFile::check(d.path + "/missing/r.json").failed());
  EXPECT_TRUE(results::OutputFile::check(d.path).failed());  // a directory
  EXPECT_FALSE(results::OutputFile::check("-").failed());
  EXPECT_FALSE(results::OutputFile::check("/dev/null").failed());
  EXPECT_TRUE(fs::is_empty(d.path));
}
