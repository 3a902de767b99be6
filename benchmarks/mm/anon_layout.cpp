#include "benchmarks/mm/anon_layout.hpp"

#include <fmt/core.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace rmapbench::mm {

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

namespace {

void fill_page(char* page, uint32_t seed, long vma, long p) {
  const size_t ps = page_size();
  // Write word-wise prefix then patterned bytes: every byte is checked later.
  for (size_t off = 0; off < ps; ++off) page[off] = static_cast<char>(pattern_byte(seed, vma, p, off));
}

}  // namespace

Result<AnonLayout> AnonLayout::create(long vmas, long pages_per_vma, uint32_t seed) {
  if (vmas < 1 || pages_per_vma < 1) return Status::error("layout needs at least one VMA of one page");
  const size_t ps = page_size();
  const size_t vma_bytes = static_cast<size_t>(pages_per_vma) * ps;

  // Reserve the whole span first so nothing else lands between our VMAs.
  // With holes the stride has one extra page; decide by probing madvise.
  void* probe = mmap(nullptr, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return Status::from_errno("mmap probe");
  const bool can_alternate_flags = madvise(probe, ps, MADV_NOHUGEPAGE) == 0;
  munmap(probe, ps);

  const size_t stride = can_alternate_flags ? vma_bytes : vma_bytes + ps;
  const size_t span = stride * static_cast<size_t>(vmas);
  // One PROT_NONE guard page stays at each end, so the first and last VMA
  // never merge with whatever else is mapped next to the layout.
  void* reserve = mmap(nullptr, span + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED)
    return Status::from_errno(fmt::format("mmap reservation of {} bytes for {} VMAs", span, vmas));
  char* base = static_cast<char*>(reserve) + ps;
  // Release the reservation between the guards and map the VMAs at fixed
  // addresses inside it.
  // Odd VMAs first (they never touch each other), each marked VM_NOHUGEPAGE
  // and faulted; then even ones, which sit between differently-flagged
  // neighbours, so mmap cannot merge them and each gets its own anon_vma.
  munmap(base, span);
  AnonLayout layout(base, span, vmas, pages_per_vma, stride, seed);
  auto map_one = [&](long i) -> Status {
    char* at = base + stride * static_cast<size_t>(i);
    void* p = mmap(at, vma_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED) return Status::from_errno(fmt::format("mmap of VMA {} of {}", i, vmas));
    if (p != at) {
      munmap(p, vma_bytes);
      return Status::error(fmt::format("mmap of VMA {} landed elsewhere (MAP_FIXED_NOREPLACE unsupported?)", i));
    }
    if (can_alternate_flags && (i % 2 == 1) && madvise(at, vma_bytes, MADV_NOHUGEPAGE) != 0)
      return Status::from_errno("madvise(MADV_NOHUGEPAGE)");
    for (long pg = 0; pg < pages_per_vma; ++pg) fill_page(at + static_cast<size_t>(pg) * ps, seed, i, pg);
    return Status::ok();
  };
  const long first_pass_start = can_alternate_flags ? 1 : 0;
  const long step = can_alternate_flags ? 2 : 1;
  for (long i = first_pass_start; i < vmas; i += step)
    if (auto s = map_one(i); s.failed()) return s;
  if (can_alternate_flags)
    for (long i = 0; i < vmas; i += 2)
      if (auto s = map_one(i); s.failed()) return s;
  return layout;
}

AnonLayout::AnonLayout(AnonLayout&& o) noexcept { *this = std::move(o); }

AnonLayout& AnonLayout::operator=(AnonLayout&& o) noexcept {
  if (this != &o) {
    release();
    base_ = o.base_;
    span_ = o.span_;
    vmas_ = o.vmas_;
    pages_per_vma_ = o.pages_per_vma_;
    stride_ = o.stride_;
    seed_ = o.seed_;
    o.base_ = nullptr;
    o.span_ = 0;
  }
  return *this;
}

AnonLayout::~AnonLayout() { release(); }

void AnonLayout::release() {
  if (base_) munmap(base_ - page_size(), span_ + 2 * page_size());
  base_ = nullptr;
}

char* AnonLayout::vma_start(long i) const { return base_ + stride_ * static_cast<size_t>(i); }
size_t AnonLayout::vma_bytes() const { return static_cast<size_t>(pages_per_vma_) * page_size(); }

Status AnonLayout::verify() const { return verify_range(0, vmas_); }

Status AnonLayout::verify_range(long first, long last) const {
  const size_t ps = page_size();
  for (long i = first; i < last; ++i) {
    for (long pg = 0; pg < pages_per_vma_; ++pg) {
      const char* page = vma_start(i) + static_cast<size_t>(pg) * ps;
      for (size_t off = 0; off < ps; ++off) {
        if (static_cast<uint8_t>(page[off]) != pattern_byte(seed_, i, pg, off))
          return Status::error(fmt::format("data mismatch in VMA {} page {} byte {} (pid {}): expected 0x{:02x}, found 0x{:02x}",
                                           i, pg, off, getpid(), pattern_byte(seed_, i, pg, off),
                                           static_cast<uint8_t>(page[off])));
      }
    }
  }
  return Status::ok();
}

void AnonLayout::rewrite(uint32_t seed) {
  const size_t ps = page_size();
  for (long i = 0; i < vmas_; ++i)
    for (long pg = 0; pg < pages_per_vma_; ++pg) fill_page(vma_start(i) + static_cast<size_t>(pg) * ps, seed, i, pg);
  seed_ = seed;
}

Status AnonLayout::unmap_all_but(long first, long last) {
  for (long i = 0; i < vmas_; ++i) {
    if (i >= first && i < last) continue;
    if (munmap(vma_start(i), vma_bytes()) != 0) return Status::from_errno(fmt::format("munmap of VMA {}", i));
  }
  return Status::ok();
}

Result<long> AnonLayout::count_mapped_vmas() const {
  std::ifstream maps("/proc/self/maps");
  if (!maps) return Status::from_errno("open /proc/self/maps");
  const auto lo = reinterpret_cast<uintptr_t>(base_);
  const auto hi = lo + span_;
  long count = 0;
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) != 2) continue;
    if (start >= lo && end <= hi) ++count;
  }
  return count;
}

void AnonLayout::corrupt_one_byte_for_test(long vma, long page) {
  char* p = vma_start(vma) + static_cast<size_t>(page) * page_size();
  p[17] = static_cast<char>(p[17] ^ 0x5a);
}

}  // namespace rmapbench::mm
