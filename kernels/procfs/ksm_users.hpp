// Processes on this host that use KSM, from /proc/<pid>/ksm_stat (Linux
// 6.1+; the merge_any/mergeable lines 6.8+) and /proc/<pid>/ksm_merging_pages.
// A run judges KSM by its own processes; these are the others, named by
// `doctor` and `run` because their merging shows up in the system-wide
// counters (/sys/kernel/mm/ksm/pages_sharing, ...).
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rmapbench::host {

struct KsmStat {
  long long rmap_items = 0;     // ksm_rmap_items: pages KSM tracks in this process
  long long merging_pages = 0;  // ksm_merging_pages: its pages mapped to a KSM page
  long long zero_pages = 0;     // ksm_zero_pages
  bool merge_any = false;       // ksm_merge_any: yes (PR_SET_MEMORY_MERGE)
  bool mergeable = false;       // ksm_mergeable: yes (some VMA is VM_MERGEABLE)
  // Uses KSM at all: tracked, merged, or opted in.
  bool uses_ksm() const { return rmap_items > 0 || merging_pages > 0 || zero_pages > 0 || merge_any || mergeable; }
};
// Parses /proc/<pid>/ksm_stat text; absent lines stay 0/false.
KsmStat parse_ksm_stat(std::string_view text);
// The process's ksm_stat; nullopt when unreadable (gone, kernel thread, no KSM).
std::optional<KsmStat> read_ksm_stat(pid_t pid);

struct KsmUser {
  pid_t pid = 0;
  std::string comm;
  KsmStat stat;
};
// Every process with uses_ksm() for which `ours(pid)` is false (this process
// is never listed). Empty when /proc/<pid>/ksm_stat does not exist.
std::vector<KsmUser> other_ksm_users(const std::function<bool(pid_t)>& ours = {});
// "qemu-system-x86 (pid 812: 1153 pages merged, 16384 tracked)", at most
// `max` named, then "and N more".
std::string describe_ksm_users(const std::vector<KsmUser>& users, size_t max = 5);

}  // namespace rmapbench::host
