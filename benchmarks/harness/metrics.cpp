#include "benchmarks/harness/metrics.hpp"

#include <nlohmann/json.hpp>

#include <map>

namespace rmapbench {

namespace {
std::map<std::string, Metric>& table() {
  static std::map<std::string, Metric> t;
  return t;
}
}  // namespace

int declare_metric(const Metric& m) {
  table().emplace(m.name, m);
  return static_cast<int>(table().size());
}

void report_metric(benchmark::State& state, const Metric& m, double value, benchmark::Counter::Flags flags) {
  state.counters[m.name] = benchmark::Counter(value, flags);
}

std::string metrics_table_json() {
  nlohmann::json j = nlohmann::json::object();
  j["real_time"] = {{"unit", "time_unit"}, {"better", "lower"}, {"kind", "statistical"},
                    {"help", "latency of the timed kernel operation"}, {"role", "primary"}};
  for (const auto& [name, m] : table()) {
    j[name] = {{"unit", m.unit},
               {"better", m.better == Better::lower ? "lower" : "higher"},
               {"kind", m.kind == MetricKind::exact ? "exact" : "statistical"},
               {"help", m.help},
               {"role", m.role == MetricRole::primary ? "primary" : "diagnostic"}};
  }
  return j.dump();
}

}  // namespace rmapbench
