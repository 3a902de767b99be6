#include "kernels/safety/resource_check.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/core.h>

namespace rmapbench::safety {

namespace {

std::optional<std::string> read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<long long> read_number(const std::string& path) {
  auto t = read_text(path);
  if (!t) return std::nullopt;
  try {
    size_t used = 0;
    long long v = std::stoll(*t, &used);
    return v;
  } catch (...) {
    return std::nullopt;
  }
}

// cgroup v2 directories from ours up to the root (deepest first).
std::vector<std::string> cgroup_chain() {
  std::vector<std::string> dirs;
  auto t = read_text("/proc/self/cgroup");
  if (!t) return dirs;
  std::istringstream in(*t);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    std::string rel = line.substr(3);
    std::filesystem::path p = std::filesystem::path("/sys/fs/cgroup") / std::filesystem::path(rel).relative_path();
    for (;;) {
      dirs.push_back(p.string());
      if (p == "/sys/fs/cgroup" || !p.has_parent_path() || p.parent_path() == p) break;
      p = p.parent_path();
      if (p.string().size() < std::string("/sys/fs/cgroup").size()) break;
    }
  }
  return dirs;
}

std::string cgroup_name(const std::string& dir) {
  std::string base = "/sys/fs/cgroup";
  std::string rel = dir.size() > base.size() ? dir.substr(base.size()) : "/";
  return rel;
}

bool has_exempting_capability() {
  auto t = read_text("/proc/self/status");
  if (!t) return false;
  std::istringstream in(*t);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    unsigned long long caps = std::strtoull(line.c_str() + 7, nullptr, 16);
    constexpr int kCapSysAdmin = 21, kCapSysResource = 24;
    return (caps >> kCapSysAdmin & 1) || (caps >> kCapSysResource & 1);
  }
  return false;
}

// Tasks (threads) whose real uid is `uid`: what RLIMIT_NPROC counts.
long long count_user_tasks(uid_t uid) {
  long long total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc", ec); !ec && it != std::filesystem::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    auto t = read_text(it->path().string() + "/status");
    if (!t) continue;
    std::istringstream in(*t);
    std::string line;
    long long real_uid = -1, threads = 0;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) == 0) real_uid = std::strtoll(line.c_str() + 4, nullptr, 10);
      else if (line.rfind("Threads:", 0) == 0) threads = std::strtoll(line.c_str() + 8, nullptr, 10);
    }
    if (real_uid == static_cast<long long>(uid)) total += threads;
  }
  return total;
}

// All tasks on the system: the denominator of /proc/loadavg's 4th field.
std::optional<long long> count_all_tasks() {
  auto t = read_text("/proc/loadavg");
  if (!t) return std::nullopt;
  size_t slash = t->find('/');
  if (slash == std::string::npos) return std::nullopt;
  return std::strtoll(t->c_str() + slash + 1, nullptr, 10);
}

std::string sweep_suggestion(const SizeHint& hint, long long allowed) {
  if (hint.param.empty()) return "";
  double per = hint.per_unit > 0 ? hint.per_unit : 1;
  long long units = static_cast<long long>(std::floor(static_cast<double>(std::max(0LL, allowed)) / per));
  return fmt::format(" or use --sweep {}={}", hint.param, units);
}

}  // namespace

std::string format_bytes(long long bytes) {
  double b = static_cast<double>(bytes);
  if (std::llabs(bytes) >= (1LL << 30)) return fmt::format("{:.2f} GiB", b / (1LL << 30));
  if (std::llabs(bytes) >= (1LL << 20)) return fmt::format("{:.1f} MiB", b / (1LL << 20));
  if (std::llabs(bytes) >= (1LL << 10)) return fmt::format("{:.1f} KiB", b / (1LL << 10));
  return fmt::format("{} bytes", bytes);
}

std::optional<long long> meminfo_bytes(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos || line.compare(0, colon, key) != 0 || colon != key.size()) continue;
    long long v = std::strtoll(line.c_str() + colon + 1, nullptr, 10);
    bool kb = line.find("kB") != std::string::npos;
    // A garbled value that would overflow in bytes is no memory figure.
    if (v < 0 || (kb && v > LLONG_MAX / 1024)) return std::nullopt;
    return kb ? v * 1024 : v;
  }
  return std::nullopt;
}

long current_map_count() {
  std::ifstream in("/proc/self/maps");
  std::string line;
  long n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

ProcessHeadroom process_headroom() {
  std::vector<ProcessHeadroom> limits;
  rlimit rl{};
  if (getrlimit(RLIMIT_NPROC, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && getuid() != 0 &&
      !has_exempting_capability()) {
    long long used = count_user_tasks(getuid());
    limits.push_back({static_cast<long long>(rl.rlim_cur) - used, fmt::format("RLIMIT_NPROC={}", rl.rlim_cur),
                      "raise it with ulimit -u"});
  }
  auto tasks = count_all_tasks();
  if (tasks) {
    if (auto tm = read_number("/proc/sys/kernel/threads-max"))
      limits.push_back({*tm - *tasks, fmt::format("kernel.threads-max={}", *tm),
                        "raise it with sysctl -w kernel.threads-max=N"});
    if (auto pm = read_number("/proc/sys/kernel/pid_max"))
      limits.push_back({*pm - *tasks, fmt::format("kernel.pid_max={}", *pm), "raise it with sysctl -w kernel.pid_max=N"});
  }
  for (const auto& dir : cgroup_chain()) {
    auto max = read_text(dir + "/pids.max");
    if (!max || max->rfind("max", 0) == 0) continue;
    auto cur = read_number(dir + "/pids.current");
    long long m = std::strtoll(max->c_str(), nullptr, 10);
    limits.push_back({m - cur.value_or(0), fmt::format("pids.max={} of cgroup {}", m, cgroup_name(dir)),
                      fmt::format("raise {}/pids.max (systemd: TasksMax=)", dir)});
  }
  ProcessHeadroom best;
  for (auto& l : limits)
    if (best.allowed_more < 0 || l.allowed_more < best.allowed_more) best = l;
  if (!limits.empty() && best.allowed_more < 0) best.allowed_more = 0;
  return best;
}

MemoryHeadroom memory_headroom() {
  MemoryHeadroom h;
  auto avail = meminfo_bytes("MemAvailable");
  auto total = meminfo_bytes("MemTotal");
  if (avail) {
    long long reserve = std::min<long long>(512LL << 20, total.value_or(0) / 20);
    h.allowed_bytes = std::max(0LL, *avail - reserve);
    h.limit = fmt::format("MemAvailable={} (keeping {} in reserve)", format_bytes(*avail), format_bytes(reserve));
  }
  for (const auto& dir : cgroup_chain()) {
    auto max = read_text(dir + "/memory.max");
    if (!max || max->rfind("max", 0) == 0) continue;
    long long m = std::strtoll(max->c_str(), nullptr, 10);
    long long cur = read_number(dir + "/memory.current").value_or(0);
    long long reserve = std::min<long long>(512LL << 20, m / 20);
    long long allowed = std::max(0LL, m - cur - reserve);
    if (h.allowed_bytes < 0 || allowed < h.allowed_bytes) {
      h.allowed_bytes = allowed;
      h.limit = fmt::format("memory.max={} of cgroup {} ({} in use, keeping {} in reserve)", format_bytes(m),
                            cgroup_name(dir), format_bytes(cur), format_bytes(reserve));
    }
  }
  return h;
}

std::optional<std::string> check_processes(long extra_processes, const SizeHint& hint) {
  if (extra_processes <= 0) return std::nullopt;
  ProcessHeadroom h = process_headroom();
  if (h.allowed_more < 0 || extra_processes <= h.allowed_more) return std::nullopt;
  return fmt::format("needs {} processes, {} allows {} more: {}{}", extra_processes, h.limit, h.allowed_more, h.fix,
                     sweep_suggestion(hint, h.allowed_more));
}

std::optional<std::string> check_memory(long long bytes, const SizeHint& hint) {
  if (bytes <= 0) return std::nullopt;
  MemoryHeadroom h = memory_headroom();
  if (h.allowed_bytes < 0 || bytes <= h.allowed_bytes) return std::nullopt;
  std::string fix = hint.param.empty() ? ": free memory or use a smaller size"
                                       : ": free memory" + sweep_suggestion(hint, h.allowed_bytes);
  return fmt::format("needs {} of memory, {} allows {}{}", format_bytes(bytes), h.limit, format_bytes(h.allowed_bytes),
                     fix);
}

std::optional<std::string> check_map_count(long vmas, const SizeHint& hint) {
  if (vmas <= 0) return std::nullopt;
  auto max = read_number("/proc/sys/vm/max_map_count");
  if (!max) return std::nullopt;
  long cur = current_map_count();
  long long allowed = std::max(0LL, *max - cur);
  if (vmas <= allowed) return std::nullopt;
  long long suggest = ((cur + vmas + 1024) + 1023) / 1024 * 1024;
  return fmt::format("needs {} mappings; vm.max_map_count={} allows {} more: raise it with "
                     "sysctl -w vm.max_map_count={}{}",
                     vmas, *max, allowed, suggest, sweep_suggestion(hint, allowed));
}

std::vector<std::string> check_resources(const ResourceNeeds& needs) {
  std::vector<std::string> out;
  if (auto m = check_processes(needs.processes)) out.push_back(*m);
  if (auto m = check_memory(needs.memory_bytes)) out.push_back(*m);
  if (auto m = check_map_count(needs.vmas)) out.push_back(*m);
  return out;
}

}  // namespace rmapbench::safety
