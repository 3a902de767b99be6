// KSM for the ksm_merge workload: the counters under /sys/kernel/mm/ksm,
// ksmd's CPU time, what a merge must end with, ksmd tuned for a benchmark
// through restoring knob guards, and the region each merging process holds.
//
// Merge completion is pages_sharing reaching the value the layout implies,
// not "two full scans": processes that opt in after ksmd's cursor passed
// them are only scanned on the next pass. KSM packs mappers of one content
// into as few KSM pages as max_page_sharing allows (a stable_node_chain of
// "dups" when there are more), so for n mappers of a content:
//   pages_shared += ceil(n / max_page_sharing), pages_sharing += n - that.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/status.hpp"
#include "kernels/safety/knob_guard.hpp"

namespace rmapbench::mm::ksm {

inline constexpr const char* kKsmDir = "/sys/kernel/mm/ksm";

// ------------------------------------------------------------ counters

struct Counters {
  long long pages_shared = 0, pages_sharing = 0, pages_unshared = 0, pages_volatile = 0;
  long long full_scans = 0, stable_node_chains = 0, stable_node_dups = 0;
};
Result<Counters> read_counters();
Result<long long> read_counter(const std::string& name);  // /sys/kernel/mm/ksm/<name>

// One counter kept open: each read() is a single pread, cheap enough to poll
// without taking CPU from ksmd.
class CounterFile {
 public:
  static Result<CounterFile> open(const std::string& name);
  static Result<CounterFile> open_path(const std::string& path);  // any one-number file
  CounterFile(CounterFile&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
  CounterFile& operator=(CounterFile&&) = delete;
  ~CounterFile();
  Result<long long> read() const;

 private:
  CounterFile() = default;
  int fd_ = -1;
  std::string path_;
};

// The KSM pages mapped by a set of processes: the sum of their
// /proc/<pid>/ksm_merging_pages (Linux 6.1+), each file kept open so a poll
// is one pread per process. Counts this run's processes only, unlike the
// system-wide counters above, which include every other KSM user on the host.
class MergingPages {
 public:
  static Result<MergingPages> open(const std::vector<pid_t>& pids);
  Result<long long> sum() const;
  Result<std::vector<long long>> each() const;

 private:
  std::vector<CounterFile> files_;
};

// ------------------------------------------------------------ pure parsers

// /proc/<pid>/stat: utime + stime (fields 14 and 15, clock ticks). The comm
// field may hold spaces and parentheses; fields count from the last ')'.
Result<long long> parse_stat_cpu_ticks(std::string_view stat);
// /proc/<pid>/schedstat: "<ns on cpu> <ns waiting> <timeslices>" -> the first.
Result<long long> parse_schedstat_ns(std::string_view schedstat);

// One "name value" line of /proc/<pid>/ksm_stat ("ksm_rmap_items 64"):
// the number, or an error when the line is absent or not a number.
Result<long long> parse_ksm_stat_field(std::string_view ksm_stat, std::string_view name);
// /proc/<pid>/ksm_stat field of a process (Linux 6.1+).
Result<long long> ksm_stat_field(pid_t pid, const std::string& name);

// What a finished merge leaves: for each content, `mappers` pages with it
// (in any processes), at most `max_page_sharing` mappers per KSM page.
struct Expected {
  long long shared = 0;   // KSM pages (pages_shared)
  long long sharing = 0;  // mappings saved (pages_sharing)
};
Expected expected_merge(const std::vector<long long>& mappers_per_content, long max_page_sharing);

// ------------------------------------------------------------ ksmd

// ksmd's CPU time: /proc/<ksmd>/schedstat (ns) where the kernel has it, else
// utime + stime from /proc/<ksmd>/stat (clock ticks, 10 ms steps at USER_HZ=100).
class KsmdClock {
 public:
  static Result<KsmdClock> open();
  Result<int64_t> cpu_ns() const;
  pid_t pid() const { return pid_; }
  const std::string& source() const { return source_; }  // "schedstat" or "stat (clock ticks)"

 private:
  pid_t pid_ = -1;
  bool schedstat_ = true;
  std::string source_;
};
// The pid of the ksmd kernel thread (comm "ksmd", child of kthreadd).
Result<pid_t> find_ksmd();

// ksmd tuned for one benchmark. apply() sets pages_to_scan, sleep_millisecs,
// optionally max_page_sharing, then run=1, each through a KnobGuard. When no
// page is merged on the host when it starts (run=0, pages_shared=0), it first
// sets run=2, so the guard of run=1 restores to 2: on scope exit and in the
// signal handler (newest guard first) that unmerges everything before
// max_page_sharing is put back (the kernel refuses that with EBUSY while
// pages are merged), and then run returns to its original. Guards are
// restored newest first in the destructor.
class Tuning {
 public:
  struct Options {
    long pages_to_scan = 1000;
    long sleep_ms = 0;
    std::optional<long> max_page_sharing;  // unset: the host's value
  };
  // Errors are skip reasons (knob refused, host using KSM already when
  // max_page_sharing must change, run interrupted).
  static Result<Tuning> apply(const Options& options, std::vector<std::string>* notes);
  Tuning(Tuning&&) noexcept = default;
  Tuning& operator=(Tuning&&) = delete;
  ~Tuning();

  // ksmd stops (run=0: merged pages stay merged) while something else is timed.
  Status pause();
  Status resume();
  long max_page_sharing() const { return max_page_sharing_; }
  // Nobody else had pages merged when we started: the counters are ours alone.
  bool exclusive() const { return exclusive_; }
  // The other processes using KSM when apply() ran ("" when none).
  const std::string& other_users() const { return other_users_; }
  // Restores every knob now (newest first); the first error.
  Status restore();

 private:
  Tuning() = default;
  std::vector<safety::KnobGuard> guards_;
  std::optional<safety::KnobGuard> pause_;
  long max_page_sharing_ = 256;
  bool exclusive_ = false;
  std::string other_users_;  // describe_ksm_users() of the others when apply() ran
};

// Polls `done` every `poll` until it says true, fails, the run is
// interrupted, or `timeout` passes. Returns when it saw completion (monotonic
// ns). The timeout error is "<what> did not complete within N s: <state()>".
Result<int64_t> wait_until(const std::function<Result<bool>()>& done, std::chrono::milliseconds timeout,
                           std::chrono::microseconds poll, const std::string& what,
                           const std::function<std::string()>& state);

// ------------------------------------------------------------ the pages

// `pages` private anonymous pages (no THP: KSM merges base pages), page j
// filled with content (j % contents): the same bytes in every process that
// uses the same seed, and different for different contents.
class KsmRegion {
 public:
  static Result<KsmRegion> create(long pages, long contents, uint32_t seed);
  KsmRegion(KsmRegion&&) noexcept;
  KsmRegion& operator=(KsmRegion&&) = delete;
  KsmRegion(const KsmRegion&) = delete;
  KsmRegion& operator=(const KsmRegion&) = delete;
  ~KsmRegion();

  char* start() const { return base_; }
  size_t bytes() const;
  long pages() const { return pages_; }
  long contents() const { return contents_; }
  // Every page holds its content; pages for which `marked(j)` is true have the
  // marker word at their start instead (our own COW write).
  Status verify(const std::function<bool(long page)>& marked, const std::string& who) const;
  // Writes the marker word into page j: a COW fault (breaks KSM sharing).
  void mark(long page);
  void corrupt_one_byte_for_test(long page);

 private:
  KsmRegion() = default;
  uint64_t base_word(long page) const;
  char* base_ = nullptr;
  long pages_ = 0;
  long contents_ = 1;
  uint32_t seed_ = 0;
};

// The mappers per content of `processes` regions of `pages` pages with
// `contents` contents (pages divisible by contents, else the remainder).
std::vector<long long> mappers_per_content(long processes, long pages, long contents);

}  // namespace rmapbench::mm::ksm
