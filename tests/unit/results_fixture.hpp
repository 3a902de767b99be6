// Builds synthetic results files in memory for the compare/report tests
// (the on-disk fixtures live in tests/data/results/).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "runners/results/results.hpp"

namespace rmapbench::testing {

inline std::string fixture_path(const std::string& name) {
  return std::string(RMAPBENCH_TEST_DATA_DIR) + "/results/" + name;
}

// A fixture of tests/data/results/, loaded; throws (failing the test) when it does not load.
inline results::ResultsFile load_fixture(const std::string& name) {
  auto r = results::load_results(fixture_path(name));
  if (!r) throw std::runtime_error(r.status().message());
  return *r;
}

// The context of the fictional test host of tests/data/results/.
inline nlohmann::json host_context(const std::string& variant = "stock") {
  return {{"rmapbench.schema_version", "1"},
          {"rmapbench.profile", "quick"},
          {"rmapbench.complete", "true"},
          {"rmapbench.metrics",
           R"({"real_time":{"unit":"time_unit","better":"lower","kind":"statistical"},)"
           R"("forks_per_s":{"unit":"1/s","better":"higher","kind":"statistical"},)"
           R"("anon_vma_per_child":{"unit":"objects","better":"lower","kind":"exact"}})"},
          {"kernel_release", "6.1.0-13-amd64"},
          {"arch", "x86_64"},
          {"variant", variant},
          {"cpu_model", "Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz"},
          {"cpus_online", "2"},
          {"mem_total_bytes", "8330866688"},
          {"numa_nodes", "1"},
          {"numa_node0_cpus", "0-1"},
          {"thp.enabled", "madvise"},
          {"ksm.run", "0"},
          {"emulation", "none"}};
}

// A benchmark: real_time per repetition, counters per repetition.
struct SyntheticBench {
  std::string name;
  std::vector<double> real_time;
  std::map<std::string, std::vector<double>> counters;
  std::string message;  // "skipped: ..." / "error: ...": a benchmark that did not run
  std::string unit = "us";
};

inline std::string results_json(const nlohmann::json& context, const std::vector<SyntheticBench>& benches) {
  nlohmann::json doc = {{"context", context}, {"benchmarks", nlohmann::json::array()}};
  for (const auto& b : benches) {
    if (!b.message.empty()) {
      doc["benchmarks"].push_back({{"name", b.name},           {"run_name", b.name},   {"run_type", "iteration"},
                                   {"repetitions", 1},         {"repetition_index", 0}, {"threads", 1},
                                   {"error_occurred", true},   {"error_message", b.message},
                                   {"iterations", 0},          {"real_time", 0.0},     {"time_unit", b.unit}});
      continue;
    }
    for (size_t r = 0; r < b.real_time.size(); ++r) {
      nlohmann::json e = {{"name", b.name},
                          {"run_name", b.name},
                          {"run_type", "iteration"},
                          {"repetitions", b.real_time.size()},
                          {"repetition_index", r},
                          {"threads", 1},
                          {"iterations", 100},
                          {"real_time", b.real_time[r]},
                          {"cpu_time", b.real_time[r] / 10},
                          {"time_unit", b.unit}};
      for (const auto& [k, v] : b.counters) e[k] = v[r];
      doc["benchmarks"].push_back(e);
    }
  }
  return doc.dump(2);
}

inline results::ResultsFile make_results(const std::string& path, const nlohmann::json& context,
                                         const std::vector<SyntheticBench>& benches) {
  auto r = results::parse_results(results_json(context, benches), path);
  if (!r) throw std::runtime_error(r.status().message());
  return *r;
}

// n values around `center`, deterministic, relative spread `spread` (+-).
inline std::vector<double> around(double center, double spread, size_t n = 10, unsigned salt = 0) {
  std::vector<double> v;
  for (size_t i = 0; i < n; ++i) {
    // A fixed permutation of offsets in [-1, 1].
    double k = static_cast<double>((i * 7 + salt * 3) % n) / static_cast<double>(n - 1 ? n - 1 : 1);
    v.push_back(center * (1 + spread * (2 * k - 1)));
  }
  return v;
}

}  // namespace rmapbench::testing
