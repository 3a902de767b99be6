// The options of `rmapbench run` (runners/cli/run_options.hpp): the input is
// split on NUL bytes into argv. Properties: a bad command line is only ever
// std::invalid_argument (the one exception `rmapbench run` turns into a
// usage error), a bad --filter only std::regex_error (likewise), and what is
// accepted is within its documented range.
#include <cstddef>
#include <cstdint>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

#include "runners/cli/run_options.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      args.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  if (!cur.empty() || args.empty()) args.push_back(cur);

  cli::RunOptions o;
  try {
    o = cli::parse_run_options(args);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).empty()) fuzz::broken("usage error without a message");
    return 0;
  }
  if (o.repetitions < 1 || o.repetitions > 1000) fuzz::broken("repetitions out of range");
  for (const auto& [name, values] : o.sweeps) {
    if (name.empty()) fuzz::broken("sweep without a name");
    for (long v : values)
      if (v < 0) fuzz::broken("negative sweep value");
  }
  (void)cli::results_file_name("results", o.variant, o.out, o.variant, o.profile, "20260101T000000Z");
  // `rmapbench run` compiles the filter once and matches every benchmark name.
  if (!o.filter.empty()) {
    try {
      (void)cli::filter_matches(o.filter, "");
      (void)cli::filter_matches(o.filter, "fork_storm/fork_exit_wait/vmas:1000");
    } catch (const std::regex_error&) {
      return 0;
    }
  }
  return 0;
}
