// Kernel counters the workloads read before and after a timed operation:
// slab objects (anon_vma, anon_vma_chain, vm_area_struct), /proc/vmstat and
// /proc/meminfo. The parsers are pure so tests can feed them fixtures.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "kernels/status.hpp"

namespace rmapbench::mm {

// /sys/kernel/slab/<cache>/objects: "468 N0=468" -> 468.
Result<long long> parse_sysfs_slab_objects(std::string_view text);

// /proc/slabinfo (version 2.x): cache name -> active_objs. The version line and
// "#" header lines are skipped; any other malformed line is an error.
Result<std::map<std::string, long long>> parse_slabinfo(std::string_view text);

// /proc/vmstat: "pgfault 123" per line -> name -> value.
Result<std::map<std::string, long long>> parse_vmstat(std::string_view text);
Result<std::map<std::string, long long>> read_vmstat();

// /proc/meminfo: "MemTotal: 24683620 kB" -> bytes; unit-less lines
// ("HugePages_Total: 0") keep their plain count.
Result<std::map<std::string, long long>> parse_meminfo(std::string_view text);
Result<std::map<std::string, long long>> read_meminfo();

// Object counts of slab caches, from the best source this host allows.
class SlabReader {
 public:
  // /sys/kernel/slab/<cache>/objects when readable, else /proc/slabinfo;
  // fails with both reasons when neither is (usually: not root).
  static Result<SlabReader> open();
  // Same, from other locations (tests).
  static Result<SlabReader> open_at(std::string sysfs_dir, std::string slabinfo_path);

  // Objects in use now. For a merged cache the count includes the caches
  // merged with it (see note()).
  Result<long long> objects(const std::string& cache) const;
  // "/sys/kernel/slab" or "/proc/slabinfo" (the paths given to open_at).
  std::string source() const;
  // What a count for `cache` includes beyond the cache itself, e.g. the
  // caches SLUB merged it with; empty when the count is the cache's own.
  std::string note(const std::string& cache) const;

 private:
  SlabReader(bool sysfs, std::string sysfs_dir, std::string slabinfo_path)
      : sysfs_(sysfs), sysfs_dir_(std::move(sysfs_dir)), slabinfo_path_(std::move(slabinfo_path)) {}
  bool sysfs_ = true;
  std::string sysfs_dir_;
  std::string slabinfo_path_;
};

}  // namespace rmapbench::mm
