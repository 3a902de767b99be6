#include "kernels/config/variant.hpp"

#include <unistd.h>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::kernels {

const std::vector<std::string>& anon_vma_lazy_switch_paths() {
  static const std::vector<std::string> paths{"/sys/kernel/mm/anon_vma/lazy", "/proc/sys/vm/anon_vma_lazy"};
  return paths;
}

std::optional<VariantSwitch> find_anon_vma_lazy_switch() {
  for (const auto& path : anon_vma_lazy_switch_paths()) {
    if (access(path.c_str(), F_OK) != 0) continue;
    return VariantSwitch{path, sysfs::read_knob(path)};
  }
  return std::nullopt;
}

namespace {
bool switch_is_off(const std::string& v) { return v == "0" || v == "off" || v == "n" || v == "never" || v == "false"; }
}  // namespace

std::string variant_from(const ConfigMap& config, const std::optional<VariantSwitch>& lazy_switch) {
  auto it = config.find("CONFIG_ANON_VMA_LAZY");
  bool lazy_built = it != config.end() && (it->second == "y" || it->second == "m");
  // Only a lazy kernel creates the switch, so with no config to read its
  // presence alone identifies the variant.
  if (lazy_built || (config.empty() && lazy_switch)) {
    if (lazy_switch && switch_is_off(lazy_switch->value)) return kVariantLazyOff;
    return kVariantLazy;
  }
  return config.empty() ? kVariantUnknown : kVariantStock;
}

std::string detect_variant(const ConfigMap& config) { return variant_from(config, find_anon_vma_lazy_switch()); }

}  // namespace rmapbench::kernels
