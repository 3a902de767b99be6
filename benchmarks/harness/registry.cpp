#include "benchmarks/harness/registry.hpp"

#include <fmt/core.h>

#include "kernels/safety/children.hpp"
#include "kernels/safety/signals.hpp"

#include <algorithm>
#include <memory>
#include <regex>
#include <set>

namespace rmapbench {

namespace {
std::vector<WorkloadInfo>& mutable_workloads() {
  static std::vector<WorkloadInfo> all;
  return all;
}
std::vector<std::string>* g_registered_names = nullptr;
const Selection* g_selection = nullptr;
// What register_all_benchmarks() learnt about the user's --sweep values.
std::set<std::string> g_sweep_names;          // every parameter a workload sweeps
std::vector<std::pair<std::string, std::string>> g_sweep_problems;  // workload, a value it does not accept
std::set<std::string> g_selected_workloads;  // with a benchmark the selection runs
std::map<std::string, std::vector<SweepDeclaration>>* g_declared_sweeps = nullptr;  // set by declared_sweeps()
bool g_destructive_allowed = false;
void enter_loop_if_never_entered(benchmark::State& state);
}  // namespace

const char* profile_name(Profile p) { return p == Profile::quick ? "quick" : "full"; }

std::optional<Profile> parse_profile(const std::string& s) {
  if (s == "quick") return Profile::quick;
  if (s == "full") return Profile::full;
  return std::nullopt;
}

int register_workload(WorkloadInfo info) {
  auto& all = mutable_workloads();
  all.push_back(std::move(info));
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return static_cast<int>(all.size());
}

const std::vector<WorkloadInfo>& workloads() { return mutable_workloads(); }

std::optional<std::string> unmet_requirement(const WorkloadInfo& w) {
  for (const auto& need : w.needs) {
    if (auto reason = need.unmet()) return reason;
  }
  return std::nullopt;
}

benchmark::internal::Benchmark* Registrar::add(const std::string& name,
                                                std::function<void(benchmark::State&)> fn) {
  const WorkloadInfo* workload = &workload_;
  auto body = [workload, fn](benchmark::State& state) {
    // After SIGINT/SIGTERM/SIGHUP the remaining benchmarks end at once; the
    // run then writes what it has, marked incomplete.
    if (safety::interrupted()) {
      fail(state, fmt::format("interrupted by {} before it ran", safety::signal_name(safety::interrupt_signal())));
      enter_loop_if_never_entered(state);
      return;
    }
    if (auto reason = unmet_requirement(*workload)) {
      skip(state, *reason);
      enter_loop_if_never_entered(state);
      return;
    }
    fn(state);
    enter_loop_if_never_entered(state);
  };
  const bool wanted = !g_selection || !g_selection->wanted || g_selection->wanted(name);
  if (!wanted) {
    // Not given to Google Benchmark, but the caller may still configure it.
    static std::vector<std::unique_ptr<benchmark::internal::Benchmark>> unselected;
    unselected.push_back(std::make_unique<benchmark::internal::FunctionBenchmark>(name.c_str(), +[](benchmark::State&) {}));
    return unselected.back().get();
  }
  g_selected_workloads.insert(workload_.name);
  auto* b = benchmark::RegisterBenchmark(name.c_str(), body);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
  if (g_registered_names) g_registered_names->push_back(name);
  return b;
}

namespace {

// Upper bounds only against nonsense (and overflow in the sizing): what a
// host can hold is the resource check's to say at run time, with the largest
// value that fits (vm.max_map_count, RLIMIT_NPROC, memory). thp_kb is at
// most a PUD (1 GiB).
long sweep_max(const std::string& param) { return param == "thp_kb" ? 1048576 : 1L << 30; }
// The smallest value that means something: a count of VMAs, processes,
// pages ... is at least 1; sharers may be 0 (the THP splits time the
// unshared case; a workload that needs a sharer skips or fails with its
// reason), and so may ksm_sleep_ms; max_page_sharing starts at 2, as the
// kernel's knob does.
long sweep_min(const std::string& param) {
  if (param == "sharers" || param == "ksm_sleep_ms") return 0;
  return param == "max_page_sharing" ? 2 : 1;
}
}  // namespace

std::vector<long> Registrar::sweep(const std::string& param, std::vector<long> quick, std::vector<long> full) const {
  g_sweep_names.insert(param);
  if (g_declared_sweeps) {
    auto& mine = (*g_declared_sweeps)[workload_.name];
    SweepDeclaration declared{param, quick, full};
    if (std::find(mine.begin(), mine.end(), declared) == mine.end()) mine.push_back(std::move(declared));
  }
  if (g_selection) {
    auto it = g_selection->sweeps.find(param);
    if (it != g_selection->sweeps.end()) {
      const long lo = sweep_min(param), hi = sweep_max(param);
      for (long v : it->second) {
        const bool power_of_two = v > 0 && (v & (v - 1)) == 0;
        if (v < lo || v > hi || (param == "thp_kb" && !power_of_two))
          g_sweep_problems.emplace_back(workload_.name, fmt::format("--sweep {}={}: {} accepts {} from {} to {}", param, v, workload_.name,
                                                 param == "thp_kb" ? "powers of two" : "values", lo, hi));
      }
      return it->second;
    }
  }
  return profile_ == Profile::quick ? quick : full;
}

std::string sweep_problems(const Selection& selection) {
  // Only the workloads that run are held to it.
  std::vector<std::string> problems;
  for (const auto& [workload, problem] : g_sweep_problems)
    if (g_selected_workloads.count(workload)) problems.push_back(problem);
  for (const auto& [name, values] : selection.sweeps) {
    if (g_sweep_names.count(name)) continue;
    std::string known;
    for (const auto& n : g_sweep_names) known += (known.empty() ? "" : ", ") + n;
    problems.push_back(fmt::format("--sweep {}: no workload has a sweep parameter '{}'; the parameters are: {}", name,
                                   name, known.empty() ? "(none)" : known));
  }
  std::sort(problems.begin(), problems.end());
  problems.erase(std::unique(problems.begin(), problems.end()), problems.end());
  std::string out;
  for (const auto& p : problems) out += (out.empty() ? "" : "\n") + p;
  return out;
}

bool destructive_allowed() { return g_destructive_allowed; }

Requirement destructive_opt_in(const std::string& harm) {
  return {"explicit opt-in (run --allow-destructive)", [harm]() -> std::optional<std::string> {
            if (destructive_allowed()) return std::nullopt;
            return fmt::format("destructive: {}; run with --allow-destructive (a QEMU guest passes it)", harm);
          }};
}

std::vector<std::string> register_all_benchmarks(const Selection& selection) {
  g_destructive_allowed = selection.allow_destructive;
  g_sweep_problems.clear();
  g_selected_workloads.clear();
  std::vector<std::string> names;
  g_registered_names = &names;
  g_selection = &selection;
  for (const auto& w : workloads()) {
    Registrar r(w, selection.profile);
    w.register_benchmarks(r);
  }
  g_selection = nullptr;
  g_registered_names = nullptr;
  return names;
}

std::map<std::string, std::vector<SweepDeclaration>> declared_sweeps() {
  std::map<std::string, std::vector<SweepDeclaration>> declared;
  g_declared_sweeps = &declared;
  // A workload may declare a sweep in one profile only.
  for (Profile p : {Profile::quick, Profile::full})
    register_all_benchmarks(Selection{p, {}, [](const std::string&) { return false; }});
  g_declared_sweeps = nullptr;
  return declared;
}

// Google Benchmark 1.7 aborts the whole process (ComputeStats CHECK) when one
// repetition returned without entering its loop and the others ran: the
// iteration counts differ. A failure is applied at once (SkipWithError may be
// called before the loop, in it or after it); a benchmark that returned
// without entering its loop enters it here: after an error it runs no
// iteration and ends with the same count as every other repetition.
//
// Only public figures decide: iterations() is 0 until the loop started, and
// once it started it ends at max_iterations, whether it ran to the end or an
// error stopped it (SkipWithError sets the remaining iterations to 0).
namespace {
void apply_failure(benchmark::State& state, const std::string& message) {
#ifdef RMAPBENCH_HAVE_SKIP_WITH_MESSAGE
  if (message.rfind(kSkipPrefix, 0) == 0) {
    state.SkipWithMessage(message.c_str());
    return;
  }
#endif
  state.SkipWithError(message.c_str());
}

void record_failure(benchmark::State& state, const std::string& message) {
  if (failed(state)) return;  // the first failure is the one reported
  apply_failure(state, message);
}

void enter_loop_if_never_entered(benchmark::State& state) {
  if (!state.error_occurred() || state.iterations() != 0) return;
  for (auto _ : state) {
  }
}
}  // namespace

bool failed(const benchmark::State& state) { return state.error_occurred(); }

void skip(benchmark::State& state, const std::string& reason) { record_failure(state, kSkipPrefix + reason); }

void fail(benchmark::State& state, const std::string& message) { record_failure(state, kErrorPrefix + message); }

}  // namespace rmapbench

namespace rmapbench {
void set_notes(benchmark::State& state, const std::vector<std::string>& notes) {
  std::string label;
  for (const auto& n : notes) {
    if (n.empty()) continue;
    if (!label.empty()) label += "; ";
    label += n;
  }
  if (!label.empty()) state.SetLabel(label);
}
}  // namespace rmapbench

namespace rmapbench {
std::string suite_benchmark_name(const std::string& name) {
  // Aggregates keep their suffix: "X/manual_time_median" -> "X_median".
  static const std::regex added_by_google_benchmark("(/iterations:[0-9]+)?(/manual_time)?(_mean|_median|_stddev|_cv)?$");
  return std::regex_replace(name, added_by_google_benchmark, "$3");
}
}  // namespace rmapbench
