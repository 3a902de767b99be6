// The layout of V faulted anonymous VMAs (see anon_layout.hpp) in plain
// system calls, without allocation or libraries: shared by AnonLayout and the
// lean forker (benchmarks/forker), a static program that must hold nothing
// but this layout. Errors are an errno and a message in a fixed buffer.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace rmapbench::mm {

// The byte expected at offset `off` of page `page` of VMA `vma`.
inline uint8_t pattern_byte(uint32_t seed, long vma, long page, size_t off) {
  uint32_t x = seed * 2654435761u ^ static_cast<uint32_t>(vma) * 40503u ^ static_cast<uint32_t>(page) * 97u;
  return static_cast<uint8_t>((x >> 7) + off * 31u);
}

namespace layout_core {

struct Error {
  int err = 0;  // errno of the failed call, 0 if none
  char message[256] = {};
};

// Fills `error` the way Status::from_errno / Status::error word it.
inline bool fail_with(Error* error, int err, const char* message) {
  if (err != 0)
    snprintf(error->message, sizeof error->message, "%s: %s", message, strerror(err));
  else
    snprintf(error->message, sizeof error->message, "%s", message);
  error->err = err;
  return false;
}

struct Geometry {
  char* base = nullptr;  // first VMA; one PROT_NONE guard page sits on each side of [base, base + span)
  size_t span = 0;
  size_t stride = 0;     // distance between VMA starts
  long vmas = 0;
  long pages_per_vma = 0;
  size_t page = 0;

  char* vma_start(long i) const { return base + stride * static_cast<size_t>(i); }
  size_t vma_bytes() const { return static_cast<size_t>(pages_per_vma) * page; }
  char* page_start(long vma, long pg) const { return vma_start(vma) + static_cast<size_t>(pg) * page; }
};

inline void fill_page(const Geometry& g, uint32_t seed, long vma, long pg) {
  char* p = g.page_start(vma, pg);
  for (size_t off = 0; off < g.page; ++off) p[off] = static_cast<char>(pattern_byte(seed, vma, pg, off));
}

inline void rewrite(const Geometry& g, uint32_t seed) {
  for (long i = 0; i < g.vmas; ++i)
    for (long pg = 0; pg < g.pages_per_vma; ++pg) fill_page(g, seed, i, pg);
}

// Unmaps the layout and its guard pages.
inline void unmap(const Geometry& g) {
  if (g.base) munmap(g.base - g.page, g.span + 2 * g.page);
}

// Maps `vmas` separate private anonymous VMAs of `pages_per_vma` pages and
// writes every page (so each VMA gets its own anon_vma). Adjacent VMAs
// alternate VM_NOHUGEPAGE so they never merge; without THP support the VMAs
// are separated by one-page holes instead. On failure nothing stays mapped.
inline bool map(long vmas, long pages_per_vma, uint32_t seed, Geometry* out, Error* error) {
  if (vmas < 1 || pages_per_vma < 1) return fail_with(error, 0, "layout needs at least one VMA of one page");
  Geometry g;
  g.vmas = vmas;
  g.pages_per_vma = pages_per_vma;
  g.page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t ps = g.page;
  const size_t vma_bytes = g.vma_bytes();

  // With holes the stride has one extra page; decide by probing madvise.
  void* probe = mmap(nullptr, ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (probe == MAP_FAILED) return fail_with(error, errno, "mmap probe");
  const bool can_alternate_flags = madvise(probe, ps, MADV_NOHUGEPAGE) == 0;
  munmap(probe, ps);

  g.stride = can_alternate_flags ? vma_bytes : vma_bytes + ps;
  g.span = g.stride * static_cast<size_t>(vmas);
  // Reserve the whole span first so nothing else lands between our VMAs;
  // one PROT_NONE guard page stays at each end, so the first and last VMA
  // never merge with whatever else is mapped next to the layout.
  void* reserve = mmap(nullptr, g.span + 2 * ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserve == MAP_FAILED) {
    char what[128];
    snprintf(what, sizeof what, "mmap reservation of %zu bytes for %ld VMAs", g.span, vmas);
    return fail_with(error, errno, what);
  }
  g.base = static_cast<char*>(reserve) + ps;
  // Release the reservation between the guards and map the VMAs at fixed
  // addresses inside it. Odd VMAs first (they never touch each other), each
  // marked VM_NOHUGEPAGE and faulted; then even ones, which sit between
  // differently-flagged neighbours, so mmap cannot merge them and each gets
  // its own anon_vma.
  munmap(g.base, g.span);
  auto map_one = [&](long i) -> bool {
    char* at = g.vma_start(i);
    void* p = mmap(at, vma_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    char what[128];
    if (p == MAP_FAILED) {
      snprintf(what, sizeof what, "mmap of VMA %ld of %ld", i, vmas);
      return fail_with(error, errno, what);
    }
    if (p != at) {
      munmap(p, vma_bytes);
      snprintf(what, sizeof what, "mmap of VMA %ld landed elsewhere (MAP_FIXED_NOREPLACE unsupported?)", i);
      return fail_with(error, 0, what);
    }
    if (can_alternate_flags && (i % 2 == 1) && madvise(at, vma_bytes, MADV_NOHUGEPAGE) != 0)
      return fail_with(error, errno, "madvise(MADV_NOHUGEPAGE)");
    for (long pg = 0; pg < pages_per_vma; ++pg) fill_page(g, seed, i, pg);
    return true;
  };
  bool ok = true;
  const long first_pass_start = can_alternate_flags ? 1 : 0;
  const long step = can_alternate_flags ? 2 : 1;
  for (long i = first_pass_start; ok && i < vmas; i += step) ok = map_one(i);
  if (can_alternate_flags)
    for (long i = 0; ok && i < vmas; i += 2) ok = map_one(i);
  if (!ok) {
    unmap(g);
    return false;
  }
  *out = g;
  return true;
}

// Every byte of VMAs [first, last) holds the pattern of `seed`; the first
// byte that does not is described in `error`.
inline bool verify_range(const Geometry& g, uint32_t seed, long first, long last, Error* error) {
  for (long i = first; i < last; ++i)
    for (long pg = 0; pg < g.pages_per_vma; ++pg) {
      const char* p = g.page_start(i, pg);
      for (size_t off = 0; off < g.page; ++off) {
        const uint8_t expected = pattern_byte(seed, i, pg, off);
        const uint8_t found = static_cast<uint8_t>(p[off]);
        if (found == expected) continue;
        snprintf(error->message, sizeof error->message,
                 "data mismatch in VMA %ld page %ld byte %zu (pid %d): expected 0x%02x, found 0x%02x", i, pg, off,
                 static_cast<int>(getpid()), expected, found);
        error->err = 0;
        return false;
      }
    }
  return true;
}

// Flips one byte, so tests can prove a verification can fail.
inline void corrupt_one_byte_for_test(const Geometry& g, long vma, long pg) {
  char* p = g.page_start(vma, pg);
  p[17] = static_cast<char>(p[17] ^ 0x5a);
}

// Mappings in this process per /proc/self/maps: all of them, and those
// inside [lo, hi) (a layout whose VMAs did not merge has exactly V there).
struct MapsCount {
  long total = 0;
  long inside = 0;
};

inline bool count_mappings(uintptr_t lo, uintptr_t hi, MapsCount* out, Error* error) {
  const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail_with(error, errno, "open /proc/self/maps");
  MapsCount count;
  char buf[4096];
  char line[128];  // only the leading "start-end" matters; longer lines are cut
  size_t line_len = 0;
  auto end_line = [&] {
    line[line_len] = '\0';
    unsigned long start = 0, end = 0;
    if (sscanf(line, "%lx-%lx", &start, &end) == 2) {
      ++count.total;
      if (start >= lo && end <= hi) ++count.inside;
    }
    line_len = 0;
  };
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return fail_with(error, err, "read /proc/self/maps");
    }
    if (n == 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n')
        end_line();
      else if (line_len + 1 < sizeof line)
        line[line_len++] = buf[i];
    }
  }
  if (line_len > 0) end_line();
  close(fd);
  *out = count;
  return true;
}

}  // namespace layout_core
}  // namespace rmapbench::mm
