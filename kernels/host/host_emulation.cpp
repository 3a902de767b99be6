#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace rmapbench::host::probes {

namespace {

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

// CPUID leaf 0x40000000 names the hypervisor; only meaningful when leaf 1
// says one is present (bare metal returns unrelated data there).
std::string cpuid_hypervisor_vendor() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 31))) return {};
  __cpuid(0x40000000, a, b, c, d);
  char sig[13] = {};
  std::memcpy(sig, &b, 4);
  std::memcpy(sig + 4, &c, 4);
  std::memcpy(sig + 8, &d, 4);
  std::string s(sig);
  s.erase(std::remove_if(s.begin(), s.end(), [](char ch) { return ch < 0x20 || ch > 0x7e; }), s.end());
  return std::string(sysfs::trim(s));
#else
  return {};
#endif
}

// The 6-byte OEM ID at offset 10 of an ACPI table header ("FIRECK", "BOCHS ").
std::string acpi_oem_id() {
  for (const char* path : {"/sys/firmware/acpi/tables/DSDT", "/sys/firmware/acpi/tables/FACP"}) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char hdr[16] = {};
    ssize_t n = read(fd, hdr, sizeof hdr);
    close(fd);
    if (n < 16) continue;
    std::string oem(hdr + 10, 6);
    oem.erase(std::remove(oem.begin(), oem.end(), '\0'), oem.end());
    return std::string(sysfs::trim(oem));
  }
  return {};
}

std::string read_trimmed(const std::string& path) {
  auto t = sysfs::read_file(path, 4096);
  if (!t) return {};
  std::string s = *t;
  std::replace(s.begin(), s.end(), '\0', ' ');  // device-tree string lists are NUL-separated
  return std::string(sysfs::trim(s));
}

}  // namespace

EmulationVerdict classify_emulation(const EmulationClues& c) {
  std::string evidence;
  auto add = [&](const std::string& s) { evidence += (evidence.empty() ? "" : "; ") + s; };
  if (c.hypervisor_flag) add("cpu flag 'hypervisor'");
  if (!c.cpuid_vendor.empty()) add("cpuid hypervisor vendor '" + c.cpuid_vendor + "'");
  if (!c.acpi_oem_id.empty())
    add("ACPI OEM '" + c.acpi_oem_id + "'" + (c.acpi_oem_id == "FIRECK" ? " (Firecracker)" : ""));
  add(c.dmi_sys_vendor.empty() && c.dmi_product_name.empty()
          ? std::string("no DMI")
          : "DMI '" + c.dmi_sys_vendor + "' / '" + c.dmi_product_name + "'");
  if (!c.dt_compatible.empty()) add("device tree '" + c.dt_compatible + "'");
  if (contains(c.cpu_model, "QEMU")) add("cpu model '" + c.cpu_model + "'");

  const std::string& v = c.cpuid_vendor;
  auto verdict = [&](std::string label) { return EmulationVerdict{std::move(label), evidence}; };
  if (v == "TCGTCGTCGTCG") return verdict("qemu-tcg");
  // The label rests only on what every user can read: the ACPI tables (whose
  // OEM ID says Firecracker) are readable by root only, and a label that
  // differed between a root and a non-root run on one VM made compare
  // refuse them as different hosts. The OEM ID is evidence only.
  if (v.starts_with("KVMKVMKVM")) return verdict("kvm");
  if (v == "Microsoft Hv") return verdict("hyperv");
  if (v == "VMwareVMware") return verdict("vmware");
  if (v == "XenVMMXenVMM") return verdict("xen");
  if (v.starts_with("bhyve")) return verdict("bhyve");
  if (v == "VBoxVBoxVBox") return verdict("virtualbox");
  if (v == "ACRNACRNACRN") return verdict("acrn");
  if (!v.empty()) return verdict("hypervisor (" + v + ")");
  // A QEMU CPU model with no accelerator signature is TCG (KVM would sign).
  if (contains(c.cpu_model, "QEMU")) return verdict("qemu-tcg");
  // arm64 has no CPUID: DMI or the device tree says QEMU, not which accelerator.
  if (contains(c.dmi_sys_vendor, "QEMU") || contains(c.dt_compatible, "linux,dummy-virt"))
    return verdict("qemu (accelerator unknown)");
  if (contains(c.dmi_product_name, "KVM") || contains(c.dmi_sys_vendor, "KVM")) return verdict("kvm");
  if (c.hypervisor_flag) return verdict("hypervisor (unknown)");
  return verdict("none");
}

EmulationClues gather_emulation_clues(std::string_view cpuinfo) {
  EmulationClues c;
  for (auto line : sysfs::split_lines(cpuinfo)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || sysfs::trim(line.substr(0, colon)) != "flags") continue;
    for (auto f : sysfs::split_ws(line.substr(colon + 1)))
      if (f == "hypervisor") c.hypervisor_flag = true;
    break;
  }
  c.cpuid_vendor = cpuid_hypervisor_vendor();
  c.dmi_sys_vendor = read_trimmed("/sys/class/dmi/id/sys_vendor");
  c.dmi_product_name = read_trimmed("/sys/class/dmi/id/product_name");
  c.acpi_oem_id = acpi_oem_id();
  c.cpu_model = cpu_model_from_cpuinfo(cpuinfo);
  c.dt_compatible = read_trimmed("/sys/firmware/devicetree/base/compatible");
  return c;
}

std::string accelerator_from_cmdline(std::string_view cmdline) {
  for (auto word : sysfs::split_ws(cmdline)) {
    constexpr std::string_view key = "rmapbench.accel=";
    if (word.substr(0, key.size()) != key) continue;
    std::string_view a = word.substr(key.size());
    if (a == "tcg") return "qemu-tcg";
    if (a == "kvm") return "kvm";
  }
  return {};
}

void probe_emulation(HostFacts& h, std::string_view cpuinfo) {
  auto v = classify_emulation(gather_emulation_clues(cpuinfo));
  // The QEMU runner (runners/qemu) knows the accelerator it started the
  // guest with and says so on the kernel command line: on arm64 nothing
  // inside the guest tells TCG from KVM.
  if (auto cmdline = sysfs::read_file("/proc/cmdline", 4096)) {
    if (std::string a = accelerator_from_cmdline(*cmdline); !a.empty()) {
      v.label = a;
      v.evidence += "; kernel command line 'rmapbench.accel' (set by rmapbench qemu)";
    }
  }
  h.emulation = v.label;
  h.emulation_evidence = v.evidence;
}

}  // namespace rmapbench::host::probes
