// The /proc and sysfs counter parsers the workloads and the host probes read
// (kernels/procfs/kernel_counters.hpp): /sys/kernel/slab/<cache>/objects,
// /proc/slabinfo, /proc/vmstat, /proc/meminfo. Every input goes through all
// four. Properties: no crash or exception, a parsed count is never negative
// where the format cannot hold one, an error has a message.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/procfs/kernel_counters.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto n = mm::parse_sysfs_slab_objects(text)) {
    if (*n < 0) fuzz::broken("negative slab object count");
  } else if (n.status().message().empty()) {
    fuzz::broken("slab objects: error without a message");
  }
  if (auto slabs = mm::parse_slabinfo(text)) {
    for (const auto& [name, count] : *slabs)
      if (name.empty()) fuzz::broken("slabinfo: empty cache name");
  } else if (slabs.status().message().empty()) {
    fuzz::broken("slabinfo: error without a message");
  }
  if (auto v = mm::parse_vmstat(text); !v && v.status().message().empty()) fuzz::broken("vmstat: error without a message");
  if (auto m = mm::parse_meminfo(text); !m && m.status().message().empty())
    fuzz::broken("meminfo: error without a message");
  return 0;
}
