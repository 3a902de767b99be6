// The registration surface of a workload: one WorkloadInfo per file.
//
//   static void register_fork_storm(rmapbench::Registrar& r) {
//     for (int vmas : r.sweep("vmas", {1, 64, 1000}, {1, 16, 256, 1000, 4096, 16384}))
//       r.add(fmt::format("fork_storm/fork_exit_wait/vmas:{}", vmas),
//             [vmas](benchmark::State& s) { ... });
//   }
//   RMAPBENCH_WORKLOAD(fork_storm, {.name = "fork_storm", ..., .register_benchmarks = register_fork_storm});
//
// Requirements are checked once per benchmark at run time: an unmet one turns
// into a skip carrying its reason, so `rmapbench list` and the results agree.
#pragma once

#include <benchmark/benchmark.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "benchmarks/result_vocabulary.hpp"

namespace rmapbench {

enum class Profile { quick, full };
const char* profile_name(Profile p);
std::optional<Profile> parse_profile(const std::string& s);

// Something a workload needs from the host. `unmet` returns the reason the
// host cannot satisfy it ("needs >= 2 NUMA nodes"), or nullopt when it can.
struct Requirement {
  std::string what;
  std::function<std::optional<std::string>()> unmet;
};

class Registrar;

struct WorkloadInfo {
  std::string name;         // prefix of every benchmark it registers
  std::string kernel_path;  // the kernel functions / rmap path exercised
  std::string description;  // one paragraph: layout, timed operation
  std::string oracle;       // what the run verifies after the timed operation
  std::string parameters;   // the sweep, e.g. "vmas: faulted anon VMAs 1..16384"
  std::vector<Requirement> needs;
  std::function<void(Registrar&)> register_benchmarks;
};

// Handed to a workload's register function; wraps Google Benchmark's
// registration so every benchmark gets the requirement check, the profile's
// timing policy and an entry in the suite's own name list.
class Registrar {
 public:
  Registrar(const WorkloadInfo& workload, Profile profile) : workload_(workload), profile_(profile) {}
  Profile profile() const { return profile_; }
  const std::string& workload() const { return workload_.name; }
  // The values of sweep parameter `param` ("vmas", "sharers"): the quick or
  // the full list by profile, unless the user gave `run --sweep param=LIST`.
  std::vector<long> sweep(const std::string& param, std::vector<long> quick, std::vector<long> full) const;
  // Registers a manual-time benchmark (the workload times only the kernel
  // operation and calls SetIterationTime).
  benchmark::internal::Benchmark* add(const std::string& name, std::function<void(benchmark::State&)> fn);

 private:
  const WorkloadInfo& workload_;
  Profile profile_;
};

// A workload's variants are a table, as the kernel selftests' test-case
// arrays are (cow.c): one entry per variant with its `name` and whatever its
// run function needs. One benchmark is added per variant and per point of
// points(variant): a list of (name suffix, point), the benchmark named
// "<workload>/<variant.name><suffix>", running run(state, variant, point)
// `iterations` times (0: Google Benchmark decides).
//
//   struct Variant { const char* name; int advice; };
//   constexpr Variant kVariants[] = {{"madv_cold", MADV_COLD}, {"madv_pageout", MADV_PAGEOUT}};
//   add_variants(r, kVariants, [&](const Variant&) { return points; }, run, 2);
template <typename Variant, size_t N, typename Points, typename RunFn>
void add_variants(Registrar& r, const Variant (&variants)[N], const Points& points, RunFn run, int iterations = 0) {
  for (const Variant& v : variants)
    for (const auto& [suffix, point] : points(v)) {
      auto* b = r.add(r.workload() + "/" + v.name + suffix,
                      [&v, point = point, run](benchmark::State& state) { run(state, v, point); });
      if (iterations > 0) b->Iterations(iterations);
    }
}

int register_workload(WorkloadInfo info);
const std::vector<WorkloadInfo>& workloads();

// Registers the benchmarks of every workload with Google Benchmark. Returns
// the full names registered, in order (used to validate --filter).
// Which benchmarks a run registers with Google Benchmark.
struct Selection {
  Profile profile = Profile::quick;
  std::map<std::string, std::vector<long>> sweeps;  // user overrides of sweep values
  std::function<bool(const std::string&)> wanted;  // by benchmark name; empty: all
  bool allow_destructive = false;                  // run --allow-destructive
};

// Whether the selection last registered allows workloads that harm the host
// they run on (memory_failure poisons pages).
bool destructive_allowed();
// A requirement met only when destructive_allowed(); `harm` says what the
// workload does to the host ("poisons memory").
Requirement destructive_opt_in(const std::string& harm);

// Registers the selected benchmarks of every workload with Google Benchmark.
// Returns their names, in order.
std::vector<std::string> register_all_benchmarks(const Selection& selection);

// After register_all_benchmarks(): what is wrong with selection.sweeps, one
// line each, or "" when nothing is: a name no workload sweeps (the
// parameters are listed), a value outside what a selected workload accepts
// (below 1, where only sharers and ksm_sleep_ms may be 0; max_page_sharing
// below 2; thp_kb not a power of two or above 1 GiB; anything above 2^30).
// What the host can hold is the resource check's, at run time. `run` makes
// it a usage error.
std::string sweep_problems(const Selection& selection);

// One sweep parameter as a workload's register function declared it: the
// values of each profile, before any `run --sweep`.
struct SweepDeclaration {
  std::string param;
  std::vector<long> quick, full;
  bool operator==(const SweepDeclaration&) const = default;
};

// Per workload name, the distinct sweeps it declares, in the order it first
// declares them. A dry registration: nothing reaches Google Benchmark.
std::map<std::string, std::vector<SweepDeclaration>> declared_sweeps();

// Why a workload cannot run on this host, or nullopt if it can.
std::optional<std::string> unmet_requirement(const WorkloadInfo& w);

// Records a skip or a failure with kSkipPrefix / kErrorPrefix (result_vocabulary.hpp).
void skip(benchmark::State& state, const std::string& reason);
void fail(benchmark::State& state, const std::string& message);
// True once skip() or fail() was called for this run.
bool failed(const benchmark::State& state);

}  // namespace rmapbench

#define RMAPBENCH_CONCAT_INNER(a, b) a##b
#define RMAPBENCH_CONCAT(a, b) RMAPBENCH_CONCAT_INNER(a, b)
#define RMAPBENCH_WORKLOAD(ident, ...) \
  [[maybe_unused]] static const int RMAPBENCH_CONCAT(rmapbench_workload_, ident) = ::rmapbench::register_workload(__VA_ARGS__)

namespace rmapbench {
// Notes a benchmark attaches to its result (as its label): why a counter is
// absent, how an operation was triggered. Empty notes are dropped.
void set_notes(benchmark::State& state, const std::vector<std::string>& notes);
}  // namespace rmapbench

namespace rmapbench {
// Google Benchmark appends "/iterations:N" and "/manual_time" to names; the
// suite's names (list, filter, results) are without it.
std::string suite_benchmark_name(const std::string& google_benchmark_name);
}  // namespace rmapbench
