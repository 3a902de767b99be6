#include "benchmarks/harness/host_reference.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include "benchmarks/harness/metrics.hpp"

namespace rmapbench {

namespace {

// 256 KiB: inside any L2 of the last decade. A buffer beyond L2 (2 MiB was
// tried) makes each process's result depend on where its physical pages
// fall in the cache sets: medians of separate processes on a quiet host
// spread some 5%, against 2.5% at 256 KiB - and the reference is compared
// between runs, so that spread is its noise floor.
constexpr size_t kBytes = 256u << 10;
constexpr size_t kLine = 64;
// About 10 ms on a 2020s x86 server core (5 ns a step in L2).
constexpr int kStepsPerQuantum = 1 << 21;

// System-wide steal and total CPU time from /proc/stat (USER_HZ ticks);
// {0, 0} where the line cannot be read.
std::pair<uint64_t, uint64_t> steal_and_total() {
  std::ifstream in("/proc/stat");
  std::string line;
  if (!std::getline(in, line) || !line.starts_with("cpu ")) return {0, 0};
  std::istringstream words(line.substr(4));
  std::vector<uint64_t> v;
  for (uint64_t x; words >> x;) v.push_back(x);
  // user nice system idle iowait irq softirq steal [guest guest_nice]: the
  // guest times are already inside user and nice.
  if (v.size() < 8) return {0, 0};
  return {v[7], std::accumulate(v.begin(), v.begin() + 8, uint64_t{0})};
}

RMAPBENCH_METRIC(kSteal, {kStealMetric, "%", Better::lower, MetricKind::statistical,
                          "hypervisor steal time, system-wide, while the host reference was sampled",
                          MetricRole::diagnostic});

}  // namespace

Result<HostReference> HostReference::create() {
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::from_errno("host reference: mmap 256 KiB");
  auto* buffer = static_cast<uint8_t*>(p);
  // 4 KiB pages whatever the THP policy of the kernel under test: a kernel
  // that gave this buffer a THP would change the reference's TLB behaviour.
  (void)madvise(buffer, kBytes, MADV_NOHUGEPAGE);
  // One cycle through every cache line in a fixed random order (the same in
  // every run and on every host), so the hardware prefetcher cannot help.
  const size_t lines = kBytes / kLine;
  std::vector<uint32_t> order(lines);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937 rng(0x726d6170);
  std::shuffle(order.begin() + 1, order.end(), rng);
  for (size_t i = 0; i < lines; ++i)
    *reinterpret_cast<uint32_t*>(buffer + static_cast<size_t>(order[i]) * kLine) = order[(i + 1) % lines];
  HostReference r(buffer, kBytes);
  std::tie(r.last_steal_, r.last_total_) = steal_and_total();
  return r;
}

HostReference::HostReference(HostReference&& o) noexcept
    : buffer_(o.buffer_), bytes_(o.bytes_), cursor_(o.cursor_), sink_(o.sink_), samples_(std::move(o.samples_)),
      last_(o.last_), last_us_(o.last_us_), last_steal_(o.last_steal_), last_total_(o.last_total_) {
  o.buffer_ = nullptr;
}

HostReference::~HostReference() {
  if (buffer_) munmap(buffer_, bytes_);
}

HostReference::Sample HostReference::measure() {
  uint32_t p = cursor_;
  uint64_t h = sink_;
  // One untimed pass first: whatever the workload before left in the caches
  // and TLB, the timed part starts from the same state.
  for (size_t s = 0; s < bytes_ / kLine; ++s) p = *reinterpret_cast<volatile uint32_t*>(buffer_ + static_cast<size_t>(p) * kLine);
  const auto start = std::chrono::steady_clock::now();
  for (int s = 0; s < kStepsPerQuantum; ++s) {
    p = *reinterpret_cast<volatile uint32_t*>(buffer_ + static_cast<size_t>(p) * kLine);
    h = (h ^ p) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 29;
  }
  const auto end = std::chrono::steady_clock::now();
  cursor_ = p;
  sink_ = h;
  Sample s;
  s.us = std::chrono::duration<double, std::micro>(end - start).count();
  const auto [steal, total] = steal_and_total();
  if (total > last_total_ && steal >= last_steal_)
    s.steal_pct = 100.0 * static_cast<double>(steal - last_steal_) / static_cast<double>(total - last_total_);
  last_steal_ = steal;
  last_total_ = total;
  return s;
}

void HostReference::sample_if_due() {
  const auto now = std::chrono::steady_clock::now();
  if (!samples_.empty()) {
    const auto interval = std::max<std::chrono::steady_clock::duration>(
        kMinInterval, std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                          std::chrono::duration<double, std::micro>(last_us_ * kOverheadShare)));
    if (now - last_ < interval) return;
  }
  sample_now();
}

void HostReference::sample_now() {
  Sample s = measure();
  last_us_ = s.us;
  last_ = std::chrono::steady_clock::now();
  samples_.push_back(s);
}

}  // namespace rmapbench
