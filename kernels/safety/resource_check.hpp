// Checks before a workload runs: does the host have the processes, memory
// and mappings its size needs? Each check returns nullopt when it fits, else
// one message that says what is short and the largest size that would fit:
//   "needs 1000 processes, RLIMIT_NPROC=20 allows 12 more: raise it with
//    ulimit -u or use --sweep children=12"
//   "needs 16384 mappings; vm.max_map_count=65530 allows 65400 more"
// The caller prefixes its context ("fork storm with 16384 VMAs: ...").
// The checks read /proc and /sys only; they never fail (an unreadable limit
// is treated as no limit).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace rmapbench::safety {

// How to phrase "use --sweep PARAM=N": PARAM and how many of the checked
// unit one step of it costs (e.g. 4096 bytes per page, 2 processes per pair).
struct SizeHint {
  std::string param;    // "" -> no --sweep suggestion
  double per_unit = 1;  // processes / bytes / mappings per unit of `param`
};

// `extra_processes` more tasks (processes or threads) than exist now.
// Limits: RLIMIT_NPROC (counted over our real uid's tasks; not enforced for
// root or CAP_SYS_RESOURCE/CAP_SYS_ADMIN), kernel.threads-max and
// kernel.pid_max (over all tasks), the pids cgroup (pids.max of our cgroup
// and its ancestors).
std::optional<std::string> check_processes(long extra_processes, const SizeHint& hint = {});

// `bytes` more resident memory. Against MemAvailable minus a reserve
// (min(512 MiB, MemTotal/20)) and the memory cgroup (memory.max -
// memory.current of our cgroup and its ancestors).
std::optional<std::string> check_memory(long long bytes, const SizeHint& hint = {});

// `vmas` more mappings in one process (this one, or a child forked from it).
// Against /proc/sys/vm/max_map_count minus our current mappings.
std::optional<std::string> check_map_count(long vmas, const SizeHint& hint = {});

struct ResourceNeeds {
  long processes = 0;
  long long memory_bytes = 0;
  long vmas = 0;
};
// Every message that applies (empty: it all fits).
std::vector<std::string> check_resources(const ResourceNeeds& needs);

// The pieces, for tests and `doctor`.
struct ProcessHeadroom {
  long long allowed_more = -1;  // -1: no limit found
  std::string limit;            // "RLIMIT_NPROC=20", "kernel.threads-max=63000"
  std::string fix;              // "raise it with ulimit -u"
};
ProcessHeadroom process_headroom();

struct MemoryHeadroom {
  long long allowed_bytes = -1;  // -1: unknown
  std::string limit;             // "MemAvailable=3.20 GiB (keeping 512 MiB in reserve)"
};
MemoryHeadroom memory_headroom();

// /proc/meminfo as key -> bytes ("MemAvailable" -> ...), values in kB scaled.
std::optional<long long> meminfo_bytes(const std::string& key);
// /proc/self/maps line count.
long current_map_count();
// "3.20 GiB", "512 MiB", "4096 bytes"
std::string format_bytes(long long bytes);

}  // namespace rmapbench::safety
