#include "runners/cli/progress_reporter.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "benchmarks/harness/registry.hpp"

namespace rmapbench::cli {

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double coefficient_of_variation(const std::vector<double>& v) {
  if (v.size() < 2) return NAN;
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return mean == 0 ? NAN : std::sqrt(ss / static_cast<double>(v.size() - 1)) / mean;
}

bool ProgressReporter::ReportContext(const Context&) { return true; }

BenchmarkSummary& ProgressReporter::summary_for(const std::string& name) {
  for (auto& s : summaries_)
    if (s.name == name) return s;
  summaries_.push_back({});
  summaries_.back().name = name;
  return summaries_.back();
}

void ProgressReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const auto& run : runs) {
    if (run.run_type == Run::RT_Aggregate) continue;
    const std::string name = suite_benchmark_name(run.run_name.str());
    BenchmarkSummary& s = summary_for(name);
    ++done_;
    std::string status;
    if (run.error_occurred) {
      const std::string& msg = run.error_message;
      if (msg.rfind(kSkipPrefix, 0) == 0) {
        s.skipped = msg.substr(std::string(kSkipPrefix).size());
        status = "skipped: " + s.skipped;
      } else {
        s.error = msg.rfind(kErrorPrefix, 0) == 0 ? msg.substr(std::string(kErrorPrefix).size()) : msg;
        status = "FAILED: " + s.error;
      }
    } else {
      s.unit = benchmark::GetTimeUnitString(run.time_unit);
      const double t = run.GetAdjustedRealTime();
      s.times.push_back(t);
      for (const auto& [key, counter] : run.counters) s.counters[key].push_back(counter.value);
      if (!run.report_label.empty()) s.notes = run.report_label;
      status = fmt::format("{:.1f} {}", t, s.unit);
    }
    if (!quiet_) {
      fmt::print(stderr, "[{:>4}/{:<4}] {} (rep {}) {}\n", done_, expected_runs_, name,
                 run.repetitions > 1 ? fmt::format("{}/{}", run.repetition_index + 1, run.repetitions) : "1/1",
                 status);
      std::fflush(stderr);
    }
    if (after_each_repetition_) after_each_repetition_();
  }
}

size_t ProgressReporter::failures() const {
  return static_cast<size_t>(std::count_if(summaries_.begin(), summaries_.end(), [](const auto& s) { return !s.error.empty(); }));
}

size_t ProgressReporter::skips() const {
  return static_cast<size_t>(std::count_if(summaries_.begin(), summaries_.end(), [](const auto& s) { return !s.skipped.empty(); }));
}

void print_summary(std::FILE* out, const std::vector<BenchmarkSummary>& summaries) {
  size_t width = 9;
  for (const auto& s : summaries) width = std::max(width, s.name.size());
  fmt::print(out, "\n{:<{}}  {:>12}  {:>7}  {}\n", "benchmark", width, "median", "cv", "counters (median per op)");
  fmt::print(out, "{:-<{}}\n", "", width + 40);
  for (const auto& s : summaries) {
    if (!s.error.empty()) {
      fmt::print(out, "{:<{}}  FAILED: {}\n", s.name, width, s.error);
      continue;
    }
    if (!s.skipped.empty()) {
      fmt::print(out, "{:<{}}  skipped: {}\n", s.name, width, s.skipped);
      continue;
    }
    const double cv = coefficient_of_variation(s.times);
    std::string counters;
    for (const auto& [key, values] : s.counters) {
      if (!counters.empty()) counters += "  ";
      counters += fmt::format("{}={:.4g}", key, median(values));
    }
    fmt::print(out, "{:<{}}  {:>9.1f} {:<2}  {:>7}  {}\n", s.name, width, median(s.times), s.unit,
               std::isnan(cv) ? "-" : fmt::format("{:.1f}%", cv * 100), counters);
    if (!s.notes.empty()) fmt::print(out, "{:<{}}  note: {}\n", "", width, s.notes);
  }
}

}  // namespace rmapbench::cli
