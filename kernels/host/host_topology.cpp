#include <hwloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "kernels/procfs/kernel_counters.hpp"
#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::host::probes {

namespace {

// "key\t: value" lines of /proc/cpuinfo; the first occurrence wins.
std::string cpuinfo_field(std::string_view cpuinfo, std::string_view key) {
  for (auto line : sysfs::split_lines(cpuinfo)) {
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || sysfs::trim(line.substr(0, colon)) != key) continue;
    return std::string(sysfs::trim(line.substr(colon + 1)));
  }
  return {};
}

// arm64 reports MIDR fields, not names; name the common server/phone cores.
std::string arm_core_name(long implementer, long part) {
  struct Core { long impl, part; const char* name; };
  static const Core cores[] = {
      {0x41, 0xd03, "ARM Cortex-A53"},   {0x41, 0xd05, "ARM Cortex-A55"},   {0x41, 0xd07, "ARM Cortex-A57"},
      {0x41, 0xd08, "ARM Cortex-A72"},   {0x41, 0xd0b, "ARM Cortex-A76"},   {0x41, 0xd0c, "ARM Neoverse-N1"},
      {0x41, 0xd40, "ARM Neoverse-V1"},  {0x41, 0xd41, "ARM Cortex-A78"},   {0x41, 0xd44, "ARM Cortex-X1"},
      {0x41, 0xd46, "ARM Cortex-A510"},  {0x41, 0xd47, "ARM Cortex-A710"},  {0x41, 0xd48, "ARM Cortex-X2"},
      {0x41, 0xd49, "ARM Neoverse-N2"},  {0x41, 0xd4d, "ARM Cortex-A715"},  {0x41, 0xd4e, "ARM Cortex-X3"},
      {0x41, 0xd4f, "ARM Neoverse-V2"},  {0x41, 0xd80, "ARM Cortex-A520"},  {0x41, 0xd81, "ARM Cortex-A720"},
      {0x41, 0xd82, "ARM Cortex-X4"},    {0x61, 0x022, "Apple M1 Icestorm"}, {0x61, 0x023, "Apple M1 Firestorm"},
      {0xc0, 0xac3, "Ampere-1"},         {0x48, 0xd01, "HiSilicon TaiShan v110"}, {0x46, 0x001, "Fujitsu A64FX"},
  };
  for (const auto& c : cores)
    if (c.impl == implementer && c.part == part) return c.name;
  return {};
}

}  // namespace

std::string cpu_model_from_cpuinfo(std::string_view cpuinfo) {
  if (auto model = cpuinfo_field(cpuinfo, "model name"); !model.empty()) return model;
  auto impl = cpuinfo_field(cpuinfo, "CPU implementer");
  auto part = cpuinfo_field(cpuinfo, "CPU part");
  if (!impl.empty() && !part.empty()) {
    long i = std::strtol(impl.c_str(), nullptr, 0), p = std::strtol(part.c_str(), nullptr, 0);
    std::string name = arm_core_name(i, p);
    std::string ids = "implementer " + impl + ", part " + part;
    std::string model = name.empty() ? "arm64 core (" + ids + ")" : name + " (" + ids + ")";
    if (auto hw = cpuinfo_field(cpuinfo, "Hardware"); !hw.empty()) model += ", " + hw;
    return model;
  }
  for (const char* key : {"Hardware", "Processor", "cpu model", "cpu"})
    if (auto v = cpuinfo_field(cpuinfo, key); !v.empty()) return v;
  return cpuinfo.empty() ? "unknown (/proc/cpuinfo unreadable)" : "unknown (no model in /proc/cpuinfo)";
}

Result<std::vector<int>> parse_distance_line(std::string_view line) {
  std::vector<int> out;
  for (auto w : sysfs::split_ws(line)) {
    auto v = sysfs::parse_ll(w);
    if (!v || *v < 0 || *v > 255)
      return Status::error("NUMA distance line '" + std::string(sysfs::trim(line).substr(0, 80)) +
                           "': expected numbers 0..255");
    out.push_back(static_cast<int>(*v));
  }
  if (out.empty()) return Status::error("NUMA distance line: empty");
  return out;
}

std::string format_distances(const std::vector<NumaNode>& nodes) {
  std::string out;
  for (const auto& n : nodes) {
    if (!out.empty()) out += ";";
    std::string row;
    for (int d : n.distances) row += (row.empty() ? "" : " ") + std::to_string(d);
    out += row;
  }
  return out;
}

namespace {

void probe_numa(HostFacts& h) {
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) != 0) return;
  // Describe the machine, not just the cpuset this process was started in.
  hwloc_topology_set_flags(topo, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED);
  if (hwloc_topology_load(topo) != 0) {
    hwloc_topology_destroy(topo);
    return;
  }
  int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(i));
    NumaNode node;
    node.id = static_cast<int>(obj->os_index);
    char* list = nullptr;
    if (obj->cpuset && hwloc_bitmap_list_asprintf(&list, obj->cpuset) >= 0 && list) {
      node.cpus = list;
      std::free(list);
    }
    node.memory_bytes = static_cast<long long>(obj->attr->numanode.local_memory);
    auto line = sysfs::read_file("/sys/devices/system/node/node" + std::to_string(node.id) + "/distance");
    if (line) {
      if (auto d = parse_distance_line(*line)) node.distances = *d;
    }
    h.numa_nodes.push_back(std::move(node));
  }
  // Without sysfs node directories (CONFIG_NUMA off, or hidden) ask hwloc,
  // which may have them from ACPI SLIT or the device tree.
  bool missing = std::any_of(h.numa_nodes.begin(), h.numa_nodes.end(), [](auto& nd) { return nd.distances.empty(); });
  unsigned nr = 1;
  hwloc_distances_s* dist = nullptr;
  if (missing && hwloc_distances_get_by_type(topo, HWLOC_OBJ_NUMANODE, &nr, &dist, 0, 0) == 0 && nr >= 1 && dist) {
    for (auto& node : h.numa_nodes) {
      node.distances.clear();
      for (unsigned a = 0; a < dist->nbobjs; ++a) {
        if (static_cast<int>(dist->objs[a]->os_index) != node.id) continue;
        for (unsigned b = 0; b < dist->nbobjs; ++b)
          node.distances.push_back(static_cast<int>(dist->values[a * dist->nbobjs + b]));
      }
    }
    hwloc_distances_release(topo, dist);
  }
  hwloc_topology_destroy(topo);
}

}  // namespace

void probe_topology(HostFacts& h) {
  auto cpuinfo = sysfs::read_file("/proc/cpuinfo");
  h.cpu_model = cpu_model_from_cpuinfo(cpuinfo ? std::string_view(*cpuinfo) : std::string_view());
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus_online = online > 0 ? static_cast<int>(online) : 0;
  if (auto mem = mm::read_meminfo()) {
    if (auto it = mem->find("MemTotal"); it != mem->end()) h.mem_total_bytes = it->second;
    if (auto it = mem->find("MemAvailable"); it != mem->end()) h.mem_available_bytes = it->second;
  }
  probe_numa(h);
}

}  // namespace rmapbench::host::probes
