// The fork storm figure against a bare C fork/_exit/waitpid loop run in a
// minimal process: the lean forker (benchmarks/forker), static, holding the
// same kind of layout and nothing else, running its own tight loop. Rounds
// are interleaved. The ratio of the per-fork figures must stay within
// 0.97-1.03: the suite's requests between forks must cost the forks nothing.
#include <fmt/core.h>

#include <algorithm>
#include <vector>

#include "benchmarks/mm/lean_forker.hpp"
#include "benchmarks/harness/registry.hpp"
#include "benchmarks/selfcheck/selfcheck.hpp"

namespace rmapbench::selfcheck {
namespace {

// Captures the workload's per-iteration figure (mean over its iterations).
class Capture : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration && !r.error_occurred) {
        us = r.GetAdjustedRealTime();
        iterations = r.iterations;
      }
  }
  double us = 0;
  long iterations = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

int run_fork_selfcheck() {
  const std::vector<long> sizes = {1, 1000};
  Selection selection{Profile::quick, {{"vmas", sizes}}, [](const std::string& n) {
                        return n.rfind("fork_storm/fork_exit_wait/", 0) == 0;
                      }};
  register_all_benchmarks(selection);
  std::vector<std::string> flags = {"rmapbench-selfcheck", "--benchmark_min_time=0.3"};
  std::vector<char*> argv;
  for (auto& f : flags) argv.push_back(f.data());
  int argc = static_cast<int>(argv.size());
  benchmark::Initialize(&argc, argv.data());

  // Each round times the suite and the bare loop back to back (alternating
  // which goes first) and yields one ratio; the verdict is the median of the
  // rounds' ratios. Pairing cancels the drift of a shared host, which moves
  // both figures alike within a round but by tens of percent over a minute.
  constexpr int kRounds = 15;
  int status = 0;
  fmt::print("bare: a tight loop in the lean forker, a static process holding only the layout; suite: fork_storm\n");
  fmt::print("{:>6}  {:>14}  {:>14}  {:>7}  {:>15}  {}\n", "vmas", "bare us/fork", "suite us/fork", "ratio",
             "rounds' IQR", "verdict");
  for (long vmas : sizes) {
    auto minimal = mm::LeanForker::start(vmas);
    if (!minimal) {
      fmt::print(stderr, "rmapbench-selfcheck: the minimal process: {}\n", minimal.status().message());
      return 1;
    }
    std::vector<double> bare, suite, ratios;
    for (int round = 0; round < kRounds; ++round) {
      Capture capture;
      auto run_suite = [&] {
        benchmark::RunSpecifiedBenchmarks(&capture, fmt::format("^fork_storm/fork_exit_wait/vmas:{}/", vmas));
        suite.push_back(capture.us);
      };
      if (round % 2) run_suite();
      const long forks = std::max<long>(capture.iterations, 200);
      auto loop = minimal->bare_loop(forks);
      if (!loop) {
        fmt::print(stderr, "rmapbench-selfcheck: the bare loop: {}\n", loop.status().message());
        return 1;
      }
      bare.push_back(static_cast<double>(loop->sums.total_ns) / 1e3 / static_cast<double>(forks));
      if (round % 2 == 0) run_suite();
      ratios.push_back(suite.back() / bare.back());
    }
    const double ratio = median(ratios);
    std::vector<double> sorted = ratios;
    std::sort(sorted.begin(), sorted.end());
    const bool inside = ratio >= 0.97 && ratio <= 1.03;
    if (!inside) status = 1;
    fmt::print("{:>6}  {:>14.1f}  {:>14.1f}  {:>7.3f}  {:>7.3f}-{:<7.3f}  {}\n", vmas, median(bare), median(suite), ratio,
               sorted[sorted.size() / 4], sorted[sorted.size() * 3 / 4], inside ? "ok (0.97-1.03)" : "OUTSIDE 0.97-1.03");
  }
  benchmark::Shutdown();
  return status;
}

}  // namespace

RMAPBENCH_SELFCHECK(fork, {"fork",
                           "fork storm (fork+exit+wait, V = 1 and 1000) vs a bare C loop in a minimal static process: "
                           "ratio 0.97-1.03",
                           run_fork_selfcheck});

}  // namespace rmapbench::selfcheck
