// The fork storm figure against a bare C fork/_exit/waitpid loop over the
// same kind of layout, in the same process, rounds interleaved. The ratio
// of the per-fork figures must stay within 0.97-1.03.
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "benchmarks/registry.hpp"
#include "benchmarks/selfcheck/selfcheck.hpp"

namespace rmapbench::selfcheck {
namespace {

long long now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

// What a developer would write by hand: V one-page private anonymous VMAs,
// odd ones VM_NOHUGEPAGE so neighbours differ and cannot merge, all written.
struct BareLayout {
  char* base = nullptr;
  size_t span = 0;
  explicit BareLayout(long vmas) {
    const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    span = ps * static_cast<size_t>(vmas);
    base = static_cast<char*>(mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    munmap(base, span);
    for (int pass = 1; pass >= 0; --pass)
      for (long i = pass; i < vmas; i += 2) {
        char* p = static_cast<char*>(mmap(base + ps * static_cast<size_t>(i), ps, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0));
        if (i % 2) madvise(p, ps, MADV_NOHUGEPAGE);
        p[0] = 1;
      }
  }
  ~BareLayout() { munmap(base, span); }
};

double bare_loop_us(long vmas, long forks) {
  BareLayout layout(vmas);
  long long total = 0;
  for (long i = 0; i < forks; ++i) {
    long long start = now_ns();
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    waitpid(pid, nullptr, 0);
    total += now_ns() - start;
  }
  return static_cast<double>(total) / 1e3 / static_cast<double>(forks);
}

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
  fmt::print("{:>6}  {:>14}  {:>14}  {:>7}  {:>15}  {}\n", "vmas", "bare us/fork", "suite us/fork", "ratio",
             "rounds' IQR", "verdict");
  for (long vmas : sizes) {
    std::vector<double> bare, suite, ratios;
    for (int round = 0; round < kRounds; ++round) {
      Capture capture;
      auto run_suite = [&] {
        benchmark::RunSpecifiedBenchmarks(&capture, fmt::format("^fork_storm/fork_exit_wait/vmas:{}/", vmas));
        suite.push_back(capture.us);
      };
      if (round % 2) run_suite();
      const long forks = std::max<long>(capture.iterations, 200);
      bare.push_back(bare_loop_us(vmas, forks));
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

RMAPBENCH_SELFCHECK(fork, {"fork", "fork storm (fork+exit+wait, V = 1 and 1000) vs a bare C loop: ratio 0.97-1.03",
                           run_fork_selfcheck});

}  // namespace rmapbench::selfcheck
