// Every counter a workload reports is declared once, with its direction and
// kind, where it is defined. The table travels in the results JSON context
// ("rmapbench.metrics") so `compare` never guesses whether up is good.
#pragma once

#include <benchmark/benchmark.h>

#include <string>

namespace rmapbench {

enum class Better { lower, higher };
enum class MetricKind {
  statistical,  // varies run to run: compared with a U-test + bootstrap CI
  exact,        // counted exactly by the kernel (slab objects): compared exactly
};
// What a verdict rests on. Primary: the timed kernel operation (real_time)
// and the kernel's object counts of the footprint workloads - they make the
// multiple-comparison family and flag. Diagnostic: counters that explain a
// change (page faults, context switches, sys time, the fork/exit split,
// rates derived from real_time, system-wide vmstat counts) - shown with their
// change and CI, never in the family, never gating.
enum class MetricRole { primary, diagnostic };

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
