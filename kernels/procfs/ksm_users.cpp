#include "kernels/procfs/ksm_users.hpp"

#include <dirent.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cstdlib>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::host {

KsmStat parse_ksm_stat(std::string_view text) {
  KsmStat s;
  for (std::string_view line : sysfs::split_lines(text)) {
    auto sep = line.find_first_of(" :");
    if (sep == std::string_view::npos) continue;
    std::string_view name = line.substr(0, sep), value = line.substr(sep + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == ':' || value.front() == '\t'))
      value.remove_prefix(1);
    auto number = [&](long long& out) {
      if (auto v = sysfs::parse_ll(value)) out = *v;
    };
    if (name == "ksm_rmap_items") number(s.rmap_items);
    else if (name == "ksm_merging_pages") number(s.merging_pages);
    else if (name == "ksm_zero_pages") number(s.zero_pages);
    else if (name == "ksm_merge_any") s.merge_any = value.starts_with("yes");
    else if (name == "ksm_mergeable") s.mergeable = value.starts_with("yes");
  }
  return s;
}

std::optional<KsmStat> read_ksm_stat(pid_t pid) {
  auto text = sysfs::read_file(fmt::format("/proc/{}/ksm_stat", pid), 4096);
  if (!text) return std::nullopt;
  KsmStat s = parse_ksm_stat(*text);
  // Kernels before ksm_stat had the merging pages in a file of their own.
  if (text->find("ksm_merging_pages") == std::string::npos)
    if (auto mp = sysfs::read_file(fmt::format("/proc/{}/ksm_merging_pages", pid), 64))
      if (auto v = sysfs::parse_ll(sysfs::trim(*mp))) s.merging_pages = *v;
  return s;
}

std::vector<KsmUser> other_ksm_users(const std::function<bool(pid_t)>& ours) {
  std::vector<KsmUser> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  const pid_t self = getpid();
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (!end || *end || pid <= 0 || pid == self) continue;
    if (ours && ours(static_cast<pid_t>(pid))) continue;
    auto st = read_ksm_stat(static_cast<pid_t>(pid));
    if (!st || !st->uses_ksm()) continue;
    KsmUser u;
    u.pid = static_cast<pid_t>(pid);
    u.stat = *st;
    if (auto comm = sysfs::read_file(fmt::format("/proc/{}/comm", pid), 64)) u.comm = std::string(sysfs::trim(*comm));
    out.push_back(std::move(u));
  }
  closedir(d);
  return out;
}

std::string describe_ksm_users(const std::vector<KsmUser>& users, size_t max) {
  std::string s;
  for (size_t i = 0; i < users.size() && i < max; ++i) {
    const auto& u = users[i];
    std::string what = fmt::format("{} pages merged, {} tracked", u.stat.merging_pages, u.stat.rmap_items);
    if (u.stat.merging_pages == 0 && u.stat.rmap_items == 0)
      what = u.stat.merge_any ? "PR_SET_MEMORY_MERGE, nothing merged yet" : "MADV_MERGEABLE, nothing merged yet";
    s += fmt::format("{}{} (pid {}: {})", s.empty() ? "" : ", ", u.comm.empty() ? "?" : u.comm, u.pid, what);
  }
  if (users.size() > max) s += fmt::format(" and {} more", users.size() - max);
  return s;
}

}  // namespace rmapbench::host
