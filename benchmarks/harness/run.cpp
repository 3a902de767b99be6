#include "benchmarks/harness/run.hpp"

#include <algorithm>

#include "benchmarks/harness/registry.hpp"

namespace rmapbench::harness {

void stop(benchmark::State& state, const Status& s) {
  if (!s.failed()) return;
  if (s.skipped())
    skip(state, s.message());
  else
    fail(state, s.message());
}

Run::Run(benchmark::State& state, std::vector<std::string> notes) : state_(state), notes_(std::move(notes)) {}

bool Run::failed() const { return rmapbench::failed(state_); }

bool Run::time(const std::function<Result<int64_t>()>& once, double per, int attempts) {
  if (failed()) return false;
  for (auto _ : state_) {
    Result<int64_t> ns = once();
    for (int attempt = 2; !ns && ns.status().kind() == Status::Kind::declined && attempt <= attempts; ++attempt) {
      ++declined_;
      ns = once();
    }
    if (!ns) {
      stop(ns.status());
      break;
    }
    state_.SetIterationTime(static_cast<double>(*ns) / 1e9 / per);
    timed_ns_ += static_cast<double>(*ns);
    ++iterations_;
  }
  return !failed();
}

Status Run::count(long ops, const std::function<Status()>& op, const std::function<Status()>& uncounted) {
  std::vector<std::string> absent;
  auto c = mm::count_per_op(ops, op, &absent, uncounted);
  if (!c) return c.status();
  add_counts(*c, absent);
  return Status::ok();
}

void Run::add_counts(const mm::OpCounts& per_op, const std::vector<std::string>& absent) {
  counts_.page_faults += per_op.page_faults;
  counts_.context_switches += per_op.context_switches;
  counts_.cpu_migrations += per_op.cpu_migrations;
  counts_.sys_us += per_op.sys_us;
  ++counted_;
  if (!absent.empty()) absent_ = absent;
}

void Run::report_counts(double per) {
  const double n = static_cast<double>(std::max(1L, counted_)) * per;
  const bool perf = absent_.empty();
  mm::report_op_counts(state_, {perf ? counts_.page_faults / n : -1, perf ? counts_.context_switches / n : -1,
                                perf ? counts_.cpu_migrations / n : -1, counts_.sys_us / n});
}

double Run::sum(const std::string& figure) const {
  auto it = sums_.find(figure);
  return it == sums_.end() ? 0 : it->second;
}

void Run::report_mean(const Metric& m, double per) {
  report_metric(state_, m, sum(m) / static_cast<double>(std::max(1L, iterations_)) / per);
}

void Run::finish() {
  if (failed()) return;
  std::vector<std::string> notes = notes_;
  notes.insert(notes.end(), absent_.begin(), absent_.end());
  set_notes(state_, notes);
}

}  // namespace rmapbench::harness
