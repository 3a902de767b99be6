// The kernel config parser (kernels/config/kernel_config.hpp parse_kernel_config,
// fed by /proc/config.gz or /boot/config-*) and the lockdown verdict built on
// it. Properties: every key it returns is a CONFIG_ name, values have no
// surrounding white space or line breaks.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kernels/config/kernel_config.hpp"
#include "kernels/host/host_probes.hpp"
#include "tests/fuzz/fuzz_common.hpp"

using namespace rmapbench;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const kernels::ConfigMap config = kernels::parse_kernel_config(text);
  for (const auto& [name, value] : config) {
    if (name.rfind("CONFIG_", 0) != 0 || name.size() == 7) fuzz::broken("option name '" + name + "'");
    if (value.find('\n') != std::string::npos) fuzz::broken("value of " + name + " spans lines");
  }
  (void)host::probes::lockdown_verdict(std::nullopt, "fuzz", config, "");
  (void)host::probes::lockdown_verdict(std::nullopt, "fuzz", config, "EPERM");
  (void)host::probes::lockdown_verdict(std::string(text), "fuzz", config, "");
  return 0;
}
