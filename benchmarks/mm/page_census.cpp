#include "benchmarks/mm/page_census.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <cstring>
#include <unordered_map>

#include "benchmarks/mm/anon_layout.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::mm {

std::string proc_file(pid_t pid, const char* file) {
  return pid == 0 ? fmt::format("/proc/self/{}", file) : fmt::format("/proc/{}/{}", pid, file);
}

PagemapEntry decode_pagemap(uint64_t raw) {
  PagemapEntry e;
  e.present = (raw >> 63) & 1;
  e.swapped = (raw >> 62) & 1;
  if (e.present && !e.swapped) e.pfn = raw & ((1ull << 55) - 1);
  return e;
}

void census_add(FolioCensus& c, std::optional<uint64_t> kpageflags) {
  ++c.pages;
  if (!kpageflags) return;
  ++c.present;
  if (*kpageflags & kKpfThp) {
    ++c.thp_pages;
    if (*kpageflags & kKpfCompoundHead) ++c.thp_heads;
  }
  if (*kpageflags & kKpfKsm) ++c.ksm_pages;
}

Status check_never_merged(const std::vector<FolioCensus>& census, const std::function<std::string(size_t)>& who,
                          const std::string& when) {
  for (size_t k = 0; k < census.size(); ++k)
    if (census[k].ksm_pages != 0)
      return Status::error(fmt::format("{}: {} maps {} pages that read as KSM pages (KPF_KSM) though they were never "
                                       "offered to KSM: the kernel confuses anonymous and KSM folios",
                                       when, who(k), census[k].ksm_pages));
  return Status::ok();
}

std::vector<std::pair<uintptr_t, size_t>> ksm_candidate_ranges(const std::string& smaps, long* too_large_with_ksm) {
  struct Mapping {
    uintptr_t start = 0;
    size_t bytes = 0;
    bool candidate = false;  // private, readable by pagemap
    long rss_kb = -1, ksm_kb = -1;
  };
  std::vector<Mapping> mappings;
  std::istringstream lines(smaps);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t colon = line.find(':'), space = line.find(' ');
    const bool header = space != std::string::npos && line.find('-') < space && (colon == std::string::npos || colon > space);
    if (!header) {
      if (mappings.empty() || colon == std::string::npos) continue;
      const std::string key = line.substr(0, colon);
      if (key != "Rss" && key != "KSM") continue;
      long kb = 0;
      try {
        kb = std::stol(line.substr(colon + 1));
      } catch (const std::exception&) {
        continue;
      }
      (key == "Rss" ? mappings.back().rss_kb : mappings.back().ksm_kb) = kb;
      continue;
    }
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    if (!(in >> range >> perms >> offset >> dev >> inode)) continue;
    std::getline(in >> std::ws, path);
    Mapping m;
    const size_t dash = range.find('-');
    try {
      m.start = std::stoull(range.substr(0, dash), nullptr, 16);
      const uintptr_t end = std::stoull(range.substr(dash + 1), nullptr, 16);
      if (end <= m.start) continue;
      m.bytes = end - m.start;
    } catch (const std::exception&) {
      continue;
    }
    m.candidate = path != "[vsyscall]" && perms.size() >= 4 && perms[3] == 'p';
    mappings.push_back(m);
  }
  std::vector<std::pair<uintptr_t, size_t>> out;
  for (const auto& m : mappings) {
    if (!m.candidate || m.rss_kb == 0 || m.ksm_kb == 0) continue;
    if (m.bytes > kKsmScanLimit) {
      if (too_large_with_ksm && m.ksm_kb > 0) ++*too_large_with_ksm;
      continue;
    }
    out.emplace_back(m.start, m.bytes);
  }
  return out;
}

Result<std::vector<KsmPageHolder>> ksm_page_holders() {
  if (auto why = census_unavailable()) return Status::skip(*why);
  std::vector<KsmPageHolder> holders;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    auto smaps = sysfs::read_file(fmt::format("/proc/{}/smaps", pid), 64 << 20);
    if (!smaps || smaps->empty()) continue;  // gone, or a kernel thread
    auto c = census({pid}, ksm_candidate_ranges(*smaps));
    if (!c || c->front().ksm_pages == 0) continue;
    auto comm = sysfs::read_file(fmt::format("/proc/{}/comm", pid), 64);
    std::string who = comm ? *comm : "?";
    while (!who.empty() && who.back() == '\n') who.pop_back();
    holders.push_back({pid, who, c->front().ksm_pages});
  }
  return holders;
}

Result<Unshared> unshare_own_ksm_pages() {
  if (census_unavailable()) return Unshared{};
  auto smaps = sysfs::read_file("/proc/self/smaps", 64 << 20);
  if (!smaps) return smaps.status();
  Unshared out;
  const auto ranges = ksm_candidate_ranges(*smaps, &out.too_large);
  auto entries = pagemap_entries(0, ranges);
  if (!entries) return entries.status();
  const int mem = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
  if (mem < 0) return Status::from_errno("/proc/self/mem");
  const size_t ps = page_size();
  long unshared = 0;
  size_t k = 0;
  Status failed = Status::ok();
  for (const auto& [start, bytes] : ranges) {
    for (uintptr_t a = start; a < start + bytes && !failed.failed(); a += ps, ++k) {
      const PagemapEntry& e = (*entries)[k];
      if (!e.present || e.pfn == 0) continue;
      auto flags = kpageflags(e.pfn);
      if (!flags || !(*flags & kKpfKsm)) continue;
      char byte = 0;
      const off_t at = static_cast<off_t>(a);
      if (pread(mem, &byte, 1, at) != 1 || pwrite(mem, &byte, 1, at) != 1)
        failed = Status::from_errno(fmt::format("/proc/self/mem at {:#x}", a));
      else
        ++unshared;
    }
  }
  close(mem);
  if (failed.failed()) return failed;
  out.pages = unshared;
  return out;
}

std::optional<std::string> census_unavailable() {
  if (geteuid() != 0) return "needs root: /proc/<pid>/pagemap hides page frame numbers and /proc/kpageflags is root-only";
  int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fmt::format("/proc/kpageflags: {}", std::strerror(errno));
  close(fd);
  return std::nullopt;
}

Result<std::vector<PagemapEntry>> pagemap_entries(pid_t pid, const std::vector<std::pair<uintptr_t, size_t>>& ranges) {
  const size_t ps = page_size();
  const std::string path = proc_file(pid, "pagemap");
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(path);
  std::vector<PagemapEntry> entries;
  for (const auto& [start, bytes] : ranges) {
    const size_t n = bytes / ps;
    std::vector<uint64_t> raw(n);
    const off_t off = static_cast<off_t>(start / ps * sizeof(uint64_t));
    ssize_t got = pread(fd, raw.data(), n * sizeof(uint64_t), off);
    if (got != static_cast<ssize_t>(n * sizeof(uint64_t))) {
      int err = errno;
      close(fd);
      return got < 0 ? Status::from_errno(path, err) : Status::error(path + ": short read");
    }
    for (uint64_t r : raw) {
      PagemapEntry e = decode_pagemap(r);
      if (e.present && !e.swapped && e.pfn == 0) {
        close(fd);
        return Status::error(path + " hides page frame numbers (needs CAP_SYS_ADMIN)");
      }
      entries.push_back(e);
    }
  }
  close(fd);
  return entries;
}

Result<uint64_t> kpageflags(uint64_t pfn) {
  int fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno("/proc/kpageflags");
  uint64_t flags = 0;
  const ssize_t n = pread(fd, &flags, sizeof flags, static_cast<off_t>(pfn * sizeof flags));
  const int err = errno;
  close(fd);
  if (n != sizeof flags)
    return n < 0 ? Status::from_errno(fmt::format("/proc/kpageflags of PFN {:#x}", pfn), err)
                 : Status::error("/proc/kpageflags: short read");
  return flags;
}

namespace {

// Every pagemap entry of `ranges` in each process of `pids`.
Result<std::vector<std::vector<PagemapEntry>>> read_pagemaps(const std::vector<pid_t>& pids,
                                                           const std::vector<std::pair<uintptr_t, size_t>>& ranges) {
  std::vector<std::vector<PagemapEntry>> entries;
  for (pid_t pid : pids) {
    auto one = pagemap_entries(pid, ranges);
    if (!one) return one.status();
    entries.push_back(std::move(*one));
  }
  return entries;
}

bool same_frames(const std::vector<std::vector<PagemapEntry>>& a, const std::vector<std::vector<PagemapEntry>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k].size() != b[k].size()) return false;
    for (size_t i = 0; i < a[k].size(); ++i)
      if (a[k][i].pfn != b[k][i].pfn || a[k][i].present != b[k][i].present) return false;
  }
  return true;
}

Result<std::vector<FolioCensus>> census_of(const std::vector<std::vector<PagemapEntry>>& entries) {
  std::vector<uint64_t> pfns;
  for (const auto& per_process : entries)
    for (const PagemapEntry& e : per_process)
      if (e.pfn) pfns.push_back(e.pfn);
  std::sort(pfns.begin(), pfns.end());
  pfns.erase(std::unique(pfns.begin(), pfns.end()), pfns.end());
  std::unordered_map<uint64_t, uint64_t> flags;
  flags.reserve(pfns.size() * 2);
  int kfd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
  if (kfd < 0) return Status::from_errno("/proc/kpageflags");
  for (size_t i = 0; i < pfns.size();) {
    size_t j = i + 1;  // a run of consecutive PFNs: one read
    while (j < pfns.size() && pfns[j] == pfns[j - 1] + 1 && j - i < 4096) ++j;
    std::vector<uint64_t> buf(j - i);
    ssize_t got = pread(kfd, buf.data(), buf.size() * sizeof(uint64_t), static_cast<off_t>(pfns[i] * sizeof(uint64_t)));
    if (got != static_cast<ssize_t>(buf.size() * sizeof(uint64_t))) {
      int err = errno;
      close(kfd);
      return got < 0 ? Status::from_errno("/proc/kpageflags", err) : Status::error("/proc/kpageflags: short read");
    }
    for (size_t k = i; k < j; ++k) flags[pfns[k]] = buf[k - i];
    i = j;
  }
  close(kfd);
  std::vector<FolioCensus> out(entries.size());
  for (size_t k = 0; k < entries.size(); ++k)
    for (const PagemapEntry& e : entries[k]) {
      std::optional<uint64_t> f;
      if (e.pfn) f = flags[e.pfn];
      census_add(out[k], f);
    }
  return out;
}

}  // namespace

Result<std::vector<FolioCensus>> census(const std::vector<pid_t>& pids,
                                        const std::vector<std::pair<uintptr_t, size_t>>& ranges) {
  // The flags are read after the page frames: a page that ksmd, migration or
  // a split replaced in between would be counted with the flags of a frame
  // that no longer backs it (and that frame may be free or reused by then).
  // So the frames are read again afterwards, and the census retried until
  // they held.
  constexpr int kAttempts = 8;
  auto entries = read_pagemaps(pids, ranges);
  if (!entries) return entries.status();
  for (int attempt = 1;; ++attempt) {
    auto out = census_of(*entries);
    if (!out) return out;
    auto again = read_pagemaps(pids, ranges);
    if (!again) return again.status();
    if (same_frames(*entries, *again) || attempt == kAttempts) return out;
    entries = std::move(again);
  }
}

Result<long> distinct_ksm_frames(const std::vector<pid_t>& pids, const std::vector<std::pair<uintptr_t, size_t>>& ranges) {
  if (pids.size() != ranges.size()) return Status::error("distinct_ksm_frames: one range per process");
  auto read_all = [&]() -> Result<std::vector<std::vector<PagemapEntry>>> {
    std::vector<std::vector<PagemapEntry>> all;
    for (size_t i = 0; i < pids.size(); ++i) {
      auto e = read_pagemaps({pids[i]}, {ranges[i]});
      if (!e) return e.status();
      all.push_back(std::move(e->front()));
    }
    return all;
  };
  constexpr int kAttempts = 8;
  auto entries = read_all();
  if (!entries) return entries.status();
  for (int attempt = 1;; ++attempt) {
    std::vector<uint64_t> pfns;
    for (const auto& per_process : *entries)
      for (const PagemapEntry& e : per_process)
        if (e.pfn) pfns.push_back(e.pfn);
    std::sort(pfns.begin(), pfns.end());
    pfns.erase(std::unique(pfns.begin(), pfns.end()), pfns.end());
    int kfd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    if (kfd < 0) return Status::from_errno("/proc/kpageflags");
    long frames = 0;
    for (uint64_t pfn : pfns) {
      uint64_t flags = 0;
      if (pread(kfd, &flags, sizeof flags, static_cast<off_t>(pfn * sizeof(uint64_t))) != sizeof flags) {
        int err = errno;
        close(kfd);
        return Status::from_errno("/proc/kpageflags", err);
      }
      if (flags & kKpfKsm) ++frames;
    }
    close(kfd);
    auto again = read_all();
    if (!again) return again.status();
    if (same_frames(*entries, *again) || attempt == kAttempts) return frames;
    entries = std::move(again);
  }
}

}  // namespace rmapbench::mm
