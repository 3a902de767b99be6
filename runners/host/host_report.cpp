// context() and warnings(): pure functions of HostFacts, so tests can build
// a HostFacts by hand and check what a host like it would be told.
#include <algorithm>

#include "runners/host/host_report.hpp"
#include "kernels/host/host_probes.hpp"

namespace rmapbench::host {

namespace {

bool starts_with(const std::string& s, std::string_view p) { return s.rfind(p, 0) == 0; }

std::string value_or(const std::map<std::string, std::string>& m, const std::string& key, const std::string& dflt) {
  auto it = m.find(key);
  return it == m.end() ? dflt : it->second;
}

bool lockdown_active(const HostFacts& h) {
  return h.lockdown == "integrity" || h.lockdown == "confidentiality" || starts_with(h.split_huge_pages, "EPERM");
}

}  // namespace

std::vector<Fact> context(const HostFacts& h) {
  std::vector<Fact> f;
  auto add = [&](std::string key, std::string value) { f.push_back({std::move(key), std::move(value)}); };
  add("kernel_release", h.kernel_release);
  add("kernel_version", h.kernel_version);
  add("arch", h.arch);
  add("hostname", h.hostname);
  add("variant", h.variant);
  add("cpu_model", h.cpu_model);
  add("cpus_online", std::to_string(h.cpus_online));
  add("mem_total_bytes", std::to_string(h.mem_total_bytes));
  add("mem_available_bytes", std::to_string(h.mem_available_bytes));
  add("numa_nodes", h.numa_nodes.empty() ? "unknown" : std::to_string(h.numa_nodes.size()));
  for (const auto& n : h.numa_nodes) {
    add("numa_node" + std::to_string(n.id) + "_cpus", n.cpus);
    add("numa_node" + std::to_string(n.id) + "_memory_bytes", std::to_string(n.memory_bytes));
  }
  add("numa_distances", probes::format_distances(h.numa_nodes));
  add("config_source", h.config_source);
  for (const auto& [k, v] : h.config) add("config." + k, v);
  for (const auto& [k, v] : h.thp) add("thp." + k, v);
  std::string sizes;
  for (const auto& s : h.thp_mthp_sizes_kb) sizes += (sizes.empty() ? "" : " ") + s;
  add("thp.mthp_sizes_kb", sizes);
  for (const auto& [k, v] : h.ksm) add("ksm." + k, v);
  if (!h.ksm_users.empty()) add("ksm_users", h.ksm_users);
  add("governor", h.governor);
  add("turbo", h.turbo);
  add("aslr", h.aslr);
  add("emulation", h.emulation);
  add("emulation_evidence", h.emulation_evidence);
  add("perf_event_paranoid", h.perf_event_paranoid == 99 ? "unknown" : std::to_string(h.perf_event_paranoid));
  for (const auto& [k, v] : h.perf_events) add("perf." + k, v);
  add("tracefs", h.tracefs_available ? h.tracefs_path : "unavailable: " + h.tracefs_path);
  for (const auto& [k, v] : h.trace_subsystems) add("trace." + k, v);
  add("debugfs", h.debugfs_mounted ? h.debugfs_path : "unavailable: " + h.debugfs_path);
  add("debugfs.split_huge_pages", h.split_huge_pages);
  add("lockdown", h.lockdown);
  add("lockdown_source", h.lockdown_source);
  add("slab_counters", h.slab_counters_readable ? h.slab_counters_source : "unreadable: " + h.slab_counters_reason);
  return f;
}

std::vector<Warning> warnings(const HostFacts& h) {
  std::vector<Warning> w;
  auto warn = [&](std::string problem, std::string fix, bool mild = false) {
    w.push_back({std::move(problem), std::move(fix), mild});
  };

  if (starts_with(h.config_source, "unavailable"))
    warn("kernel config " + h.config_source + ": CONFIG facts and the variant label are unknown",
         "modprobe configs (CONFIG_IKCONFIG_PROC), or install /boot/config-$(uname -r); pass --variant to label results");

  // Timing stability.
  if (!h.governor.empty() && !starts_with(h.governor, "unknown") && h.governor != "performance")
    warn("cpufreq governor is '" + h.governor + "': the clock moves with load, so timings drift",
         "cpupower frequency-set -g performance");
  if (h.turbo == "on")
    warn("turbo/boost is on: the clock depends on temperature and how many cores are busy",
         "echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo (intel_pstate) or "
         "echo 0 > /sys/devices/system/cpu/cpufreq/boost");
  if (!h.aslr.empty() && h.aslr != "0" && !starts_with(h.aslr, "unknown"))
    warn("ASLR is on (randomize_va_space=" + h.aslr + "): VMA placement differs between runs, adding a little noise",
         "echo 0 > /proc/sys/kernel/randomize_va_space (put back " + h.aslr + " afterwards)", true);
  if (h.emulation == "qemu-tcg")
    warn("emulated host (qemu-tcg): timings are not performance figures",
         "use these results for coverage only; compare them only with other emulated runs");
  else if (h.emulation == "qemu (accelerator unknown)")
    warn("QEMU guest, accelerator unknown (on arm64 nothing inside tells TCG from KVM): if it is TCG, timings are "
         "not performance figures",
         "treat these results as emulated unless you know the guest runs under KVM; rmapbench qemu records the "
         "accelerator itself");
  else if (!h.emulation.empty() && h.emulation != "none")
    warn("virtual machine (" + h.emulation + "): timings include virtualization overhead and vCPU scheduling noise",
         "take figures for posting on bare metal; compare only with runs on the same kind of VM");

  // Debug options that change what is being timed.
  std::string debug;
  for (const char* opt : {"CONFIG_DEBUG_VM", "CONFIG_KASAN", "CONFIG_PROVE_LOCKING", "CONFIG_SLUB_DEBUG_ON"})
    if (value_or(h.config, opt, "n") == "y") debug += (debug.empty() ? "" : ", ") + std::string(opt);
  if (!debug.empty())
    warn("kernel built with " + debug + ": debug checks distort timings", "use a kernel built without them");

  // THP and KSM knobs.
  std::string thp = value_or(h.thp, "enabled", "unknown");
  if (thp == "never")
    warn("THP is disabled (enabled=never): THP split workloads cannot run",
         "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled");
  else if (thp == "always")
    warn("THP enabled=always: anonymous faults may get huge pages, which changes fork/COW/footprint figures; "
         "unusual for results",
         "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled");
  else if (starts_with(thp, "unknown"))
    warn("THP unavailable (" + thp + "): THP split workloads cannot run",
         "use a kernel with CONFIG_TRANSPARENT_HUGEPAGE=y (kernels/stock/config.fragment)");

  std::string ksm_run = value_or(h.ksm, "run", "unknown");
  if (starts_with(ksm_run, "unknown")) {
    warn("KSM unavailable (" + ksm_run + "): KSM merge workloads cannot run",
         "use a kernel with CONFIG_KSM=y (kernels/stock/config.fragment)");
  } else {
    if (ksm_run != "0")
      warn("ksmd is running (run=" + ksm_run + "): it scans in the background and perturbs timings",
           "echo 0 > /sys/kernel/mm/ksm/run (KSM workloads set the knobs they need themselves)");
    std::string differ, fix;
    for (const auto& [knob, dflt] : probes::ksm_default_knobs()) {
      auto it = h.ksm.find(knob);
      if (knob == "run" || it == h.ksm.end() || it->second == dflt) continue;
      differ += (differ.empty() ? "" : ", ") + knob + "=" + it->second + " (default " + dflt + ")";
      fix += (fix.empty() ? "" : "; ") + ("echo " + dflt + " > /sys/kernel/mm/ksm/" + knob);
    }
    if (!differ.empty()) warn("KSM knobs differ from the kernel defaults: " + differ, fix);
    if (!h.ksm_users.empty() && h.ksm_users != "none")
      warn("other processes use KSM: " + h.ksm_users +
               ": the system-wide KSM counters include their merging (ksm_merge judges only its own processes; "
               "max_page_sharing cannot change while they have pages merged, so that family skips)",
           "results stay valid; for ksmd timings free of their scanning, stop them or run on a host without them");
  }

  // Workloads the host cannot run.
  if (h.numa_nodes.size() == 1)
    warn("single NUMA node: migration workloads need >= 2 NUMA nodes",
         "run them on a multi-node host, or in a QEMU guest: rmapbench qemu --numa 2 -- run");
  else if (h.numa_nodes.empty())
    warn("NUMA topology unknown (hwloc found no nodes): migration workloads will be skipped",
         "check that /sys/devices/system/node is present and hwloc works (lstopo)");
  if (!h.config.empty() && value_or(h.config, "CONFIG_MEMORY_FAILURE", "n") != "y")
    warn("no CONFIG_MEMORY_FAILURE: memory-failure workloads cannot run",
         "use a kernel with CONFIG_MEMORY_FAILURE=y (kernels/stock/config.fragment)");

  // Observability.
  std::string denied;
  for (const auto& [event, state] : h.perf_events)
    // A tracepoint missing only because tracefs is unmounted has its own warning below.
    if (state != "ok" && state.find("tracefs not mounted") == std::string::npos)
      denied += (denied.empty() ? "" : ", ") + event + ": " + (starts_with(state, "unavailable: ") ? state.substr(13) : state);
  if (!denied.empty()) {
    bool paranoid = h.perf_event_paranoid > 1 && h.perf_event_paranoid != 99;
    warn("perf events unavailable (" + denied + "): per-operation perf counters will be missing" +
             (paranoid ? "; kernel.perf_event_paranoid=" + std::to_string(h.perf_event_paranoid) : ""),
         paranoid ? "run as root, or sysctl -w kernel.perf_event_paranoid=1"
                  : "mount tracefs for tracepoints; check seccomp/LSM rules for perf_event_open");
  }
  if (!h.tracefs_available)
    warn("tracefs not mounted: tracepoint counters (migrate:*, huge_memory:*, ksm:*, kmem:*) unavailable",
         "mount -t tracefs nodev /sys/kernel/tracing", true);
  if (lockdown_active(h))
    warn("kernel lockdown is active (" + h.lockdown + "): debugfs split_huge_pages unavailable; "
         "THP split uses the deferred-split path",
         "to time the direct split, boot a kernel without lockdown (Secure Boot off, no lockdown= parameter, "
         "no CONFIG_LOCK_DOWN_KERNEL_FORCE_*)");
  else if (!h.debugfs_mounted)
    warn("debugfs not mounted: THP split uses the deferred-split path", "mount -t debugfs none /sys/kernel/debug",
         true);
  if (!h.slab_counters_readable) {
    bool missing = h.slab_counters_reason.find("No such file") != std::string::npos;
    warn("slab counters unreadable (" + h.slab_counters_reason + "): anon_vma footprint figures unavailable",
         missing ? "use a kernel with CONFIG_SLUB_DEBUG=y (kernels/stock/config.fragment)" : "run as root");
  }
  return w;
}

std::map<std::string, std::string> this_host_context() {
  std::map<std::string, std::string> c;
  for (const auto& f : context(facts())) c[f.key] = f.value;
  return c;
}

}  // namespace rmapbench::host
