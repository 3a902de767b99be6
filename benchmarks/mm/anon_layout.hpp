// A layout of V faulted anonymous VMAs that the kernel cannot merge, each
// with its own anon_vma — the shape rmap cost grows with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "benchmarks/mm/anon_layout_core.hpp"
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

  long vmas() const { return geometry_.vmas; }
  long pages_per_vma() const { return geometry_.pages_per_vma; }
  char* vma_start(long i) const { return geometry_.vma_start(i); }
  size_t vma_bytes() const { return geometry_.vma_bytes(); }

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
  AnonLayout(layout_core::Geometry geometry, uint32_t seed) : geometry_(geometry), seed_(seed) {}
  void release();
  layout_core::Geometry geometry_;
  uint32_t seed_ = 0;
};

size_t page_size();

}  // namespace rmapbench::mm
