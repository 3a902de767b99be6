#include "kernels/host/host_facts.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>

#include "kernels/config/kernel_config.hpp"
#include "kernels/config/variant.hpp"
#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::host {

namespace probes {

const std::vector<std::string>& config_options_that_matter() {
  static const std::vector<std::string> options{
      "CONFIG_ANON_VMA_LAZY", "CONFIG_KSM", "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS",
      "CONFIG_TRANSPARENT_HUGEPAGE_MADVISE", "CONFIG_MEMORY_FAILURE", "CONFIG_HWPOISON_INJECT", "CONFIG_NUMA",
      "CONFIG_MIGRATION", "CONFIG_PER_VMA_LOCK", "CONFIG_SLUB", "CONFIG_SLUB_DEBUG", "CONFIG_SLUB_DEBUG_ON",
      // Merged slab caches make a cache's object count include others'.
      "CONFIG_SLAB_MERGE_DEFAULT", "CONFIG_SECURITY_LOCKDOWN_LSM", "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY",
      "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY", "CONFIG_PAGE_IDLE_FLAG", "CONFIG_IDLE_PAGE_TRACKING",
      "CONFIG_USERFAULTFD", "CONFIG_LRU_GEN", "CONFIG_DEBUG_VM", "CONFIG_PROVE_LOCKING", "CONFIG_KASAN",
      "CONFIG_PREEMPT_NONE", "CONFIG_PREEMPT_VOLUNTARY", "CONFIG_PREEMPT", "CONFIG_PREEMPT_LAZY", "CONFIG_PREEMPT_RT",
      "CONFIG_PREEMPT_DYNAMIC", "CONFIG_HZ"};
  return options;
}

void probe_kernel(HostFacts& h) {
  struct utsname u {};
  if (uname(&u) == 0) {
    h.kernel_release = u.release;
    h.kernel_version = u.version;
    h.arch = u.machine;
    h.hostname = u.nodename;
  } else {
    std::string why = "unknown (uname: " + std::string(std::strerror(errno)) + ")";
    h.kernel_release = h.kernel_version = h.arch = h.hostname = why;
  }

  auto cfg = kernels::read_kernel_config();
  if (cfg) {
    h.config_source = cfg->source;
    // An option missing from the file is off (its dependencies are), so it is
    // recorded as "n" and keys stay the same from kernel to kernel.
    for (const auto& opt : config_options_that_matter()) {
      auto it = cfg->options.find(opt);
      h.config[opt] = it == cfg->options.end() ? "n" : it->second;
    }
  } else {
    h.config_source = "unavailable: " + cfg.status().message();
  }
  h.variant = kernels::detect_variant(h.config);
}

}  // namespace probes

HostFacts probe() {
  HostFacts h;
  probes::probe_kernel(h);
  probes::probe_topology(h);
  probes::probe_knobs(h);
  auto cpuinfo = sysfs::read_file("/proc/cpuinfo");
  probes::probe_emulation(h, cpuinfo ? std::string_view(*cpuinfo) : std::string_view());
  probes::probe_observability(h);
  return h;
}

const HostFacts& facts() {
  static const HostFacts cached = probe();
  return cached;
}

bool config_enabled(const std::string& option) {
  const auto& h = facts();
  auto it = h.config.find(option);
  if (it != h.config.end()) return it->second == "y" || it->second == "m";
  // Not one of the recorded options: ask the full config (read once).
  static const auto full = kernels::read_kernel_config();
  if (!full) return false;
  auto f = full->options.find(option);
  return f != full->options.end() && (f->second == "y" || f->second == "m");
}

int numa_node_count() { return std::max<int>(1, static_cast<int>(facts().numa_nodes.size())); }

bool running_as_root() { return geteuid() == 0; }

}  // namespace rmapbench::host
