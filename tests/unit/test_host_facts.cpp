// Host probing: the real probe on this host, and the pure pieces (context,
// warnings, cpuinfo/distance parsing, emulation and lockdown verdicts).
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "test_support.hpp"
#include "kernels/host/host_facts.hpp"
#include "runners/host/host_report.hpp"
#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"

using namespace rmapbench;
using namespace rmapbench::host;

using rmapbench::testing::slurp;
namespace {

const std::string kData = std::string(RMAPBENCH_TEST_DATA_DIR) + "/host/";

std::map<std::string, std::string> as_map(const std::vector<Fact>& facts) {
  std::map<std::string, std::string> m;
  for (const auto& f : facts) m[f.key] = f.value;
  return m;
}

// A host with nothing to warn about; tests break one thing at a time.
HostFacts quiet_host() {
  HostFacts h;
  h.kernel_release = "6.1.0-test";
  h.arch = "x86_64";
  h.numa_nodes = {{0, "0-3", 1LL << 33, {10, 20}}, {1, "4-7", 1LL << 33, {20, 10}}};
  h.config = {{"CONFIG_MEMORY_FAILURE", "y"}, {"CONFIG_KSM", "y"}, {"CONFIG_DEBUG_VM", "n"}};
  h.config_source = "/proc/config.gz";
  h.thp = {{"enabled", "madvise"}};
  h.ksm = probes::ksm_default_knobs();
  h.governor = "performance";
  h.turbo = "off";
  h.aslr = "0";
  h.perf_event_paranoid = 1;
  h.perf_events = {{"page-faults", "ok"}, {"task-clock", "ok"}};
  h.tracefs_available = true;
  h.tracefs_path = "/sys/kernel/tracing";
  h.debugfs_mounted = true;
  h.debugfs_path = "/sys/kernel/debug";
  h.split_huge_pages = "writable";
  h.lockdown = "none";
  h.emulation = "none";
  h.variant = "stock";
  h.slab_counters_readable = true;
  h.slab_counters_source = "/sys/kernel/slab";
  return h;
}

const Warning* find_warning(const std::vector<Warning>& ws, const std::string& needle) {
  for (const auto& w : ws)
    if (w.problem.find(needle) != std::string::npos) return &w;
  return nullptr;
}

std::string all_problems(const std::vector<Warning>& ws) {
  std::string s;
  for (const auto& w : ws) s += w.problem + "\n";
  return s;
}

}  // namespace

TEST(HostFactsProbe, ThisHostHasTheBasics) {
  HostFacts h = probe();
  EXPECT_FALSE(h.kernel_release.empty());
  EXPECT_FALSE(h.arch.empty());
  EXPECT_GE(h.cpus_online, 1);
  EXPECT_GT(h.mem_total_bytes, 0);
  EXPECT_FALSE(h.variant.empty());
  EXPECT_FALSE(h.emulation.empty());
  EXPECT_FALSE(h.lockdown.empty());
  EXPECT_EQ(h.perf_events.count("page-faults"), 1u);
  EXPECT_GE(numa_node_count(), 1);
  EXPECT_EQ(&facts(), &facts());
}

TEST(HostFactsProbe, ContextHasEveryRequiredKeyOnce) {
  const HostFacts& h = facts();
  auto facts_list = context(h);
  auto m = as_map(facts_list);
  EXPECT_EQ(m.size(), facts_list.size()) << "duplicate context keys";
  for (const char* key :
       {"kernel_release", "kernel_version", "arch", "hostname", "cpu_model", "cpus_online", "mem_total_bytes",
        "mem_available_bytes", "numa_nodes", "numa_distances", "config_source", "thp.mthp_sizes_kb", "governor",
        "turbo", "aslr", "perf_event_paranoid", "perf.page-faults", "perf.context-switches", "perf.cpu-migrations",
        "perf.task-clock", "tracefs", "debugfs", "lockdown", "emulation", "variant", "slab_counters"})
    EXPECT_EQ(m.count(key), 1u) << key;
  for (const auto& n : h.numa_nodes) {
    EXPECT_EQ(m.count("numa_node" + std::to_string(n.id) + "_cpus"), 1u);
    EXPECT_EQ(m.count("numa_node" + std::to_string(n.id) + "_memory_bytes"), 1u);
  }
  if (h.config_source.rfind("unavailable", 0) != 0) {
    EXPECT_EQ(m.count("config.CONFIG_KSM"), 1u);
    EXPECT_EQ(m.count("config.CONFIG_ANON_VMA_LAZY"), 1u);
  }
  if (!h.thp.empty()) {
    EXPECT_EQ(m.count("thp.enabled"), 1u);
  }
  if (!h.ksm.empty()) {
    EXPECT_EQ(m.count("ksm.run"), 1u);
  }
}

TEST(HostFactsProbe, ThpKnobsAreTheActiveChoice) {
  const HostFacts& h = facts();
  auto it = h.thp.find("enabled");
  if (it == h.thp.end() || it->second.rfind("unknown", 0) == 0) GTEST_SKIP() << "no THP here";
  EXPECT_TRUE(it->second == "always" || it->second == "madvise" || it->second == "never") << it->second;
  EXPECT_EQ(h.thp.count("khugepaged/full_scans"), 0u) << "statistics are not knobs";
}

TEST(HostWarnings, QuietHostHasNone) { EXPECT_EQ(all_problems(warnings(quiet_host())), ""); }

TEST(HostWarnings, SingleNumaNode) {
  HostFacts h = quiet_host();
  h.numa_nodes.resize(1);
  auto ws = warnings(h);
  const Warning* w = find_warning(ws, "single NUMA node");
  ASSERT_NE(w, nullptr) << all_problems(ws);
  EXPECT_NE(w->problem.find("migration workloads need >= 2 NUMA nodes"), std::string::npos);
  EXPECT_FALSE(w->fix.empty());
}

TEST(HostWarnings, GovernorTurboAndAslr) {
  HostFacts h = quiet_host();
  h.governor = "powersave";
  h.turbo = "on";
  h.aslr = "2";
  auto ws = warnings(h);
  const Warning* gov = find_warning(ws, "governor is 'powersave'");
  ASSERT_NE(gov, nullptr);
  EXPECT_NE(gov->fix.find("performance"), std::string::npos);
  EXPECT_NE(find_warning(ws, "turbo"), nullptr);
  const Warning* aslr = find_warning(ws, "ASLR");
  ASSERT_NE(aslr, nullptr);
  EXPECT_TRUE(aslr->mild);
  EXPECT_NE(aslr->fix.find("echo 0 > /proc/sys/kernel/randomize_va_space"), std::string::npos);

  h = quiet_host();
  h.governor = "unknown (no cpufreq)";
  EXPECT_EQ(find_warning(warnings(h), "governor"), nullptr);
}

TEST(HostWarnings, ThpNeverAndAlways) {
  HostFacts h = quiet_host();
  h.thp["enabled"] = "never";
  EXPECT_NE(find_warning(warnings(h), "THP split workloads cannot run"), nullptr);
  h.thp["enabled"] = "always";
  EXPECT_NE(find_warning(warnings(h), "enabled=always"), nullptr);
}

TEST(HostWarnings, KsmRunningAndNonDefaultKnobs) {
  HostFacts h = quiet_host();
  h.ksm["run"] = "1";
  h.ksm["pages_to_scan"] = "1000";
  auto ws = warnings(h);
  EXPECT_NE(find_warning(ws, "ksmd is running"), nullptr);
  const Warning* knobs = find_warning(ws, "pages_to_scan=1000 (default 100)");
  ASSERT_NE(knobs, nullptr) << all_problems(ws);
  EXPECT_EQ(knobs->fix, "echo 100 > /sys/kernel/mm/ksm/pages_to_scan");
}

TEST(HostWarnings, EmulationVirtualizationAndDebugKernels) {
  HostFacts h = quiet_host();
  h.emulation = "qemu-tcg";
  EXPECT_NE(find_warning(warnings(h), "timings are not performance figures"), nullptr);
  h.emulation = "kvm";
  EXPECT_NE(find_warning(warnings(h), "virtual machine (kvm)"), nullptr);
  h = quiet_host();
  h.config["CONFIG_KASAN"] = "y";
  h.config["CONFIG_DEBUG_VM"] = "y";
  EXPECT_NE(find_warning(warnings(h), "CONFIG_DEBUG_VM, CONFIG_KASAN"), nullptr);
}

TEST(HostWarnings, MissingFeaturesAndObservability) {
  HostFacts h = quiet_host();
  h.config["CONFIG_MEMORY_FAILURE"] = "n";
  h.lockdown = "integrity";
  h.slab_counters_readable = false;
  h.slab_counters_reason = "/sys/kernel/slab/anon_vma/objects: Permission denied (needs root); /proc/slabinfo: "
                           "Permission denied (needs root)";
  h.perf_event_paranoid = 3;
  h.perf_events["page-faults"] = "unavailable: EACCES";
  auto ws = warnings(h);
  EXPECT_NE(find_warning(ws, "no CONFIG_MEMORY_FAILURE"), nullptr);
  const Warning* lock = find_warning(ws, "lockdown");
  ASSERT_NE(lock, nullptr);
  EXPECT_NE(lock->problem.find("debugfs split_huge_pages unavailable; THP split uses the deferred-split path"),
            std::string::npos);
  const Warning* slab = find_warning(ws, "slab counters unreadable");
  ASSERT_NE(slab, nullptr);
  EXPECT_EQ(slab->fix, "run as root");
  const Warning* perf = find_warning(ws, "perf events unavailable");
  ASSERT_NE(perf, nullptr) << all_problems(ws);
  EXPECT_NE(perf->problem.find("page-faults: EACCES"), std::string::npos);
  EXPECT_NE(perf->fix.find("perf_event_paranoid"), std::string::npos);
}

TEST(HostWarnings, SplitHugePagesEpermCountsAsLockdown) {
  HostFacts h = quiet_host();
  h.lockdown = "unknown (securityfs not mounted)";
  h.split_huge_pages = "EPERM (kernel lockdown)";
  EXPECT_NE(find_warning(warnings(h), "deferred-split"), nullptr);
}

TEST(HostWarnings, UnmountedTracefsAndDebugfsAreMild) {
  HostFacts h = quiet_host();
  h.tracefs_available = false;
  h.debugfs_mounted = false;
  h.perf_events["migrate:mm_migrate_pages"] = "unavailable: tracefs not mounted";
  auto ws = warnings(h);
  ASSERT_EQ(ws.size(), 2u) << all_problems(ws);
  EXPECT_TRUE(ws[0].mild && ws[1].mild);
  EXPECT_EQ(find_warning(ws, "perf events"), nullptr) << "tracefs has its own warning";
}

TEST(HostWarnings, UnavailableConfig) {
  HostFacts h = quiet_host();
  h.config.clear();
  h.config_source = "unavailable: kernel config unavailable: /proc/config.gz: No such file or directory";
  auto ws = warnings(h);
  EXPECT_NE(find_warning(ws, "CONFIG facts and the variant label are unknown"), nullptr);
  EXPECT_EQ(find_warning(ws, "MEMORY_FAILURE"), nullptr) << "not claimed without a config";
}

TEST(HostContext, ConstructedHostFlattens) {
  HostFacts h = quiet_host();
  h.thp_mthp_sizes_kb = {"16", "64", "2048"};
  h.trace_subsystems = {{"migrate", "present"}};
  auto m = as_map(context(h));
  EXPECT_EQ(m.at("numa_nodes"), "2");
  EXPECT_EQ(m.at("numa_node1_cpus"), "4-7");
  EXPECT_EQ(m.at("numa_node1_memory_bytes"), std::to_string(1LL << 33));
  EXPECT_EQ(m.at("numa_distances"), "10 20;20 10");
  EXPECT_EQ(m.at("config.CONFIG_MEMORY_FAILURE"), "y");
  EXPECT_EQ(m.at("thp.enabled"), "madvise");
  EXPECT_EQ(m.at("thp.mthp_sizes_kb"), "16 64 2048");
  EXPECT_EQ(m.at("ksm.pages_to_scan"), "100");
  EXPECT_EQ(m.at("perf.page-faults"), "ok");
  EXPECT_EQ(m.at("trace.migrate"), "present");
  EXPECT_EQ(m.at("slab_counters"), "/sys/kernel/slab");
  h.slab_counters_readable = false;
  h.slab_counters_reason = "x: Permission denied";
  h.perf_event_paranoid = 99;
  m = as_map(context(h));
  EXPECT_EQ(m.at("slab_counters"), "unreadable: x: Permission denied");
  EXPECT_EQ(m.at("perf_event_paranoid"), "unknown");
}

TEST(HostProbes, CpuModel) {
  EXPECT_EQ(probes::cpu_model_from_cpuinfo(slurp(kData + "cpuinfo_arm64.txt")),
            "ARM Neoverse-N1 (implementer 0x41, part 0xd0c)");
  EXPECT_EQ(probes::cpu_model_from_cpuinfo(slurp(kData + "cpuinfo_x86_qemu_tcg.txt")), "QEMU Virtual CPU version 2.5+");
  EXPECT_EQ(probes::cpu_model_from_cpuinfo("Hardware\t: Qualcomm Technologies, Inc SM8250\n"),
            "Qualcomm Technologies, Inc SM8250");
  EXPECT_EQ(probes::cpu_model_from_cpuinfo("CPU implementer\t: 0x99\nCPU part\t: 0x001\n"),
            "arm64 core (implementer 0x99, part 0x001)");
  EXPECT_EQ(probes::cpu_model_from_cpuinfo("garbage"), "unknown (no model in /proc/cpuinfo)");
  EXPECT_EQ(probes::cpu_model_from_cpuinfo(""), "unknown (/proc/cpuinfo unreadable)");
}

TEST(HostProbes, NumaDistanceLine) {
  auto d = probes::parse_distance_line(slurp(kData + "numa_distance.txt"));
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_EQ(*d, (std::vector<int>{10, 20}));
  EXPECT_FALSE(probes::parse_distance_line(""));
  EXPECT_FALSE(probes::parse_distance_line("10 x"));
  EXPECT_FALSE(probes::parse_distance_line("10 -1"));
  EXPECT_FALSE(probes::parse_distance_line("10 99999"));
}

TEST(HostProbes, EmulationVerdicts) {
  using probes::EmulationClues;
  EmulationClues tcg;
  tcg.hypervisor_flag = true;
  tcg.cpuid_vendor = "TCGTCGTCGTCG";
  EXPECT_EQ(probes::classify_emulation(tcg).label, "qemu-tcg");

  EmulationClues qemu_model;
  qemu_model.hypervisor_flag = true;
  qemu_model.cpu_model = probes::cpu_model_from_cpuinfo(slurp(kData + "cpuinfo_x86_qemu_tcg.txt"));
  auto v = probes::classify_emulation(qemu_model);
  EXPECT_EQ(v.label, "qemu-tcg");
  EXPECT_NE(v.evidence.find("QEMU Virtual CPU"), std::string::npos);

  EmulationClues fc;
  fc.hypervisor_flag = true;
  fc.cpuid_vendor = "KVMKVMKVM";
  fc.acpi_oem_id = "FIRECK";
  v = probes::classify_emulation(fc);
  // Issue 14 item 10: the ACPI tables are readable by root only, so the
  // label must not rest on them: root and non-root on one VM agree (a
  // differing emulation makes compare refuse). The OEM ID stays evidence.
  EXPECT_EQ(v.label, "kvm");
  EXPECT_NE(v.evidence.find("no DMI"), std::string::npos);
  EXPECT_NE(v.evidence.find("ACPI OEM 'FIRECK' (Firecracker)"), std::string::npos) << v.evidence;
  EmulationClues fc_non_root = fc;
  fc_non_root.acpi_oem_id.clear();
  EXPECT_EQ(probes::classify_emulation(fc_non_root).label, v.label);

  EmulationClues kvm;
  kvm.hypervisor_flag = true;
  kvm.cpuid_vendor = "KVMKVMKVM";
  kvm.dmi_sys_vendor = "QEMU";
  EXPECT_EQ(probes::classify_emulation(kvm).label, "kvm");

  EmulationClues arm_qemu;
  arm_qemu.dmi_sys_vendor = "QEMU";
  arm_qemu.dmi_product_name = "QEMU Virtual Machine";
  EXPECT_EQ(probes::classify_emulation(arm_qemu).label, "qemu (accelerator unknown)");

  EmulationClues unknown;
  unknown.hypervisor_flag = true;
  EXPECT_EQ(probes::classify_emulation(unknown).label, "hypervisor (unknown)");
  EXPECT_EQ(probes::classify_emulation({}).label, "none");
}

TEST(HostProbes, AcceleratorFromTheQemuRunnersCommandLine) {
  EXPECT_EQ(probes::accelerator_from_cmdline("console=ttyAMA0 rmapbench.accel=tcg quiet\n"), "qemu-tcg");
  EXPECT_EQ(probes::accelerator_from_cmdline("rmapbench.accel=kvm"), "kvm");
  EXPECT_EQ(probes::accelerator_from_cmdline("rmapbench.accel=hvf"), "");
  EXPECT_EQ(probes::accelerator_from_cmdline("xrmapbench.accel=tcg"), "");
  EXPECT_EQ(probes::accelerator_from_cmdline(""), "");
}

TEST(HostWarnings, UnknownQemuAcceleratorIsNamedAsPossibleEmulation) {
  auto h = quiet_host();
  h.emulation = "qemu (accelerator unknown)";
  auto text = all_problems(warnings(h));
  EXPECT_NE(text.find("if it is TCG, timings are not performance figures"), std::string::npos) << text;
}

TEST(HostProbes, LockdownVerdicts) {
  kernels::ConfigMap none_cfg;
  auto v = probes::lockdown_verdict(std::string("none [integrity] confidentiality\n"), "/sys/kernel/security/lockdown",
                                    none_cfg, "");
  EXPECT_EQ(v.value, "integrity");
  EXPECT_EQ(v.source, "/sys/kernel/security/lockdown");
  EXPECT_EQ(probes::lockdown_verdict(std::string("[none] integrity confidentiality"), "f", none_cfg, "").value, "none");

  v = probes::lockdown_verdict(std::nullopt, "securityfs not mounted", {{"CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY", "y"}},
                               "");
  EXPECT_EQ(v.value, "integrity");
  EXPECT_NE(v.source.find("securityfs not mounted"), std::string::npos);
  EXPECT_EQ(probes::lockdown_verdict(std::nullopt, "x", {{"CONFIG_SECURITY_LOCKDOWN_LSM", "n"}}, "").value, "none");
  v = probes::lockdown_verdict(std::nullopt, "securityfs not mounted", none_cfg, "EPERM (kernel lockdown)");
  EXPECT_EQ(v.value.rfind("unknown (securityfs not mounted", 0), 0u);
  EXPECT_NE(v.value.find("EPERM"), std::string::npos);
  EXPECT_EQ(probes::lockdown_verdict(std::nullopt, "securityfs not mounted", none_cfg, "").value,
            "unknown (securityfs not mounted)");
}

TEST(SysfsText, KnobValueAndHelpers) {
  EXPECT_EQ(sysfs::knob_value("always [madvise] never\n"), "madvise");
  EXPECT_EQ(sysfs::knob_value("  100\n"), "100");
  EXPECT_EQ(sysfs::knob_value("broken [bracket"), "broken [bracket");
  EXPECT_EQ(sysfs::knob_value(""), "");
  EXPECT_EQ(sysfs::read_knob("/nonexistent/knob"), "unknown (/nonexistent/knob: No such file or directory)");
  EXPECT_EQ(sysfs::split_ws("  a b\tc \n").size(), 3u);
  EXPECT_EQ(sysfs::split_lines("a\nb\n").size(), 2u);
  EXPECT_FALSE(sysfs::parse_ll(""));
  EXPECT_FALSE(sysfs::parse_ll("1x"));
  EXPECT_EQ(*sysfs::parse_ll("-7"), -7);
}
