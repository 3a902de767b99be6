// A layout of V faulted anonymous VMAs that the kernel cannot merge, each
// with its own anon_vma — the shape rmap cost grows with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/status.hpp"

namespace rmapbench::mm {

class AnonLayout {
 public:
  // Maps `vmas` separate private anonymous VMAs of `pages_per_vma` pages each
  // and writes every page (so each VMA gets its own anon_vma). Adjacent VMAs
  // alternate VM_NOHUGEPAGE so they never merge; without THP support the
  // VMAs are separated by one-page holes instead. Fills each page with a
  // pattern derived from (seed, vma, page) for verify().
  static Result<AnonLayout> create(long vmas, long pages_per_vma = 1, uint32_t seed = 1);

  AnonLayout(AnonLayout&& other) noexcept;
  AnonLayout& operator=(AnonLayout&& other) noexcept;
  AnonLayout(const AnonLayout&) = delete;
  AnonLayout& operator=(const AnonLayout&) = delete;
  ~AnonLayout();

  long vmas() const { return vmas_; }
  long pages_per_vma() const { return pages_per_vma_; }
  char* vma_start(long i) const;
  size_t vma_bytes() const;

  // Every byte of every page still holds its pattern (seed given at create()
  // or by the last rewrite()).
  Status verify() const;
  // The same for VMAs [first, last) only (the others may be unmapped).
  Status verify_range(long first, long last) const;
  // Writes a new pattern with `seed` into every page (a COW fault per page
  // when shared with a child).
  void rewrite(uint32_t seed);
  uint32_t seed() const { return seed_; }
  // Unmaps all VMAs whose index is not in [first, last); used by the width
  // layout where each child keeps only its own share.
  Status unmap_all_but(long first, long last);
  // How many VMAs /proc/self/maps shows in our range: proves they did not merge.
  Result<long> count_mapped_vmas() const;
  // Test hook: flips one byte, so tests can prove verify() can fail.
  void corrupt_one_byte_for_test(long vma, long page);

 private:
  AnonLayout(char* base, size_t span, long vmas, long pages_per_vma, size_t stride, uint32_t seed)
      : base_(base), span_(span), vmas_(vmas), pages_per_vma_(pages_per_vma), stride_(stride), seed_(seed) {}
  void release();
  char* base_ = nullptr;
  size_t span_ = 0;
  long vmas_ = 0;
  long pages_per_vma_ = 0;
  size_t stride_ = 0;  // distance between VMA starts
  uint32_t seed_ = 0;
};

size_t page_size();
// The byte expected at offset `off` of page `page` of VMA `vma`.
inline uint8_t pattern_byte(uint32_t seed, long vma, long page, size_t off) {
  uint32_t x = seed * 2654435761u ^ static_cast<uint32_t>(vma) * 40503u ^ static_cast<uint32_t>(page) * 97u;
  return static_cast<uint8_t>((x >> 7) + off * 31u);
}

}  // namespace rmapbench::mm
