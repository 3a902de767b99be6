// Which kernel variant is running: the label results are filed under and
// compared by ("stock" vs "anon_vma_lazy"). See kernels/README.md.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/config/kernel_config.hpp"

namespace rmapbench::kernels {

inline constexpr const char* kVariantStock = "stock";
inline constexpr const char* kVariantLazy = "anon_vma_lazy";
inline constexpr const char* kVariantLazyOff = "anon_vma_lazy-off";  // lazy kernel, runtime switch 0
inline constexpr const char* kVariantUnknown = "unknown";            // no config and no switch to go by

// Where the anon_vma lazy series' runtime switch may live. The series is not
// merged, so these are the paths it has used or is expected to use; the
// first that exists wins: /sys/kernel/mm/anon_vma/lazy, /proc/sys/vm/anon_vma_lazy.
const std::vector<std::string>& anon_vma_lazy_switch_paths();

struct VariantSwitch {
  std::string path;
  std::string value;  // the knob's value ("1", "0", or the bracketed choice)
};
std::optional<VariantSwitch> find_anon_vma_lazy_switch();

// Pure decision, for tests: `config` empty means the config was unavailable.
std::string variant_from(const ConfigMap& config, const std::optional<VariantSwitch>& lazy_switch);

// variant_from(config, find_anon_vma_lazy_switch()).
std::string detect_variant(const ConfigMap& config);

}  // namespace rmapbench::kernels
