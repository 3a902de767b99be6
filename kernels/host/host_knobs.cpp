#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/ksm_users.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::host::probes {

namespace {

constexpr const char* kThpDir = "/sys/kernel/mm/transparent_hugepage";
constexpr const char* kKsmDir = "/sys/kernel/mm/ksm";

// The owner-writable files of a sysfs directory are its knobs; read-only ones
// are statistics (full_scans, pages_sharing, ...) that change run to run and
// must not look like a configuration difference.
void read_knobs(const std::string& dir, const std::string& prefix, std::map<std::string, std::string>& out) {
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string path = dir + "/" + e->d_name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IWUSR)) continue;
    out[prefix + e->d_name] = sysfs::read_knob(path);
  }
  closedir(d);
}

void probe_thp(HostFacts& h) {
  if (access(kThpDir, F_OK) != 0) {
    h.thp["enabled"] = std::string("unknown (no ") + kThpDir + ": CONFIG_TRANSPARENT_HUGEPAGE off?)";
    return;
  }
  read_knobs(kThpDir, "", h.thp);
  read_knobs(std::string(kThpDir) + "/khugepaged", "khugepaged/", h.thp);
  h.thp["hpage_pmd_size"] = sysfs::read_knob(std::string(kThpDir) + "/hpage_pmd_size");

  std::vector<long long> sizes;
  if (DIR* d = opendir(kThpDir)) {
    while (dirent* e = readdir(d)) {
      std::string_view name = e->d_name;
      if (!name.starts_with("hugepages-") || !name.ends_with("kB")) continue;
      if (auto kb = sysfs::parse_ll(name.substr(10, name.size() - 12))) sizes.push_back(*kb);
    }
    closedir(d);
  }
  std::sort(sizes.begin(), sizes.end());
  std::string list;
  for (long long kb : sizes) {
    std::string sub = "hugepages-" + std::to_string(kb) + "kB";
    h.thp_mthp_sizes_kb.push_back(std::to_string(kb));
    list += (list.empty() ? "" : " ") + std::to_string(kb);
    // Sizes only shmem supports (order 1) have no anon `enabled` file.
    std::string enabled = std::string(kThpDir) + "/" + sub + "/enabled";
    if (access(enabled.c_str(), F_OK) == 0) h.thp[sub + "/enabled"] = sysfs::read_knob(enabled);
  }
}

void probe_ksm(HostFacts& h) {
  if (access(kKsmDir, F_OK) != 0) {
    h.ksm["run"] = std::string("unknown (no ") + kKsmDir + ": CONFIG_KSM off?)";
    return;
  }
  read_knobs(kKsmDir, "", h.ksm);
  auto users = other_ksm_users();
  h.ksm_users = users.empty() ? "none" : describe_ksm_users(users, 8);
}

std::string probe_governor() {
  std::set<std::string> governors;
  if (DIR* d = opendir("/sys/devices/system/cpu")) {
    while (dirent* e = readdir(d)) {
      std::string_view name = e->d_name;
      if (!name.starts_with("cpu") || !sysfs::parse_ll(name.substr(3))) continue;
      std::string path = "/sys/devices/system/cpu/" + std::string(name) + "/cpufreq/scaling_governor";
      if (access(path.c_str(), F_OK) == 0) governors.insert(sysfs::read_knob(path));
    }
    closedir(d);
  }
  if (governors.empty()) return "unknown (no cpufreq)";
  if (governors.size() == 1) return *governors.begin();
  std::string mixed;
  for (const auto& g : governors) mixed += (mixed.empty() ? "" : ", ") + g;
  return "mixed (" + mixed + ")";
}

std::string probe_turbo() {
  // intel_pstate says "no_turbo"; acpi-cpufreq and amd-pstate say "boost".
  if (access("/sys/devices/system/cpu/intel_pstate/no_turbo", F_OK) == 0) {
    auto v = sysfs::read_knob("/sys/devices/system/cpu/intel_pstate/no_turbo");
    return v == "1" ? "off" : v == "0" ? "on" : v;
  }
  for (const char* path : {"/sys/devices/system/cpu/cpufreq/boost", "/sys/devices/system/cpu/cpu0/cpufreq/boost"}) {
    if (access(path, F_OK) != 0) continue;
    auto v = sysfs::read_knob(path);
    return v == "1" ? "on" : v == "0" ? "off" : v;
  }
  return "unknown (no boost control visible)";
}

}  // namespace

const std::map<std::string, std::string>& ksm_default_knobs() {
  // mm/ksm.c initial values.
  static const std::map<std::string, std::string> defaults{
      {"run", "0"},
      {"pages_to_scan", "100"},
      {"sleep_millisecs", "20"},
      {"max_page_sharing", "256"},
      {"merge_across_nodes", "1"},
      {"use_zero_pages", "0"},
      {"stable_node_chains_prune_millisecs", "2000"},
      {"smart_scan", "1"},
      {"advisor_mode", "none"},
      {"advisor_max_cpu", "70"},
      {"advisor_min_pages_to_scan", "500"},
      {"advisor_max_pages_to_scan", "30000"},
      {"advisor_target_scan_time", "200"},
  };
  return defaults;
}

void probe_knobs(HostFacts& h) {
  probe_thp(h);
  probe_ksm(h);
  h.governor = probe_governor();
  h.turbo = probe_turbo();
  h.aslr = sysfs::read_knob("/proc/sys/kernel/randomize_va_space");
  auto paranoid = sysfs::parse_ll(sysfs::read_knob("/proc/sys/kernel/perf_event_paranoid"));
  h.perf_event_paranoid = paranoid ? static_cast<int>(*paranoid) : 99;
}

}  // namespace rmapbench::host::probes
