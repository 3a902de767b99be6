// What `rmapbench run` shows on the terminal: one progress line per finished
// repetition (stderr), then a summary table of medians and spreads (stdout).
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace rmapbench::cli {

struct BenchmarkSummary {
  std::string name;
  std::vector<double> times;  // per repetition, in `unit`
  std::string unit;
  std::map<std::string, std::vector<double>> counters;
  std::string skipped;  // reason, when the host lacks something
  std::string error;    // message, when the workload failed
  std::string notes;    // label: absent counters, triggers
};

class ProgressReporter : public benchmark::BenchmarkReporter {
 public:
  ProgressReporter(size_t expected_runs, bool quiet) : expected_runs_(expected_runs), quiet_(quiet) {}
  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;
  // Called once per finished repetition, after its line is printed (the
  // run samples the host reference there, between repetitions).
  void after_each_repetition(std::function<void()> f) { after_each_repetition_ = std::move(f); }

  const std::vector<BenchmarkSummary>& summaries() const { return summaries_; }
  size_t failures() const;
  size_t skips() const;

 private:
  BenchmarkSummary& summary_for(const std::string& name);
  size_t expected_runs_;
  bool quiet_;
  size_t done_ = 0;
  std::vector<BenchmarkSummary> summaries_;
  std::function<void()> after_each_repetition_;
};

// The summary table, every benchmark in registration order.
void print_summary(std::FILE* out, const std::vector<BenchmarkSummary>& summaries);

double median(std::vector<double> v);
double coefficient_of_variation(const std::vector<double>& v);

}  // namespace rmapbench::cli
