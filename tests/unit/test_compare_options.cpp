// The options of `compare` and `check` (runners/cli/compare_options.hpp).
#include <gtest/gtest.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "runners/cli/command_line.hpp"
#include "runners/cli/compare_options.hpp"

using namespace rmapbench;

namespace {

struct Parsed {
  report::Request request;
  noise::Choice noise;
  std::vector<std::string> files;
  std::string error;  // empty: accepted
};

Parsed parse(const std::vector<std::string>& args) {
  Parsed p;
  CLI::App app;
  cli::use_command_conventions(app);
  cli::ComparisonOptions options(app);
  app.add_option("FILE", p.files);
  try {
    cli::parse_arguments(app, args, cli::Extras::refuse);
  } catch (const std::invalid_argument& e) {
    p.error = e.what();
    return p;
  }
  if (auto err = options.apply(p.request, p.noise)) p.error = *err;
  return p;
}

}  // namespace

TEST(CompareOptions, Parse) {
  Parsed p = parse({"--threshold", "3%", "--threshold=fork_us=5", "--alpha", "0.01", "--correction", "holm", "--force",
                    "--max-cv=15", "--min-repetitions", "7", "FILE"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.files, std::vector<std::string>{"FILE"});
  const compare::Options& o = p.request.options;
  EXPECT_DOUBLE_EQ(o.threshold_pct, 3);
  EXPECT_DOUBLE_EQ(o.threshold_for("fork_us"), 5);
  EXPECT_DOUBLE_EQ(o.threshold_for("exit_us"), 3);
  EXPECT_DOUBLE_EQ(o.alpha, 0.01);
  EXPECT_EQ(o.correction, compare::Correction::holm);
  EXPECT_TRUE(o.force);
  EXPECT_DOUBLE_EQ(o.max_cv_pct, 15);
  EXPECT_EQ(o.min_repetitions, 7);

  for (std::vector<std::string> bad : {std::vector<std::string>{"--threshold", "x"}, {"--threshold", "=5"},
                                       {"--alpha", "1.5"}, {"--correction", "bonferroni"}, {"--threshold"},
                                       {"--min-repetitions", "2.5"}})
    EXPECT_NE(parse(bad).error, "") << bad[0];
}

TEST(CompareOptions, ReportAndNoiseProfile) {
  Parsed p = parse({"--format", "email", "-o", "r.txt", "--color=never", "--noise-profile", "n.profile"});
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.request.format, report::Format::email);
  EXPECT_EQ(p.request.out, "r.txt");
  EXPECT_EQ(p.request.color, report::ColorMode::never);
  EXPECT_EQ(p.noise.path, "n.profile");
  EXPECT_TRUE(parse({"--no-noise-profile"}).noise.none);
  EXPECT_NE(parse({"--format", "pdf"}).error.find("expected text, email"), std::string::npos);
  EXPECT_NE(parse({"--color", "sometimes"}).error.find("auto, always or never"), std::string::npos);
  EXPECT_NE(parse({"--out"}).error.find("--out needs a value"), std::string::npos);
  EXPECT_NE(parse({"--bogus"}).error.find("unknown option '--bogus'"), std::string::npos);
}
