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
using rmapbench::testing::SyntheticBench;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rmapbench-harden-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

[[maybe_unused]] std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

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
