#include "benchmarks/mm/anon_layout.hpp"

#include <unistd.h>

#include <utility>

namespace rmapbench::mm {

size_t page_size() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

namespace {

Status status_of(const layout_core::Error& e) { return Status::error(e.message, e.err); }

}  // namespace

Result<AnonLayout> AnonLayout::create(long vmas, long pages_per_vma, uint32_t seed) {
  layout_core::Geometry geometry;
  layout_core::Error error;
  if (!layout_core::map(vmas, pages_per_vma, seed, &geometry, &error)) return status_of(error);
  return AnonLayout(geometry, seed);
}

AnonLayout::AnonLayout(AnonLayout&& o) noexcept { *this = std::move(o); }

AnonLayout& AnonLayout::operator=(AnonLayout&& o) noexcept {
  if (this != &o) {
    release();
    geometry_ = std::exchange(o.geometry_, layout_core::Geometry{});
    seed_ = o.seed_;
  }
  return *this;
}

AnonLayout::~AnonLayout() { release(); }

void AnonLayout::release() {
  layout_core::unmap(geometry_);
  geometry_.base = nullptr;
}

Status AnonLayout::verify() const { return verify_range(0, vmas()); }

Status AnonLayout::verify_range(long first, long last) const {
  layout_core::Error error;
  if (!layout_core::verify_range(geometry_, seed_, first, last, &error)) return status_of(error);
  return Status::ok();
}

void AnonLayout::rewrite(uint32_t seed) {
  layout_core::rewrite(geometry_, seed);
  seed_ = seed;
}

Status AnonLayout::unmap_all_but(long first, long last) {
  for (long i = 0; i < vmas(); ++i) {
    if (i >= first && i < last) continue;
    if (munmap(vma_start(i), vma_bytes()) != 0) return Status::from_errno("munmap of VMA " + std::to_string(i));
  }
  return Status::ok();
}

Result<long> AnonLayout::count_mapped_vmas() const {
  const auto lo = reinterpret_cast<uintptr_t>(geometry_.base);
  layout_core::MapsCount count;
  layout_core::Error error;
  if (!layout_core::count_mappings(lo, lo + geometry_.span, &count, &error)) return status_of(error);
  return count.inside;
}

void AnonLayout::corrupt_one_byte_for_test(long vma, long page) {
  layout_core::corrupt_one_byte_for_test(geometry_, vma, page);
}

}  // namespace rmapbench::mm
