// Implements kernels/procfs/kernel_counters.hpp (see there for why it lives here).
#include "kernels/procfs/kernel_counters.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <vector>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::mm {

namespace {

using sysfs::parse_ll;
using sysfs::split_lines;
using sysfs::split_ws;

Status line_error(const char* what, size_t lineno, std::string_view line, const char* expected) {
  std::string shown(line.substr(0, 80));
  return Status::error(std::string(what) + " line " + std::to_string(lineno) + ": '" + shown + "': expected " +
                       expected);
}

// Permission errors on these files almost always mean "not root"; say so.
std::string explain(const Status& st) {
  std::string m = st.message();
  if ((st.err() == EACCES || st.err() == EPERM) && geteuid() != 0) m += " (needs root)";
  return m;
}

std::string basename_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Caches in `dir` that are symlinks to `target` (SLUB's merged aliases), except `self`.
std::vector<std::string> aliases_of(const std::string& dir, const std::string& target, const std::string& self) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == self || name == "." || name == "..") continue;
    char buf[512];
    ssize_t n = readlink((dir + "/" + name).c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    if (basename_of(std::string(buf, static_cast<size_t>(n))) == target) names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

Result<long long> parse_sysfs_slab_objects(std::string_view text) {
  auto words = split_ws(text);
  if (words.empty()) return Status::error("slab objects: empty");
  auto n = parse_ll(words[0]);
  if (!n || *n < 0)
    return Status::error("slab objects: '" + std::string(sysfs::trim(text).substr(0, 80)) +
                         "': expected a count like \"468 N0=468\"");
  return *n;
}

Result<std::map<std::string, long long>> parse_slabinfo(std::string_view text) {
  std::map<std::string, long long> out;
  size_t lineno = 0;
  for (std::string_view line : split_lines(text)) {
    ++lineno;
    if (sysfs::trim(line).empty() || line.starts_with("#")) continue;
    if (line.starts_with("slabinfo - version:")) {
      auto version = sysfs::trim(line.substr(19));
      if (!version.starts_with("2."))
        return Status::error("slabinfo: unsupported version '" + std::string(version) + "' (expected 2.x)");
      continue;
    }
    auto w = split_ws(line);
    // name active_objs num_objs objsize objperslab pagesperslab : tunables l b s : slabdata a n s
    // The whole row is checked so a row cut short by a partial read is an
    // error rather than a plausible count.
    bool ok = w.size() >= 16 && w[6] == ":" && w[7] == "tunables" && w[11] == ":" && w[12] == "slabdata";
    for (size_t i = 1; ok && i < 16; ++i)
      if (i != 6 && i != 7 && i != 11 && i != 12) ok = parse_ll(w[i]).has_value();
    if (!ok) return line_error("slabinfo", lineno, line, "a slabinfo 2.1 row (name, 5 counts, tunables, slabdata)");
    out[std::string(w[0])] = *parse_ll(w[1]);
  }
  if (out.empty()) return Status::error("slabinfo: no slab caches listed");
  return out;
}

Result<std::map<std::string, long long>> parse_vmstat(std::string_view text) {
  std::map<std::string, long long> out;
  size_t lineno = 0;
  for (std::string_view line : split_lines(text)) {
    ++lineno;
    if (sysfs::trim(line).empty()) continue;
    auto w = split_ws(line);
    if (w.size() != 2 || !parse_ll(w[1])) return line_error("vmstat", lineno, line, "\"name value\"");
    out[std::string(w[0])] = *parse_ll(w[1]);
  }
  if (out.empty()) return Status::error("vmstat: empty");
  return out;
}

Result<std::map<std::string, long long>> parse_meminfo(std::string_view text) {
  std::map<std::string, long long> out;
  size_t lineno = 0;
  for (std::string_view line : split_lines(text)) {
    ++lineno;
    if (sysfs::trim(line).empty()) continue;
    size_t colon = line.find(':');
    auto w = colon == std::string_view::npos ? std::vector<std::string_view>{} : split_ws(line.substr(colon + 1));
    std::optional<long long> v = w.empty() ? std::nullopt : parse_ll(w[0]);
    bool unit_ok = w.size() == 1 || (w.size() == 2 && w[1] == "kB");
    // A value in kB must still fit in bytes (a garbled line must not overflow).
    bool fits = !v || w.size() != 2 || (*v <= LLONG_MAX / 1024 && *v >= LLONG_MIN / 1024);
    if (colon == 0 || !v || !unit_ok || !fits) return line_error("meminfo", lineno, line, "\"Name: value [kB]\"");
    out[std::string(line.substr(0, colon))] = w.size() == 2 ? *v * 1024 : *v;
  }
  if (out.empty()) return Status::error("meminfo: empty");
  return out;
}

Result<std::map<std::string, long long>> read_vmstat() {
  auto text = sysfs::read_file("/proc/vmstat");
  if (!text) return text.status();
  auto m = parse_vmstat(*text);
  if (!m) return m.status().context("/proc/vmstat");
  return m;
}

Result<std::map<std::string, long long>> read_meminfo() {
  auto text = sysfs::read_file("/proc/meminfo");
  if (!text) return text.status();
  auto m = parse_meminfo(*text);
  if (!m) return m.status().context("/proc/meminfo");
  return m;
}

Result<SlabReader> SlabReader::open() { return open_at("/sys/kernel/slab", "/proc/slabinfo"); }

Result<SlabReader> SlabReader::open_at(std::string sysfs_dir, std::string slabinfo_path) {
  // anon_vma is the cache the suite cares most about, and SLUB never merges
  // it (it has a constructor), so it is always its own directory.
  std::string probe = sysfs_dir + "/anon_vma/objects";
  auto text = sysfs::read_file(probe);
  Status sysfs_failure;
  if (text) {
    auto n = parse_sysfs_slab_objects(*text);
    if (n) return SlabReader(true, std::move(sysfs_dir), std::move(slabinfo_path));
    sysfs_failure = n.status().context(probe);
  } else {
    sysfs_failure = text.status();
  }
  auto info = sysfs::read_file(slabinfo_path);
  Status slabinfo_failure;
  if (info) {
    auto m = parse_slabinfo(*info);
    if (m) return SlabReader(false, std::move(sysfs_dir), std::move(slabinfo_path));
    slabinfo_failure = m.status().context(slabinfo_path);
  } else {
    slabinfo_failure = info.status();
  }
  return Status::error(explain(sysfs_failure) + "; " + explain(slabinfo_failure), sysfs_failure.err());
}

Result<long long> SlabReader::objects(const std::string& cache) const {
  if (cache.empty() || cache.find('/') != std::string::npos) return Status::error("bad slab cache name '" + cache + "'");
  if (sysfs_) {
    std::string path = sysfs_dir_ + "/" + cache + "/objects";
    auto text = sysfs::read_file(path);
    if (!text) {
      if (text.status().err() == ENOENT)
        return Status::error("no slab cache '" + cache + "' in " + sysfs_dir_, ENOENT);
      return Status::error(explain(text.status()), text.status().err());
    }
    auto n = parse_sysfs_slab_objects(*text);
    if (!n) return n.status().context(path);
    return n;
  }
  auto text = sysfs::read_file(slabinfo_path_);
  if (!text) return Status::error(explain(text.status()), text.status().err());
  auto m = parse_slabinfo(*text);
  if (!m) return m.status().context(slabinfo_path_);
  auto it = m->find(cache);
  if (it == m->end())
    return Status::error("slab cache '" + cache + "' not in " + slabinfo_path_ +
                             " (merged into another cache? boot with slab_nomerge)",
                         ENOENT);
  return it->second;
}

std::string SlabReader::source() const { return sysfs_ ? sysfs_dir_ : slabinfo_path_; }

std::string SlabReader::note(const std::string& cache) const {
  if (!sysfs_)
    return slabinfo_path_ + " lists a merged cache under one name, so '" + cache +
           "' may include caches SLUB merged with it; boot with slab_nomerge for per-cache counts";
  std::string dir = sysfs_dir_ + "/" + cache;
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) return {};
  std::string target = cache;
  if (S_ISLNK(st.st_mode)) {
    char buf[512];
    ssize_t n = readlink(dir.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return {};
    target = basename_of(std::string(buf, static_cast<size_t>(n)));
  }
  // The aliases file holds only a count; the names come from the symlinks.
  auto count = sysfs::read_file(sysfs_dir_ + "/" + target + "/aliases");
  // A plain number (-1: unknown) rather than an optional: GCC 12 warns
  // (wrongly) that an optional<long long> may be used uninitialized here.
  long long n_aliases = -1;
  if (count)
    if (auto parsed = parse_ll(sysfs::trim(*count))) n_aliases = *parsed;
  auto others = aliases_of(sysfs_dir_, target, cache);
  if (target != cache) others.erase(std::remove(others.begin(), others.end(), target), others.end());
  if (target == cache && others.empty() && n_aliases <= 0) return {};
  std::string what = target == cache ? "'" + cache + "' has caches merged into it"
                                     : "'" + cache + "' is merged into " + target;
  if (n_aliases >= 0) what += " (aliases: " + std::to_string(n_aliases) + ")";
  if (!others.empty()) what += (target == cache ? ": " : " with ") + join(others, ", ");
  return what + "; its count includes their objects; boot with slab_nomerge for a per-cache count";
}

}  // namespace rmapbench::mm
