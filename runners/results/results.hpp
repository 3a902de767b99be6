// A results file (Google Benchmark JSON + rmapbench context, see
// results/README.md) read into a typed model, validated on the way in.
//
// Everything that reads results (compare, baseline, check, report) goes
// through load_results(); every rejection names the file and the problem.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/harness/metrics.hpp"  // rmapbench::Better, rmapbench::MetricKind
#include "benchmarks/mm/status.hpp"

namespace rmapbench::results {

// The rmapbench.schema_version this reader understands.
inline constexpr int kSchemaVersion = 1;

// How one metric is compared; from the file's "rmapbench.metrics" table, or
// the defaults (lower is better, statistical) when the table lacks it.
struct MetricInfo {
  std::string unit;     // "us", "objects"; for real_time the benchmark's time_unit
  Better better = Better::lower;
  MetricKind kind = MetricKind::statistical;
  std::string help;
  // Primary metrics make the correction family and flag; diagnostic ones are
  // shown and never gate. A table without roles (older files): real_time and
  // object counts primary. No table at all (plain Google Benchmark): primary.
  MetricRole role = MetricRole::primary;
  bool declared = false;  // false: not in the table, defaults were applied
};

// One repetition of one benchmark (an "iteration" entry of the file).
struct Repetition {
  int index = 0;                         // repetition_index
  int run = 0;                           // run_index: which separate process (rmapbench run --runs, or file of a side)
  double iterations = 0;
  double real_time = 0;                  // in the benchmark's time_unit
  std::map<std::string, double> counters;
};

struct Benchmark {
  std::string name;       // the key: run_name without Google Benchmark's own
                          // decorations (min_time:, repeats:, manual_time ...)
  std::string raw_name;   // run_name as written in the file
  std::string time_unit;  // "ns", "us", "ms", "s"
  int threads = 1;
  std::vector<Repetition> repetitions;  // sorted by index
  // The file held only aggregates for this benchmark: `repetitions` holds one
  // sample taken from the median (else mean) aggregate of this many runs.
  bool from_aggregates = false;
  int aggregate_of = 0;
  // A benchmark that did not run: the full message including its prefix.
  std::optional<std::string> skip_message;   // "skipped: needs >= 2 NUMA nodes"
  std::optional<std::string> error_message;  // "error: child lost its mapping"

  bool ran() const { return !skip_message && !error_message && !repetitions.empty(); }
  // real_time first, then every counter seen in any repetition, sorted.
  std::vector<std::string> metric_names() const;
  // Values of `metric` over the repetitions that report it.
  std::vector<double> samples(const std::string& metric) const;
  // The run of each of those samples (same order).
  std::vector<int> sample_runs(const std::string& metric) const;
};

struct ResultsFile {
  std::string path;                               // as given, used in messages
  std::map<std::string, std::string> context;     // every context value as text
  bool has_rmapbench_context = false;             // rmapbench.schema_version present
  std::map<std::string, MetricInfo> metrics;      // the file's metrics table
  std::vector<Benchmark> benchmarks;              // in file order
  std::vector<std::string> notes;                 // accepted-but-worth-saying facts

  const Benchmark* find(const std::string& name) const;
  // The context value, or `fallback` when absent.
  std::string get(const std::string& key, const std::string& fallback = "") const;
  // How `metric` of `b` is compared (declared or defaulted; unit resolved).
  MetricInfo metric_info(const Benchmark& b, const std::string& metric) const;
  // "6.1.0-13-amd64 stock" (kernel release + variant), or the file name.
  std::string label() const;
  // Repetitions per benchmark: rmapbench.repetitions, else the most common count.
  int repetitions() const;
  // Separate runs (processes) in this file: distinct run_index values.
  int runs() const;
};

// Reads and validates a results file. Failures: unreadable, empty, not JSON,
// truncated, not a Google Benchmark file, unknown schema version, bad metrics
// table, duplicate name + repetition_index, zero repetitions, mixed time units.
Result<ResultsFile> load_results(const std::string& path);
// The same on text already in memory (`path` is used in messages).
Result<ResultsFile> parse_results(std::string_view text, const std::string& path);

// Two files about to be compared: the same benchmark must use the same time
// unit on both sides.
Status check_time_units(const ResultsFile& base, const ResultsFile& next);

// "fork_storm/x/vmas:1000/min_time:0.050/repeats:3/manual_time" ->
// "fork_storm/x/vmas:1000": drops the components Google Benchmark adds on
// its own, keeps the workload's (and threads:N).
std::string benchmark_key(std::string_view run_name);

// Several files of one side (each one or more separate runs) as one: their
// benchmarks joined by name, every file's run indices shifted past the
// previous files', the first file's context. A benchmark that failed or
// skipped in any file keeps that message. One file: returned unchanged.
ResultsFile combine_runs(std::vector<ResultsFile> files);

// Per-unit cost from a sweep: for every family of benchmarks that differ only
// in one numeric name component (vmas:1,64,1000; sharers; depth) with at
// least 3 sizes, appends two benchmarks built from real_time - the fitted
// slope "<family with key:*>/per_<key>" (time per unit) and the intercept
// "<...>/fixed" - one least-squares fit per (run, repetition) over the sizes,
// so they are compared like any benchmark.
void add_sweep_fits(ResultsFile& f);


// Inputs above this size are refused (README "Input limits"): results files
// are a few MB; a bigger one, or a device like /dev/zero, is not one.
inline constexpr uint64_t kMaxInputBytes = 64ull << 20;  // 64 MiB

// Reads a whole file of at most kMaxInputBytes; Status names the path and
// errno. A directory is "is a directory"; a device or pipe is read up to the
// limit.
Result<std::string> read_text_file(const std::string& path);

// Text from a results file made safe to print anywhere: control characters
// (terminal escapes, CR, LF; a tab becomes a space), C1 controls, the
// noncharacters XML forbids and invalid UTF-8 become '?'. Every string
// parse_results() keeps went through it.
std::string printable_text(std::string_view s);

}  // namespace rmapbench::results
