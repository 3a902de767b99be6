// The results / baseline JSON loader (runners/results/results.hpp) and what
// compare, baseline and report do with a file it accepted. Properties:
// never an exception or a crash, every rejection names the file, every
// listed metric has samples, a file compared with itself has no mismatched
// time units.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "runners/compare/baseline.hpp"
#include "runners/compare/compare.hpp"
#include "runners/compare/report.hpp"
#include "runners/results/results.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string path = "fuzz/input.json";
  (void)results::benchmark_key(text);

  auto rf = results::parse_results(text, path);
  if (!rf) {
    if (rf.status().message().rfind(path + ": ", 0) != 0)
      fuzz::broken("a rejection does not name the file: " + rf.status().message());
    return 0;
  }
  for (const auto& b : rf->benchmarks) {
    if (rf->find(b.name) == nullptr) fuzz::broken("find() misses benchmark '" + b.name + "'");
    for (const auto& m : b.metric_names()) {
      (void)rf->metric_info(b, m);
      if (b.samples(m).empty()) fuzz::broken("metric '" + m + "' listed without samples");
    }
  }
  (void)rf->label();
  (void)rf->repetitions();
  if (Status s = results::check_time_units(*rf, *rf); s.failed()) fuzz::broken("self time-unit check: " + s.message());

  // A baseline is a results file put where its host facts say.
  if (auto fp = baseline::fingerprint(rf->context)) {
    (void)fp->id();
    (void)fp->describe();
  }
  if (auto loc = baseline::locate(*rf)) (void)loc->relative_path();

  // Bounded work per input: few resamples, few benchmarks.
  if (rf->benchmarks.size() <= 16) {
    compare::Options options;
    options.bootstrap_resamples = 20;
    options.force = true;
    auto c = compare::compare(*rf, *rf, options);
    if (c) {
      for (auto f : {report::Format::text, report::Format::email, report::Format::markdown, report::Format::json,
                     report::Format::junit})
        (void)report::render(*c, f);
    }
  }
  return 0;
}
