#include "registry.hpp"

#include <algorithm>
#include <memory>
#include <regex>

namespace rmapbench {

namespace {
std::vector<WorkloadInfo>& mutable_workloads() {
  static std::vector<WorkloadInfo> all;
  return all;
}
std::vector<std::string>* g_registered_names = nullptr;
const Selection* g_selection = nullptr;
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
    if (auto reason = unmet_requirement(*workload)) {
      skip(state, *reason);
      return;
    }
    fn(state);
  };
  const bool wanted = !g_selection || !g_selection->wanted || g_selection->wanted(name);
  if (!wanted) {
    // Not given to Google Benchmark, but the caller may still configure it.
    static std::vector<std::unique_ptr<benchmark::internal::Benchmark>> unselected;
    unselected.push_back(std::make_unique<benchmark::internal::FunctionBenchmark>(name.c_str(), +[](benchmark::State&) {}));
    return unselected.back().get();
  }
  auto* b = benchmark::RegisterBenchmark(name.c_str(), body);
  b->UseManualTime()->Unit(benchmark::kMicrosecond);
  if (g_registered_names) g_registered_names->push_back(name);
  return b;
}

std::vector<long> Registrar::sweep(const std::string& param, std::vector<long> quick, std::vector<long> full) const {
  if (g_selection) {
    auto it = g_selection->sweeps.find(param);
    if (it != g_selection->sweeps.end()) return it->second;
  }
  return profile_ == Profile::quick ? quick : full;
}

std::vector<std::string> register_all_benchmarks(const Selection& selection) {
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

void skip(benchmark::State& state, const std::string& reason) {
#ifdef RMAPBENCH_HAVE_SKIP_WITH_MESSAGE
  state.SkipWithMessage((kSkipPrefix + reason).c_str());
#else
  state.SkipWithError((kSkipPrefix + reason).c_str());
#endif
}

void fail(benchmark::State& state, const std::string& message) {
  state.SkipWithError((kErrorPrefix + message).c_str());
}

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
