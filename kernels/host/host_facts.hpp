// What this host is and can do: probed once per process, queried by workload
// requirements, and reported (results context, `rmapbench doctor`) by
// runners/host/host_report.hpp. Probing never fails: an unreadable fact is
// recorded as "unknown (<reason>)".
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rmapbench::host {

struct NumaNode {
  int id = 0;
  std::string cpus;             // cpulist, "0-3"
  long long memory_bytes = 0;
  std::vector<int> distances;   // to node 0..N-1
};

struct HostFacts {
  std::string kernel_release, kernel_version, arch, hostname;
  std::string cpu_model;
  int cpus_online = 0;
  long long mem_total_bytes = 0, mem_available_bytes = 0;
  std::vector<NumaNode> numa_nodes;           // empty when NUMA is unknown
  std::map<std::string, std::string> config;  // CONFIG_X -> y/m/value, only the options that matter
  std::string config_source;                  // "/proc/config.gz", "/boot/config-...", or "unavailable: <why>"
  std::map<std::string, std::string> thp;     // knob name -> current value ("enabled" -> "madvise")
  std::vector<std::string> thp_mthp_sizes_kb; // from hugepages-*kB directories
  std::map<std::string, std::string> ksm;     // knob name -> value
  std::string ksm_users;                      // [ksm_users] other processes using KSM (ksm_users.hpp), "none"
  std::string governor;                       // "performance", "unknown (no cpufreq)"
  std::string aslr;                           // randomize_va_space
  int perf_event_paranoid = 99;
  std::map<std::string, std::string> perf_events;  // "page-faults" -> "ok" / "unavailable: EACCES"
  bool tracefs_available = false;
  bool debugfs_mounted = false;
  std::string lockdown;                       // "none", "integrity", "confidentiality", "unknown (...)"
  std::string emulation;                      // "none", "qemu-tcg", "kvm" (Firecracker too: see host_emulation.cpp), ...
  std::string variant;                        // detected kernel variant label ("stock", "anon_vma_lazy")
  bool slab_counters_readable = false;
  std::string slab_counters_reason;           // why not, when not

  // Details behind the facts above; the context key is in brackets.
  std::string turbo;                          // [turbo] "on", "off", "unknown (...)"
  std::string emulation_evidence;             // [emulation_evidence] what the emulation verdict rests on
  std::string tracefs_path;                   // [tracefs] mount point, or why unavailable
  std::map<std::string, std::string> trace_subsystems;  // [trace.migrate] "present" / "absent" / "unknown (...)"
  std::string debugfs_path;                   // [debugfs] mount point, or why unavailable
  std::string split_huge_pages;               // [debugfs.split_huge_pages] "writable", "EPERM (lockdown)", ...
  std::string lockdown_source;                // [lockdown_source] where the lockdown value came from
  std::string slab_counters_source;           // [slab_counters] "/sys/kernel/slab" or "/proc/slabinfo" when readable
};

// Probed on first call, cached for the process.
const HostFacts& facts();
HostFacts probe();

// Convenience queries for workload requirements.
bool config_enabled(const std::string& option);  // "CONFIG_KSM" is y or m
int numa_node_count();                           // >= 1
bool running_as_root();

}  // namespace rmapbench::host
