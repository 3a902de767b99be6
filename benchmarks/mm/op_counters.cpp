#include "benchmarks/mm/op_counters.hpp"

#include <fmt/core.h>
#include <sys/resource.h>

#include "benchmarks/harness/metrics.hpp"
#include "kernels/perf/perf_events.hpp"

namespace rmapbench::mm {

RMAPBENCH_METRIC(kPageFaults, {"page_faults", "faults/op", Better::lower, MetricKind::statistical,
                               "page faults per operation, the process and its children (perf software event)"});
RMAPBENCH_METRIC(kContextSwitches, {"context_switches", "switches/op", Better::lower, MetricKind::statistical,
                                    "context switches per operation (perf software event)"});
RMAPBENCH_METRIC(kCpuMigrations, {"cpu_migrations", "migrations/op", Better::lower, MetricKind::statistical,
                                  "CPU migrations per operation (perf software event)"});
RMAPBENCH_METRIC(kSysUs, {"sys_us", "us/op", Better::lower, MetricKind::statistical,
                          "system time per operation, the process and its reaped children (getrusage)"});

namespace {

double sys_seconds() {
  rusage self{}, children{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &children);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; };
  return secs(self.ru_stime) + secs(children.ru_stime);
}

}  // namespace

OpCounterSet OpCounterSet::open(pid_t pid, std::vector<std::string>* unavailable) {
  OpCounterSet set;
  double OpCounts::*fields[] = {&OpCounts::page_faults, &OpCounts::context_switches, &OpCounts::cpu_migrations};
  const char* names[] = {"page-faults", "context-switches", "cpu-migrations"};
  for (const auto& spec : perf::software_events()) {
    for (size_t i = 0; i < std::size(names); ++i) {
      if (spec.name != names[i]) continue;
      auto c = perf::Counter::open(spec, pid, true);
      if (c) {
        set.counters.push_back(std::move(*c));
        set.slots.push_back(fields[i]);
      } else if (unavailable) {
        unavailable->push_back(c.status().message());
      }
    }
  }
  return set;
}

void OpCounterSet::assign(OpCounts& counts, size_t i, uint64_t increase, long ops) const {
  counts.*slots[i] = static_cast<double>(increase) / static_cast<double>(ops);
}

Result<OpCounts> count_per_op(long ops, const std::function<Status()>& op, std::vector<std::string>* unavailable,
                              const std::function<Status()>& uncounted) {
  OpCounts counts;
  OpCounterSet set = OpCounterSet::open(0, unavailable);
  auto& counters = set.counters;
  if (uncounted)
    if (Status s = uncounted(); s.failed()) return s;
  std::vector<uint64_t> before;
  for (auto& c : counters) {
    auto v = c.read();
    before.push_back(v ? *v : 0);
  }
  const double sys_before = sys_seconds();
  for (long i = 0; i < ops; ++i)
    if (Status s = op(); s.failed()) return s;
  counts.sys_us = (sys_seconds() - sys_before) * 1e6 / static_cast<double>(ops);
  for (size_t i = 0; i < counters.size(); ++i) {
    auto v = counters[i].read();
    if (!v) {
      if (unavailable) unavailable->push_back(v.status().message());
      continue;
    }
    set.assign(counts, i, *v - before[i], ops);
  }
  return counts;
}

void report_op_counts(benchmark::State& state, const OpCounts& counts) {
  // Already per operation: reported as plain values.
  const auto flags = benchmark::Counter::kDefaults;
  if (counts.page_faults >= 0) report_metric(state, kPageFaults, counts.page_faults, flags);
  if (counts.context_switches >= 0) report_metric(state, kContextSwitches, counts.context_switches, flags);
  if (counts.cpu_migrations >= 0) report_metric(state, kCpuMigrations, counts.cpu_migrations, flags);
  report_metric(state, kSysUs, counts.sys_us, flags);
}

}  // namespace rmapbench::mm
