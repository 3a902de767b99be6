// The pure parsers of host probing (kernels/host/host_probes.hpp and
// sysfs_text.hpp): /proc/cpuinfo -> CPU model, a NUMA node's distance line,
// a knob file ("always [madvise] never") and the emulation verdict made
// from clues taken out of the input. Properties: no crash or exception, a
// CPU model is never empty, a distance line parses to values 0..255.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (host::probes::cpu_model_from_cpuinfo(text).empty()) fuzz::broken("empty CPU model");

  const auto lines = sysfs::split_lines(text);
  for (std::string_view line : lines) {
    if (auto d = host::probes::parse_distance_line(line)) {
      for (int v : *d)
        if (v < 0 || v > 255) fuzz::broken("NUMA distance out of range");
    }
    (void)sysfs::knob_value(line);
    (void)sysfs::split_ws(line);
    (void)sysfs::parse_ll(sysfs::trim(line));
  }
  (void)sysfs::knob_value(text);

  // The emulation verdict from clues: the first lines stand in for the
  // CPUID vendor, DMI vendor and product, ACPI OEM ID and device tree.
  host::probes::EmulationClues c;
  auto field = [&](size_t i) { return i < lines.size() ? std::string(sysfs::trim(lines[i])) : std::string(); };
  c.hypervisor_flag = !text.empty() && (data[0] & 1);
  c.cpuid_vendor = field(0);
  c.dmi_sys_vendor = field(1);
  c.dmi_product_name = field(2);
  c.acpi_oem_id = field(3);
  c.dt_compatible = field(4);
  c.cpu_model = host::probes::cpu_model_from_cpuinfo(text);
  auto v = host::probes::classify_emulation(c);
  if (v.label.empty()) fuzz::broken("empty emulation label");
  return 0;
}
