#include "kernels/config/kernel_config.hpp"

#include <sys/utsname.h>
#include <zlib.h>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::kernels {

namespace {

bool valid_option_name(std::string_view name) {
  if (!name.starts_with("CONFIG_") || name.size() == 7) return false;
  for (char c : name)
    if (!(c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  return true;
}

}  // namespace

ConfigMap parse_kernel_config(std::string_view text) {
  ConfigMap out;
  constexpr std::string_view kNotSet = " is not set";
  for (std::string_view line : sysfs::split_lines(text)) {
    line = sysfs::trim(line);
    if (line.starts_with("# CONFIG_") && line.ends_with(kNotSet)) {
      std::string_view name = line.substr(2, line.size() - 2 - kNotSet.size());
      if (valid_option_name(name)) out[std::string(name)] = "n";
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = line.substr(0, eq);
    if (valid_option_name(name)) out[std::string(name)] = std::string(line.substr(eq + 1));
  }
  return out;
}

Result<KernelConfig> read_kernel_config_file(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  if (!gz) return Status::from_errno(path, errno ? errno : ENOMEM);  // zlib leaves errno 0 when its own allocation failed
  std::string text;
  char buf[16384];
  for (;;) {
    int n = gzread(gz, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<size_t>(n));
      continue;
    }
    int errnum = Z_OK;
    const char* msg = gzerror(gz, &errnum);
    if (n < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
      Status st = errnum == Z_ERRNO ? Status::from_errno(path)
                                    : Status::error(path + ": " + (msg && *msg ? msg : "gzip read error"));
      gzclose(gz);
      return st;
    }
    break;
  }
  gzclose(gz);
  ConfigMap options = parse_kernel_config(text);
  if (options.empty()) return Status::error(path + ": no CONFIG_ lines (not a kernel config)");
  return KernelConfig{std::move(options), path};
}

Result<KernelConfig> read_kernel_config(const std::vector<std::string>& candidates) {
  std::string why;
  for (const auto& path : candidates) {
    auto cfg = read_kernel_config_file(path);
    if (cfg) return cfg;
    if (!why.empty()) why += "; ";
    why += cfg.status().message();
    if (path == "/proc/config.gz" && cfg.status().err() == ENOENT)
      why += " (CONFIG_IKCONFIG_PROC off, or try `modprobe configs`)";
  }
  if (candidates.empty()) why = "no candidate files";
  return Status::error("kernel config unavailable: " + why);
}

std::vector<std::string> default_config_paths() {
  std::vector<std::string> paths{"/proc/config.gz"};
  struct utsname u {};
  if (uname(&u) == 0) paths.push_back(std::string("/boot/config-") + u.release);
  return paths;
}

Result<KernelConfig> read_kernel_config() { return read_kernel_config(default_config_paths()); }

}  // namespace rmapbench::kernels
