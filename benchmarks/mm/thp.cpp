#include "benchmarks/mm/thp.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <charconv>
#include <cstring>

#include "benchmarks/harness/metrics.hpp"
#include "benchmarks/mm/anon_layout.hpp"
#include "kernels/procfs/kernel_counters.hpp"
#include "benchmarks/mm/processes.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::mm::thp {

RMAPBENCH_METRIC(kThpSplitPmd, {"thp_split_pmd", "events", Better::lower, MetricKind::exact,
                                "/proc/vmstat thp_split_pmd delta per iteration (PMD mappings split)"});
RMAPBENCH_METRIC(kThpSplitPage, {"thp_split_page", "events", Better::lower, MetricKind::exact,
                                 "/proc/vmstat thp_split_page delta per iteration (PMD-size folios split)"});
RMAPBENCH_METRIC(kThpDeferredSplitPage, {"thp_deferred_split_page", "events", Better::lower, MetricKind::exact,
                                         "/proc/vmstat thp_deferred_split_page delta per iteration (PMD-size folios "
                                         "queued for deferred split)"});
RMAPBENCH_METRIC(kSizeSplit, {"size_split", "events", Better::lower, MetricKind::exact,
                              "hugepages-<size>kB/stats/split delta per iteration (folios of the size split)"});
RMAPBENCH_METRIC(kSizeSplitDeferred, {"size_split_deferred", "events", Better::lower, MetricKind::exact,
                                      "hugepages-<size>kB/stats/split_deferred delta per iteration (queued)"});
RMAPBENCH_METRIC(kSharers, {"sharers", "processes", Better::lower, MetricKind::exact,
                            "processes besides the benchmark process that map the pages"});

namespace {

uint64_t mix64(uint64_t x) {  // splitmix64 finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

bool parse_hex(std::string_view s, uintptr_t& out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// "7f12a000-7f12c000 rw-p ..." -> true with the bounds.
bool parse_vma_header(std::string_view line, uintptr_t& lo, uintptr_t& hi, bool& malformed) {
  malformed = false;
  if (line.empty() || !is_lower_hex(line[0])) return false;
  size_t space = line.find(' ');
  std::string_view range = line.substr(0, space);
  size_t dash = range.find('-');
  if (dash == std::string_view::npos) return false;
  if (!parse_hex(range.substr(0, dash), lo) || !parse_hex(range.substr(dash + 1), hi)) {
    malformed = true;
    return false;
  }
  return true;
}

std::string knob_or_unknown(const std::string& path) { return sysfs::read_knob(path); }

}  // namespace

// ------------------------------------------------------------ sizes, knobs

long folios_per_iteration(size_t folio_bytes) {
  return std::clamp<long>(static_cast<long>((32u << 20) / std::max<size_t>(folio_bytes, 1)), 16, 256);
}

size_t pmd_size() {
  static const size_t cached = [] {
    auto text = sysfs::read_file(std::string(kThpDir) + "/hpage_pmd_size", 256);
    if (!text) return size_t{0};
    size_t v = 0;
    std::string_view t = sysfs::trim(*text);
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
  }();
  return cached;
}

std::optional<std::string> unavailable() {
  if (pmd_size() == 0)
    return std::string("needs transparent huge pages (CONFIG_TRANSPARENT_HUGEPAGE; ") + kThpDir + " is absent)";
  return std::nullopt;
}

std::vector<long> listed_sizes_kb() {
  std::vector<long> sizes;
  DIR* d = opendir(kThpDir);
  if (!d) return sizes;
  while (dirent* e = readdir(d)) {
    // "hugepages-<N>kB"; from_chars, as sscanf's %ld has no defined overflow.
    std::string_view name(e->d_name);
    constexpr std::string_view prefix = "hugepages-";
    if (!name.starts_with(prefix) || !name.ends_with("kB")) continue;
    std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - 2);
    long kb = 0;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), kb);
    if (r.ec == std::errc() && r.ptr == digits.data() + digits.size() && kb > 0 && kb <= (1L << 30)) sizes.push_back(kb);
  }
  closedir(d);
  std::sort(sizes.begin(), sizes.end());
  return sizes;
}

std::string size_dir(long kb) { return fmt::format("{}/hugepages-{}kB", kThpDir, kb); }

std::string effective_mode(const std::string& size_enabled, const std::string& top_enabled) {
  return size_enabled == "inherit" ? top_enabled : size_enabled;
}

Result<std::vector<safety::KnobGuard>> allow_size(long kb, std::vector<std::string>* notes) {
  const std::vector<long> sizes = listed_sizes_kb();
  // Kernels before 6.8 (5.15, 6.1, 6.6: most LTS hosts and Android GKI) have
  // no per-size directories: PMD-size THPs are governed by the top-level
  // `enabled` alone, and hpage_pmd_size says their size.
  const long pmd_kb = static_cast<long>(pmd_size() / 1024);
  if (sizes.empty() && pmd_kb > 0 && kb == pmd_kb) {
    std::vector<safety::KnobGuard> guards;
    const std::string top = std::string(kThpDir) + "/enabled";
    auto top_enabled = safety::read_knob(top);
    if (!top_enabled) return top_enabled.status();
    if (*top_enabled == "always" || *top_enabled == "madvise") return guards;
    auto g = safety::KnobGuard::set(top, "madvise");
    if (!g) return g.status().context(fmt::format("cannot enable {} kB (PMD) THPs", kb));
    if (notes) notes->push_back(fmt::format("transparent_hugepage/enabled set to madvise for the run (was {})", *top_enabled));
    guards.push_back(std::move(*g));
    return guards;
  }
  if (std::find(sizes.begin(), sizes.end(), kb) == sizes.end()) {
    std::string listed;
    for (long s : sizes) listed += fmt::format("{}{}", listed.empty() ? "" : " ", s);
    return Status::error(fmt::format("this kernel lists no hugepages-{}kB in {} (sizes: {})", kb, kThpDir,
                                     listed.empty() ? "none" : listed));
  }
  auto size_enabled = safety::read_knob(size_dir(kb) + "/enabled");
  if (!size_enabled) return size_enabled.status();
  auto top_enabled = safety::read_knob(std::string(kThpDir) + "/enabled");
  if (!top_enabled) return top_enabled.status();
  std::vector<safety::KnobGuard> guards;
  const std::string mode = effective_mode(*size_enabled, *top_enabled);
  if (mode == "always" || mode == "madvise") return guards;
  auto g = safety::KnobGuard::set(size_dir(kb) + "/enabled", "madvise");
  if (!g) return g.status().context(fmt::format("cannot enable {} kB folios", kb));
  if (notes)
    notes->push_back(fmt::format("hugepages-{}kB/enabled set to madvise for the run (was {})", kb, *size_enabled));
  guards.push_back(std::move(*g));
  return guards;
}

std::map<std::string, long long> size_stats(long kb) {
  std::map<std::string, long long> stats;
  const std::string dir = size_dir(kb) + "/stats";
  DIR* d = opendir(dir.c_str());
  if (!d) return stats;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    auto text = sysfs::read_file(dir + "/" + e->d_name, 256);
    if (!text) continue;
    std::string_view t = sysfs::trim(*text);
    long long v = 0;
    if (std::from_chars(t.data(), t.data() + t.size(), v).ec == std::errc()) stats[e->d_name] = v;
  }
  closedir(d);
  return stats;
}

Result<ThpEvents> read_events(long kb) {
  auto vm = read_vmstat();
  if (!vm) return vm.status();
  auto get = [&](const char* k) { auto it = vm->find(k); return it == vm->end() ? 0LL : it->second; };
  ThpEvents e;
  e.split_pmd = get("thp_split_pmd");
  e.split_page = get("thp_split_page");
  e.deferred_split_page = get("thp_deferred_split_page");
  auto stats = size_stats(kb);
  if (auto it = stats.find("split"); it != stats.end()) e.size_split = it->second;
  if (auto it = stats.find("split_deferred"); it != stats.end()) e.size_split_deferred = it->second;
  return e;
}

ThpEvents& operator+=(ThpEvents& s, const ThpEvents& d) {
  if (s.samples == 0) {
    s = d;
    s.samples = 1;
    return s;
  }
  s.split_pmd += d.split_pmd;
  s.split_page += d.split_page;
  s.deferred_split_page += d.deferred_split_page;
  s.size_split = s.size_split < 0 || d.size_split < 0 ? -1 : s.size_split + d.size_split;
  s.size_split_deferred =
      s.size_split_deferred < 0 || d.size_split_deferred < 0 ? -1 : s.size_split_deferred + d.size_split_deferred;
  ++s.samples;
  return s;
}

void report_events(benchmark::State& state, const ThpEvents& s, long iterations, long sharers) {
  const double n = static_cast<double>(std::max(1L, iterations));
  report_metric(state, kThpSplitPmd, static_cast<double>(s.split_pmd) / n);
  report_metric(state, kThpSplitPage, static_cast<double>(s.split_page) / n);
  report_metric(state, kThpDeferredSplitPage, static_cast<double>(s.deferred_split_page) / n);
  if (s.size_split >= 0) report_metric(state, kSizeSplit, static_cast<double>(s.size_split) / n);
  if (s.size_split_deferred >= 0) report_metric(state, kSizeSplitDeferred, static_cast<double>(s.size_split_deferred) / n);
  report_metric(state, kSharers, static_cast<double>(sharers));
}

ThpEvents operator-(const ThpEvents& a, const ThpEvents& b) {
  ThpEvents d;
  d.split_pmd = a.split_pmd - b.split_pmd;
  d.split_page = a.split_page - b.split_page;
  d.deferred_split_page = a.deferred_split_page - b.deferred_split_page;
  d.size_split = a.size_split < 0 || b.size_split < 0 ? -1 : a.size_split - b.size_split;
  d.size_split_deferred = a.size_split_deferred < 0 || b.size_split_deferred < 0 ? -1 : a.size_split_deferred - b.size_split_deferred;
  return d;
}

// ------------------------------------------------------------ pure parsers

Result<long long> parse_smaps_anon_huge_kb(std::string_view smaps, uintptr_t start, uintptr_t end) {
  long long total = 0;
  bool in_range = false, seen_header = false;
  long line_no = 0;
  for (std::string_view line : sysfs::split_lines(smaps)) {
    ++line_no;
    if (line.empty()) continue;
    uintptr_t lo = 0, hi = 0;
    bool malformed = false;
    if (parse_vma_header(line, lo, hi, malformed)) {
      seen_header = true;
      in_range = lo < end && hi > start;
      continue;
    }
    if (malformed) return Status::error(fmt::format("smaps line {}: malformed VMA header '{}'", line_no, line));
    constexpr std::string_view key = "AnonHugePages:";
    if (line.substr(0, key.size()) != key) continue;
    if (!seen_header) return Status::error(fmt::format("smaps line {}: AnonHugePages before any VMA header", line_no));
    std::string_view rest = sysfs::trim(line.substr(key.size()));
    long long kb = 0;
    auto r = std::from_chars(rest.data(), rest.data() + rest.size(), kb);
    if (r.ec != std::errc() || kb < 0 || sysfs::trim(std::string_view(r.ptr, rest.data() + rest.size() - r.ptr)) != "kB")
      return Status::error(fmt::format("smaps line {}: malformed '{}'", line_no, line));
    if (in_range && kb > LLONG_MAX / 1024 - total)
      return Status::error(fmt::format("smaps line {}: AnonHugePages add up past any memory size", line_no));
    if (in_range) total += kb;
  }
  return total;
}

// ------------------------------------------------------------ probes

Result<long long> anon_huge_kb(pid_t pid, uintptr_t start, size_t len) {
  auto text = sysfs::read_file(proc_file(pid, "smaps"), 64u << 20);
  if (!text) return text.status();
  auto kb = parse_smaps_anon_huge_kb(*text, start, start + len);
  if (!kb) return kb.status().context(proc_file(pid, "smaps"));
  return kb;
}

// ------------------------------------------------------------ the region

Result<ThpRegion> ThpRegion::create(size_t folio_bytes, long count, uint32_t seed) {
  const size_t ps = page_size();
  if (count < 1 || folio_bytes < 2 * ps || folio_bytes % ps != 0 || (folio_bytes & (folio_bytes - 1)) != 0)
    return Status::error(fmt::format("bad THP region: {} folios of {} bytes", count, folio_bytes));
  const bool one_vma = folio_bytes == pmd_size();
  ThpRegion r;
  r.folio_bytes_ = folio_bytes;
  r.stride_ = one_vma ? folio_bytes : 2 * folio_bytes;
  r.count_ = count;
  r.seed_ = seed;
  const size_t span = static_cast<size_t>(count - 1) * r.stride_ + folio_bytes;
  r.reservation_bytes_ = span + 2 * folio_bytes + ps;
  void* raw = mmap(nullptr, r.reservation_bytes_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return Status::from_errno(fmt::format("mmap {} bytes for the THP region", r.reservation_bytes_));
  r.reservation_ = static_cast<char*>(raw);
  const uintptr_t guarded = reinterpret_cast<uintptr_t>(raw) + ps;
  r.base_ = reinterpret_cast<char*>((guarded + folio_bytes - 1) & ~(folio_bytes - 1));
  auto open_piece = [&](char* p, size_t bytes) -> Status {
    if (mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) return Status::from_errno("mprotect THP region");
    if (madvise(p, bytes, MADV_HUGEPAGE) != 0) return Status::from_errno("madvise(MADV_HUGEPAGE)");
    return Status::ok();
  };
  if (one_vma) {
    if (Status s = open_piece(r.base_, span); s.failed()) return s;
  } else {
    for (long i = 0; i < count; ++i)
      if (Status s = open_piece(r.folio(i), folio_bytes); s.failed()) return s;
  }
  const long ppf = r.pages_per_folio();
  const size_t words = ps / sizeof(uint64_t);
  for (long f = 0; f < count; ++f)
    for (long p = 0; p < ppf; ++p) {
      auto* w = reinterpret_cast<uint64_t*>(r.page(f, p));
      const uint64_t base = r.word(f, p, 0);
      for (size_t i = 0; i < words; ++i) w[i] = base + i * 0x9E3779B97F4A7C15ull;
    }
  return r;
}

ThpRegion::ThpRegion(ThpRegion&& o) noexcept
    : reservation_(o.reservation_),
      reservation_bytes_(o.reservation_bytes_),
      base_(o.base_),
      folio_bytes_(o.folio_bytes_),
      stride_(o.stride_),
      count_(o.count_),
      seed_(o.seed_) {
  o.reservation_ = nullptr;
  o.base_ = nullptr;
}

ThpRegion::~ThpRegion() {
  if (reservation_) munmap(reservation_, reservation_bytes_);
}

long ThpRegion::pages_per_folio() const { return static_cast<long>(folio_bytes_ / page_size()); }

char* ThpRegion::page(long folio_index, long page_index) const {
  return folio(folio_index) + static_cast<size_t>(page_index) * page_size();
}

std::vector<std::pair<uintptr_t, size_t>> ThpRegion::folio_ranges() const {
  std::vector<std::pair<uintptr_t, size_t>> r;
  for (long i = 0; i < count_; ++i) r.emplace_back(reinterpret_cast<uintptr_t>(folio(i)), folio_bytes_);
  return r;
}

uint64_t ThpRegion::word(long folio_index, long page_index, size_t w) const {
  const uint64_t g = static_cast<uint64_t>(folio_index) * static_cast<uint64_t>(pages_per_folio()) +
                     static_cast<uint64_t>(page_index);
  return mix64((static_cast<uint64_t>(seed_) << 40) ^ g) + w * 0x9E3779B97F4A7C15ull;
}

uint64_t ThpRegion::marker(long folio_index, long page_index) const { return ~word(folio_index, page_index, 0); }

Status ThpRegion::verify(const std::function<PageExpect(long, long)>& expect, const std::string& who) const {
  const size_t words = page_size() / sizeof(uint64_t);
  const long ppf = pages_per_folio();
  constexpr uint64_t kStep = 0x9E3779B97F4A7C15ull;
  for (long f = 0; f < count_; ++f)
    for (long p = 0; p < ppf; ++p) {
      const PageExpect e = expect(f, p);
      if (e == PageExpect::skip) continue;
      const auto* w = reinterpret_cast<const uint64_t*>(page(f, p));
      // Fast pass: the expected words are base + i * kStep (or 0).
      const uint64_t base = e == PageExpect::zero ? 0 : word(f, p, 0);
      const uint64_t step = e == PageExpect::zero ? 0 : kStep;
      uint64_t diff = e == PageExpect::marked ? (w[0] ^ marker(f, p)) : (w[0] ^ base);
      for (size_t i = 1; i < words; ++i) diff |= w[i] ^ (base + i * step);
      if (diff == 0) continue;
      for (size_t i = 0; i < words; ++i) {
        const bool own_marker = e == PageExpect::marked && i == 0;
        const uint64_t want = own_marker ? marker(f, p) : base + i * step;
        if (w[i] == want) continue;
        const char* what = e == PageExpect::zero ? "a dropped page must read as zeros"
                           : own_marker          ? "this process's own write is missing"
                                                 : "data lost or corrupted";
        if (e == PageExpect::pattern && i == 0 && w[i] == marker(f, p))
          what = "another process's write leaked in (COW isolation broken)";
        size_t byte = 0;
        while (byte < 7 && ((w[i] >> (8 * byte)) & 0xff) == ((want >> (8 * byte)) & 0xff)) ++byte;
        return Status::error(fmt::format("{}: folio {} page {} byte {} is 0x{:02x}, expected 0x{:02x} ({})", who, f, p,
                                         i * 8 + byte, (w[i] >> (8 * byte)) & 0xff, (want >> (8 * byte)) & 0xff, what));
      }
    }
  return Status::ok();
}

void ThpRegion::mark(long folio_index, long page_index) {
  *reinterpret_cast<volatile uint64_t*>(page(folio_index, page_index)) = marker(folio_index, page_index);
}

void ThpRegion::corrupt_one_byte_for_test(long folio_index, long page_index) {
  volatile char* p = page(folio_index, page_index) + 100;
  *p = static_cast<char>(*p ^ 0x5a);
}

Status ThpRegion::forbid_collapse() {
  const bool one_vma = stride_ == folio_bytes_;
  const size_t span = one_vma ? static_cast<size_t>(count_) * folio_bytes_ : folio_bytes_;
  for (long i = 0; i < (one_vma ? 1 : count_); ++i)
    if (madvise(folio(i), span, MADV_NOHUGEPAGE) != 0 && errno != ENOMEM)  // ENOMEM: a hole (munmap), fine
      return Status::from_errno("madvise(MADV_NOHUGEPAGE)");
  return Status::ok();
}

Status confirm_thps(const ThpRegion& region) {
  const long kb = static_cast<long>(region.folio_bytes() / 1024);
  const long want_pages = region.count() * region.pages_per_folio();
  auto knobs = [&] {
    return fmt::format("enabled={}, hugepages-{}kB/enabled={}, defrag={}",
                       knob_or_unknown(std::string(kThpDir) + "/enabled"), kb,
                       knob_or_unknown(size_dir(kb) + "/enabled"), knob_or_unknown(std::string(kThpDir) + "/defrag"));
  };
  // PMD-size THPs are confirmed by smaps' AnonHugePages alone: reading
  // kpageflags for every page just before the timed operation made the PMD
  // split that follows 2-15% slower (measured with a bare loop), and
  // AnonHugePages already counts exactly the PMD-mapped THPs.
  const bool pmd_sized = region.folio_bytes() == pmd_size();
  if (auto why = census_unavailable(); !why && !pmd_sized) {
    auto c = census({0}, region.folio_ranges());
    if (!c) return c.status().context("checking for THPs");
    if (Status s = check_never_merged(*c, [](size_t) { return std::string("the benchmark process"); },
                                      "after the fault");
        s.failed())
      return s;
    const FolioCensus& got = c->front();
    if (got.thp_pages != want_pages || got.thp_heads != region.count())
      return Status::error(fmt::format("no {} kB THPs after the fault: {} of {} pages in large folios, {} of {} folio "
                                       "heads (kpageflags); {}; memory may be too fragmented",
                                       kb, got.thp_pages, want_pages, got.thp_heads, region.count(), knobs()));
  } else if (!pmd_sized) {
    return Status::error(fmt::format("cannot confirm {} kB folios: {}", kb, *why));
  }
  if (pmd_sized) {
    auto huge = anon_huge_kb(0, region.start(), region.end() - region.start());
    if (!huge) return huge.status().context("checking for THPs");
    if (*huge != region.count() * kb)
      return Status::error(fmt::format("no THPs after the fault: AnonHugePages {} kB of {} kB in the range; {}", *huge,
                                       region.count() * kb, knobs()));
  }
  return Status::ok();
}

Status check_cow_isolation(ThpRegion& region, long parent_marks, ChildGroup& sharers,
                           const ChildGroup::Body& late_check, const std::function<Status(bool marked)>& parent_view) {
  std::optional<ChildGroup> checker;
  ChildGroup* sharers_now = &sharers;
  if (sharers.pids().empty()) {
    auto c = ChildGroup::spawn(1, {}, late_check);
    if (!c) return c.status();
    checker.emplace(std::move(*c));
    sharers_now = &*checker;
  }
  for (long f = 0; f < region.count(); ++f) region.mark(f, parent_marks);
  if (Status s = sharers_now->check(); s.failed()) return s;
  if (Status s = parent_view(true); s.failed()) return s;
  if (Status s = sharers_now->release(); s.failed()) return s;
  return checker ? sharers.release() : Status::ok();
}

Status check_split(const ThpRegion& region, const std::vector<pid_t>& pids) {
  auto who = [&](size_t k) {
    return pids[k] == 0 ? std::string("the benchmark process") : fmt::format("sharer {} (pid {})", k - 1, pids[k]);
  };
  const long kb = static_cast<long>(region.folio_bytes() / 1024);
  if (!census_unavailable()) {
    auto c = census(pids, region.folio_ranges());
    if (!c) return c.status().context("split oracle");
    if (Status s = check_never_merged(*c, who, "after the split"); s.failed()) return s;
    for (size_t k = 0; k < pids.size(); ++k)
      if ((*c)[k].thp_pages != 0)
        return Status::error(fmt::format("after the split {} still maps {} pages of {} large folios ({} kB folios, "
                                         "kpageflags)",
                                         who(k), (*c)[k].thp_pages, (*c)[k].thp_heads, kb));
  }
  if (region.folio_bytes() == pmd_size()) {
    for (size_t k = 0; k < pids.size(); ++k) {
      auto huge = anon_huge_kb(pids[k], region.start(), region.end() - region.start());
      if (!huge) return huge.status().context("split oracle");
      if (*huge != 0)
        return Status::error(fmt::format("after the split {} still has AnonHugePages {} kB in the range", who(k), *huge));
    }
  }
  return Status::ok();
}

// ------------------------------------------------------------ triggers

Result<int64_t> run_shrinkers() {
  const char* path = "/proc/sys/vm/drop_caches";
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(fmt::format("{} (the shrinkers are run by writing 2 there; needs root)", path));
  const int64_t t0 = monotonic_ns();
  ssize_t n = write(fd, "2", 1);
  const int64_t t1 = monotonic_ns();
  int err = errno;
  close(fd);
  if (n != 1) return Status::from_errno(fmt::format("write 2 to {}", path), err);
  return t1 - t0;
}

Result<std::string> debugfs_split_path() {
  const host::HostFacts& h = host::facts();
  if (h.lockdown != "none" && h.lockdown.rfind("unknown", 0) != 0)
    return Status::error(fmt::format("kernel lockdown ({}): debugfs split_huge_pages refused", h.lockdown));
  if (!h.debugfs_mounted)
    return Status::error("debugfs not mounted: mount -t debugfs none /sys/kernel/debug to time the direct split");
  std::string path = h.debugfs_path + "/split_huge_pages";
  if (access(path.c_str(), W_OK) != 0)
    return Status::from_errno(fmt::format("{} (host probe: {})", path, h.split_huge_pages));
  return path;
}

Result<int64_t> debugfs_split(const std::string& path, pid_t pid, uintptr_t start, uintptr_t end, int order) {
  const std::string input = fmt::format("{},0x{:x},0x{:x},{}", pid, start, end, order);
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EPERM) return Status::error(fmt::format("kernel lockdown: {} refused (EPERM)", path), EPERM);
    return Status::from_errno(path);
  }
  const int64_t t0 = monotonic_ns();
  ssize_t n = write(fd, input.data(), input.size());
  const int64_t t1 = monotonic_ns();
  int err = errno;
  close(fd);
  if (n < 0) return Status::from_errno(fmt::format("write '{}' to {}", input, path), err);
  return t1 - t0;
}

}  // namespace rmapbench::mm::thp
