// Every counter a workload reports is declared once, with its direction and
// kind, where it is defined. The table travels in the results JSON context
// ("rmapbench.metrics") so `compare` never guesses whether up is good.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

#include "benchmarks/result_vocabulary.hpp"

namespace rmapbench {

struct Metric {
  const char* name;  // counter key in the JSON
  const char* unit;  // "us", "objects", "faults", "MiB/s"
  Better better;
  MetricKind kind;
  const char* help;
  MetricRole role = MetricRole::diagnostic;
};

// Sets state.counters[m.name]; the value is per iteration unless flags say otherwise.
void report_metric(benchmark::State& state, const Metric& m, double value,
                   benchmark::Counter::Flags flags = benchmark::Counter::kDefaults);

// JSON object {name: {"unit", "better", "kind", "help"}} of every metric
// declared with RMAPBENCH_METRIC, plus "real_time".
std::string metrics_table_json();

int declare_metric(const Metric& m);

}  // namespace rmapbench

// Declares a metric at namespace scope: RMAPBENCH_METRIC(kForkUs, {"fork_us", "us", ...});
#define RMAPBENCH_METRIC(ident, ...)                      \
  static const ::rmapbench::Metric ident = __VA_ARGS__;   \
  [[maybe_unused]] static const int ident##_declared = ::rmapbench::declare_metric(ident)
