// The pieces probe() is made of: one function per group of facts, plus the
// pure decisions inside them, exposed so tests can feed them text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/status.hpp"
#include "kernels/config/kernel_config.hpp"
#include "kernels/host/host_facts.hpp"

namespace rmapbench::host::probes {

// The CONFIG_ options recorded in HostFacts::config (absent ones as "n").
const std::vector<std::string>& config_options_that_matter();

// host_facts.cpp: uname, hostname, kernel config, variant.
void probe_kernel(HostFacts& h);

// host_topology.cpp: CPU model, CPUs online, memory, NUMA nodes (hwloc).
void probe_topology(HostFacts& h);
// "model name", else arm64 "CPU implementer"/"CPU part", else "Hardware".
std::string cpu_model_from_cpuinfo(std::string_view cpuinfo);
// A node's /sys/devices/system/node/nodeN/distance line: "10 20" -> {10, 20}.
Result<std::vector<int>> parse_distance_line(std::string_view line);
// "10 20;20 10": rows separated by ';'.
std::string format_distances(const std::vector<NumaNode>& nodes);

// host_knobs.cpp: THP, KSM, governor, turbo, ASLR, perf_event_paranoid.
void probe_knobs(HostFacts& h);
// KSM knobs as a fresh boot sets them.
const std::map<std::string, std::string>& ksm_default_knobs();

// host_emulation.cpp.
struct EmulationClues {
  bool hypervisor_flag = false;  // "hypervisor" in /proc/cpuinfo flags (x86)
  std::string cpuid_vendor;      // CPUID leaf 0x40000000 signature (x86 guests)
  std::string dmi_sys_vendor;    // /sys/class/dmi/id/sys_vendor
  std::string dmi_product_name;  // /sys/class/dmi/id/product_name
  std::string acpi_oem_id;       // OEM ID in the DSDT header (root only)
  std::string cpu_model;         // cpu_model_from_cpuinfo()
  std::string dt_compatible;     // /sys/firmware/devicetree/base/compatible (arm64)
};
struct EmulationVerdict {
  std::string label;     // "none", "qemu-tcg", "qemu", "kvm" (Firecracker too), "hypervisor (unknown)", ...
  std::string evidence;  // the clues seen, for the reader to judge
};
EmulationVerdict classify_emulation(const EmulationClues& c);
EmulationClues gather_emulation_clues(std::string_view cpuinfo);
void probe_emulation(HostFacts& h, std::string_view cpuinfo);
// "qemu-tcg" / "kvm" from a kernel command line carrying rmapbench.accel=
// (the QEMU runner's word for the accelerator it chose), else "".
std::string accelerator_from_cmdline(std::string_view cmdline);

// host_observability.cpp: perf events, tracefs, debugfs, lockdown, slab counters.
void probe_observability(HostFacts& h);
struct LockdownVerdict {
  std::string value;   // "none", "integrity", "confidentiality", "unknown (...)"
  std::string source;
};
// securityfs_text: the lockdown file's content, or nullopt with `why` unread;
// split_huge_pages: HostFacts::split_huge_pages, evidence when securityfs is silent.
LockdownVerdict lockdown_verdict(const std::optional<std::string>& securityfs_text, const std::string& why,
                                 const kernels::ConfigMap& config, const std::string& split_huge_pages);

}  // namespace rmapbench::host::probes
