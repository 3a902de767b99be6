// Shared by fuzz_plot_writer and fuzz_report_formats: a results file made
// from a fuzz input. Input starting with '{' is a whole results file;
// anything else is up to five NUL-separated strings put into a valid file
// (kernel_release, variant, a benchmark name component, a skip/error
// message, a counter name), so that hostile strings reach the writers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runners/results/results.hpp"

namespace rmapbench::fuzz {

inline std::vector<std::string> nul_fields(std::string_view text, size_t n) {
  std::vector<std::string> f;
  size_t pos = 0;
  while (f.size() + 1 < n) {
    size_t nul = text.find('\0', pos);
    if (nul == std::string_view::npos) break;
    f.emplace_back(text.substr(pos, nul - pos));
    pos = nul + 1;
  }
  f.emplace_back(text.substr(std::min(pos, text.size())));
  f.resize(n);
  return f;
}

// The results file, or nullopt when the loader rejected it.
inline std::optional<results::ResultsFile> results_from_input(std::string_view text, const std::string& path) {
  if (!text.empty() && text[0] == '{') {
    auto rf = results::parse_results(text, path);
    if (!rf) return std::nullopt;
    return std::move(*rf);
  }
  using nlohmann::json;
  const auto f = nul_fields(text, 5);
  json j;
  j["context"] = {{"kernel_release", f[0]}, {"variant", f[1]}, {"rmapbench.schema_version", "1"},
                  {"arch", "x86_64"}, {"cpu_model", "Fuzz CPU"}, {"cpus_online", "2"}};
  j["benchmarks"] = json::array();
  const std::string counter = f[4].empty() ? "c" : f[4];
  for (long vmas : {1, 64}) {
    for (int rep = 0; rep < 2; ++rep) {
      json b = {{"name", "w/" + f[2] + "/vmas:" + std::to_string(vmas)}, {"run_type", "iteration"},
                {"repetition_index", rep}, {"time_unit", "us"}, {"real_time", 10.0 * vmas + rep},
                {"iterations", 1}};
      b[counter] = 1.0 + rep;
      j["benchmarks"].push_back(b);
    }
  }
  if (!f[3].empty())
    j["benchmarks"].push_back({{"name", "w/failed/" + f[2]}, {"run_type", "iteration"}, {"time_unit", "us"},
                               {"error_occurred", true}, {"error_message", f[3]}});
  auto rf = results::parse_results(j.dump(-1, ' ', false, json::error_handler_t::replace), path);
  if (!rf) return std::nullopt;
  return std::move(*rf);
}

}  // namespace rmapbench::fuzz
