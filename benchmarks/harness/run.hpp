// What every workload repeats, done once: the timed pass (only the kernel
// operation counts toward the iteration time), the counting pass (the
// per-operation counters, never inside the timed loop), sums reported as
// means, notes, and ending a benchmark with a skip or a failure by the kind
// of its Status (Status::skip: the host cannot; Status::declined: the kernel
// declined a best-effort operation, tried again).
//
//   void run(benchmark::State& state, const Variant& v) {
//     harness::Run run(state, {v.note});
//     auto region = Region::create(...);               // setup
//     if (!region) return run.stop(region.status());
//     run.time([&]() -> Result<int64_t> {              // once per iteration
//       ... return ns_of_the_kernel_operation;         // after the oracle passed
//     }, /*per=*/pages);
//     run.report_mean(kMyMetric, pages);
//     run.finish();                                    // notes; nothing after a failure
//   }
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "kernels/status.hpp"

namespace rmapbench::harness {

// Ends the benchmark with `s`: a skip when s.skipped(), a failure otherwise.
void stop(benchmark::State& state, const Status& s);

class Run {
 public:
  explicit Run(benchmark::State& state, std::vector<std::string> notes = {});
  benchmark::State& state() { return state_; }

  // The timed pass: `once` runs once per iteration and returns the ns of the
  // kernel operation alone; the iteration time is that divided by `per` (the
  // unit the figure is for: a page, a folio, a child). A declined status is
  // tried again, up to `attempts` times in all; each retry is counted in
  // declined(). The first other failure stops the benchmark. False then.
  bool time(const std::function<Result<int64_t>()>& once, double per = 1, int attempts = 1);

  // The counting pass: `op` runs `ops` times with the per-operation counters
  // on (see mm::count_per_op for `uncounted`). Each pass adds one sample.
  Status count(long ops, const std::function<Status()>& op, const std::function<Status()>& uncounted = {});
  // One sample counted elsewhere (in a child), with why counters were absent.
  void add_counts(const mm::OpCounts& per_op, const std::vector<std::string>& absent);
  // The counters' mean over the samples, divided by `per`; when any perf
  // counter was unavailable all three are left out (finish() notes why).
  void report_counts(double per = 1);

  // Figures summed over the iterations and reported as their mean per
  // iteration (divided by `per`).
  void add(const Metric& m, double value) { add(m.name, value); }
  double sum(const Metric& m) const { return sum(m.name); }
  // Figures a workload derives its metrics from, summed the same way.
  void add(const std::string& figure, double value) { sums_[figure] += value; }
  double sum(const std::string& figure) const;
  void report_mean(const Metric& m, double per = 1);

  long iterations() const { return iterations_; }
  long declined() const { return declined_; }
  double timed_ns() const { return timed_ns_; }  // summed over the iterations

  void note(std::string note) { notes_.push_back(std::move(note)); }
  // Ends the benchmark with `s` (see harness::stop).
  void stop(const Status& s) { harness::stop(state_, s); }
  bool failed() const;
  // Attaches the notes, then why counters were absent; nothing after a failure.
  void finish();

 private:
  benchmark::State& state_;
  std::vector<std::string> notes_;
  std::map<std::string, double> sums_;
  mm::OpCounts counts_{0, 0, 0, 0};
  long counted_ = 0;
  std::vector<std::string> absent_;
  long iterations_ = 0;
  long declined_ = 0;
  double timed_ns_ = 0;
};

}  // namespace rmapbench::harness
