// The kernel's build configuration: which CONFIG_ options the running kernel
// was built with, from /proc/config.gz (CONFIG_IKCONFIG_PROC) or
// /boot/config-$(uname -r). Results record the options that matter, and
// workloads use them to say why they cannot run.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::kernels {

// CONFIG_X -> "y", "m", "n" (from "# CONFIG_X is not set"), a number, or a
// quoted string kept with its quotes ("\"gcc 12\"").
using ConfigMap = std::map<std::string, std::string>;

// Lines that are neither "CONFIG_X=value" nor "# CONFIG_X is not set" are
// ignored, so comments and blank lines cost nothing; garbage yields an empty map.
ConfigMap parse_kernel_config(std::string_view text);

struct KernelConfig {
  ConfigMap options;
  std::string source;  // the file it came from
};

// One file, gzip-compressed or plain (zlib reads plain files transparently).
// Fails when the file is unreadable, the gzip stream is corrupt or truncated,
// or it holds no CONFIG_ line at all.
Result<KernelConfig> read_kernel_config_file(const std::string& path);

// The first of `candidates` that reads; the error names every attempt.
Result<KernelConfig> read_kernel_config(const std::vector<std::string>& candidates);

// /proc/config.gz, then /boot/config-$(uname -r).
std::vector<std::string> default_config_paths();
Result<KernelConfig> read_kernel_config();

}  // namespace rmapbench::kernels
