// The words a results file shares between the benchmarks that write it and
// the runners that read it offline (results, compare): a metric's direction,
// kind and role, and how a skip or an error is told apart in a run's message.
// No Google Benchmark here, so the offline readers build and link without it.
#pragma once

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

// Google Benchmark 1.7 (Debian 12) has only SkipWithError; results carry the
// prefix so readers can tell a skip (host lacks a feature) from a failure.
inline constexpr const char* kSkipPrefix = "skipped: ";
inline constexpr const char* kErrorPrefix = "error: ";

// The host reference (benchmarks/harness/host_reference.hpp): samples of a
// user-space loop taken all through a run, in the results as this benchmark.
// compare shows it, never gates on it, and takes its change out of every
// timing row's (the host's speed moved, not the kernel's).
inline constexpr const char* kHostReferenceBenchmark = "host_reference/user_loop";
inline constexpr const char* kStealMetric = "steal_pct";

}  // namespace rmapbench
