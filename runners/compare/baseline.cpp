#include "runners/compare/baseline.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "runners/results/atomic_file.hpp"  // bounded_name

namespace rmapbench::baseline {

namespace fs = std::filesystem;

namespace {

std::string lookup(const std::map<std::string, std::string>& c, std::initializer_list<const char*> keys) {
  for (const char* k : keys)
    if (auto it = c.find(k); it != c.end() && !it->second.empty() && !it->second.starts_with("unknown")) return it->second;
  return "";
}

// A finite number that starts `s` (results files carry what any tool wrote:
// "nan", "inf" and 1e400 are not host facts).
bool parse_double(const std::string& s, double& out) {
  try {
    size_t used = 0;
    out = std::stod(s, &used);
    return used > 0 && std::isfinite(out);
  } catch (...) {
    return false;
  }
}

}  // namespace

std::string HostFingerprint::canonical() const {
  return fmt::format("cpu_model={}\ncpus={}\nnuma={}\nmem_gib={}\n", cpu_model, cpus, numa, mem_gib);
}

std::string HostFingerprint::id() const {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : canonical()) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return fmt::format("{:016x}", h).substr(0, 12);
}

std::string HostFingerprint::describe() const {
  std::string nodes = "NUMA unknown";
  if (auto pos = numa.find("numa_nodes="); pos != std::string::npos) {
    std::string n = numa.substr(pos + 11, numa.find(';', pos) - pos - 11);
    nodes = n + (n == "1" ? " NUMA node" : " NUMA nodes");
  }
  return fmt::format("{}, {} CPUs, {}, {} GiB", cpu_model.empty() ? "unknown CPU" : cpu_model, cpus, nodes, mem_gib);
}

Result<HostFingerprint> fingerprint(const std::map<std::string, std::string>& c) {
  HostFingerprint f;
  f.cpu_model = lookup(c, {"cpu_model"});
  if (f.cpu_model.empty()) return Status::error("no cpu_model in the results context (not an rmapbench result?)");
  double v = 0;
  // A count or a size outside what any host has stays unknown (0): converting
  // it would overflow the narrower type.
  constexpr double kMaxCpus = 1 << 20, kMaxGiB = 1 << 30;
  if (parse_double(lookup(c, {"cpus_online", "num_cpus"}), v) && v >= 0 && v <= kMaxCpus) f.cpus = static_cast<int>(v);
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  double gib = -1;
  if (parse_double(lookup(c, {"mem_total_bytes"}), v)) {
    gib = v / kGiB;
  } else if (parse_double(lookup(c, {"mem_total_kb"}), v)) {
    gib = v * 1024 / kGiB;
  }
  if (gib >= 0 && gib <= kMaxGiB) f.mem_gib = std::lround(gib);
  // The NUMA layout: every numa_* fact except memory sizes, which move with
  // the kernel's own reservations.
  for (const auto& [k, val] : c) {
    if (!k.starts_with("numa")) continue;
    if (k.find("mem") != std::string::npos || k.find("free") != std::string::npos) continue;
    f.numa += k + "=" + val + ";";
  }
  return f;
}

std::string sanitize(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '+' || c == '-') ? c : '_';
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

std::string Location::relative_path() const {
  // Each component bounded: a long release or variant must not make a name
  // the file system refuses (ENAMETOOLONG).
  return fmt::format("{}/{}/{}.json", results::bounded_name(sanitize(arch), 64), results::bounded_name(sanitize(host_id), 64),
                     results::bounded_name(sanitize(kernel_release) + "-" + sanitize(variant), 200));
}

Result<Location> locate(const results::ResultsFile& r) {
  if (!r.has_rmapbench_context)
    return Status::error(r.path + ": not an rmapbench result (no rmapbench.schema_version in context); only "
                                  "rmapbench results can be baselines");
  Location l;
  for (auto [key, field] : {std::pair{"arch", &l.arch}, {"kernel_release", &l.kernel_release}, {"variant", &l.variant}}) {
    *field = r.get(key);
    if (field->empty()) return Status::error(r.path + ": context has no '" + key + "'; cannot name the baseline");
  }
  auto fp = fingerprint(r.context);
  if (!fp) return fp.status().context(r.path);
  l.host_id = fp->id();
  return l;
}

std::vector<Entry> list(const std::string& dir) {
  std::vector<Entry> out;
  std::error_code ec;
  for (const auto& arch : fs::directory_iterator(dir, ec)) {
    if (!arch.is_directory()) continue;
    for (const auto& host : fs::directory_iterator(arch.path(), ec)) {
      if (!host.is_directory()) continue;
      for (const auto& file : fs::directory_iterator(host.path(), ec)) {
        std::string name = file.path().filename().string();
        if (!file.is_regular_file() || !name.ends_with(".json") || name.starts_with(".")) continue;
        Entry e;
        e.path = file.path().string();
        e.arch = arch.path().filename().string();
        e.host_id = host.path().filename().string();
        e.name = name.substr(0, name.size() - 5);
        out.push_back(std::move(e));
      }
    }
  }
  std::sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  return out;
}

std::string default_dir() {
  if (const char* env = std::getenv("RMAPBENCH_BASELINE_DIR"); env && *env) return env;
  return "baselines";
}

}  // namespace rmapbench::baseline
