#include <gtest/gtest.h>

#include <regex>
#include <stdexcept>

#include "runners/cli/run_options.hpp"

using rmapbench::Profile;
using namespace rmapbench::cli;

TEST(RunOptions, DefaultsFollowTheProfile) {
  RunOptions quick = parse_run_options({});
  EXPECT_EQ(quick.profile, Profile::quick);
  EXPECT_EQ(quick.repetitions, 3);  // issue 10: 6 separate runs of 3 (was one run of 5)
  EXPECT_EQ(quick.runs, 6);
  EXPECT_FALSE(quick.keep_aslr);
  RunOptions full = parse_run_options({"--profile", "full"});
  EXPECT_EQ(full.profile, Profile::full);
  EXPECT_EQ(full.repetitions, 10);
  EXPECT_EQ(full.runs, 1);
}

TEST(RunOptions, AcceptsBothSpellingsOfValues) {
  RunOptions o = parse_run_options({"--filter=fork", "--repetitions", "7", "--variant=lazy", "--out", "x.json"});
  EXPECT_EQ(o.filter, "fork");
  EXPECT_EQ(o.repetitions, 7);
  EXPECT_EQ(o.variant, "lazy");
  EXPECT_EQ(o.out, "x.json");
}

TEST(RunOptions, SweepsOverrideByName) {
  RunOptions o = parse_run_options({"--sweep", "vmas=1000,1050", "--sweep=sharers=2"});
  EXPECT_EQ(o.sweeps.at("vmas"), (std::vector<long>{1000, 1050}));
  EXPECT_EQ(o.sweeps.at("sharers"), (std::vector<long>{2}));
}

TEST(RunOptions, GoogleBenchmarkFlagsPassThrough) {
  RunOptions o = parse_run_options({"--benchmark_min_time=0.01", "--benchmark_out=y.json"});
  EXPECT_EQ(o.benchmark_flags, (std::vector<std::string>{"--benchmark_min_time=0.01"}));
  EXPECT_EQ(o.out, "y.json");
}

TEST(RunOptions, ValuesMayStartWithADashAndTheLastRepeatWins) {
  RunOptions o = parse_run_options({"--filter", "-cow", "--repetitions=4", "--repetitions", "5", "-q", "--keep-aslr"});
  EXPECT_EQ(o.filter, "-cow");
  EXPECT_EQ(o.repetitions, 5);
  EXPECT_TRUE(o.quiet);
  EXPECT_TRUE(o.keep_aslr);
}

TEST(RunOptions, RejectsBadInputWithAReason) {
  auto message_of = [](std::vector<std::string> args) {
    try {
      parse_run_options(args);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message_of({"--bogus"}).find("unknown option '--bogus'"), std::string::npos);
  EXPECT_NE(message_of({"--profile", "medium"}).find("unknown profile 'medium'"), std::string::npos);
  EXPECT_NE(message_of({"--repetitions", "0"}).find("1 to 1000"), std::string::npos);
  EXPECT_NE(message_of({"--repetitions", "abc"}).find("not a non-negative integer"), std::string::npos);
  EXPECT_NE(message_of({"--sweep", "vmas"}).find("NAME=V1,V2"), std::string::npos);
  EXPECT_NE(message_of({"--sweep", "vmas=1,,2"}).find("'' is not"), std::string::npos);
  EXPECT_NE(message_of({"--variant", "a/b"}).find("letters, digits"), std::string::npos);
  EXPECT_NE(message_of({"--filter"}).find("needs a value"), std::string::npos);
  EXPECT_NE(message_of({"--benchmark_out_format=csv"}).find("always JSON"), std::string::npos);
  EXPECT_NE(message_of({"stray"}).find("unknown option 'stray'"), std::string::npos);
  EXPECT_NE(message_of({"--runs", "0"}).find("1 to 100"), std::string::npos);
}

TEST(RunOptions, FilterIsASearchAndCanBeNegated) {
  EXPECT_TRUE(filter_matches("", "fork_storm/fork_only/vmas:1"));
  EXPECT_TRUE(filter_matches("vmas:1$", "fork_storm/fork_only/vmas:1"));
  EXPECT_FALSE(filter_matches("vmas:1$", "fork_storm/fork_only/vmas:1000"));
  EXPECT_TRUE(filter_matches("-cow", "fork_storm/fork_only/vmas:1"));
  EXPECT_FALSE(filter_matches("-cow", "cow_after_fork/child_write/sharers:1"));
  EXPECT_THROW(filter_matches("(", "x"), std::regex_error);
}

// Filters that would make the matcher run for minutes or take gigabytes are
// refused as bad filters (found by fuzz_run_options), and a pattern that
// makes a backtracking matcher explode is matched in bounded time.
TEST(RunOptions, FiltersThatCannotBeMatchedInBoundedTimeAreRefused) {
  auto why = [](const std::string& re) {
    try {
      filter_matches(re, "fork_storm/fork_only/vmas:1");
    } catch (const std::regex_error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(why("n+*+++++++++++++/++k").find("adjacent repetition"), std::string::npos);
  EXPECT_NE(why("a**").find("adjacent repetition"), std::string::npos);
  EXPECT_NE(why("((a{255}){255}){255}").find("beyond 4096"), std::string::npos);
  EXPECT_NE(why("a{256}").find("above 255"), std::string::npos);
  EXPECT_NE(why("(a)\\1").find("back-references"), std::string::npos);
  EXPECT_EQ(why("^fork_(storm|depth)/[a-z_]+/vmas:[0-9]{1,5}$"), "accepted");
  EXPECT_FALSE(filter_matches("(.*)*x", "fork_storm/fork_only/vmas:1000"));
}

TEST(RunOptions, ResultsFileNameIsSafe) {
  EXPECT_EQ(results_file_name("results", "box.example.org", "6.18.0-rc1+", "stock", Profile::quick, "20261129T120000Z"),
            "results/box-6.18.0-rc1_-stock-quick-20261129T120000Z.json");
  EXPECT_EQ(results_file_name("r", "", "6.1 x", "a b", Profile::full, "T"), "r/unknown-6.1_x-a_b-full-T.json");
}

TEST(RunOptions, RunsAndAslr) {
  RunOptions o = parse_run_options({"--runs", "3", "--keep-aslr"});
  EXPECT_EQ(o.runs, 3);
  EXPECT_TRUE(o.keep_aslr);
  EXPECT_EQ(parse_run_options({"--runs=2"}).runs, 2);
  EXPECT_THROW(parse_run_options({"--runs", "0"}), std::invalid_argument);
  EXPECT_THROW(parse_run_options({"--runs", "x"}), std::invalid_argument);
}

// Destructive workloads (memory_failure) run only when asked for, by name.
TEST(RunOptions, AllowDestructiveIsOffUnlessGiven) {
  EXPECT_FALSE(parse_run_options({}).allow_destructive);
  EXPECT_FALSE(parse_run_options({"--profile", "full", "--keep-aslr"}).allow_destructive);
  EXPECT_TRUE(parse_run_options({"--allow-destructive"}).allow_destructive);
  EXPECT_TRUE(parse_run_options({"--filter", "^memory_failure/", "--allow-destructive", "--runs=2"}).allow_destructive);
  // Given twice (a guest's init adds it to arguments that may have it): still on.
  EXPECT_TRUE(parse_run_options({"--allow-destructive", "--allow-destructive"}).allow_destructive);
  EXPECT_THROW(parse_run_options({"--allow-destructive=maybe"}), std::invalid_argument);
}
