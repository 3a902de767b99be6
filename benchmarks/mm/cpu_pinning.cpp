#include "benchmarks/mm/cpu_pinning.hpp"

#include <fmt/core.h>
#include <hwloc.h>

namespace rmapbench::mm {

namespace {

struct Topology {
  hwloc_topology_t topo = nullptr;
  Topology() {
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0) {
      if (topo) hwloc_topology_destroy(topo);
      topo = nullptr;
    }
  }
  ~Topology() {
    if (topo) hwloc_topology_destroy(topo);
  }
};

Topology& topology() {
  static Topology t;
  return t;
}

}  // namespace

int usable_cpus() {
  hwloc_topology_t topo = topology().topo;
  if (!topo) return 1;
  int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  return n > 0 ? n : 1;
}

Status pin_to_cpu(int index) {
  hwloc_topology_t topo = topology().topo;
  if (!topo) return Status::error("hwloc could not load the CPU topology");
  const int n = usable_cpus();
  hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, static_cast<unsigned>(index % n));
  if (!pu) return Status::error(fmt::format("no processing unit #{}", index % n));
  if (hwloc_set_cpubind(topo, pu->cpuset, HWLOC_CPUBIND_PROCESS) != 0)
    return Status::from_errno(fmt::format("binding to PU #{} (os index {})", index % n, pu->os_index));
  return Status::ok();
}

}  // namespace rmapbench::mm
