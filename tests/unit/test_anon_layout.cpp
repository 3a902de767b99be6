// The layout is the base of every fork workload: its VMAs must really be
// separate, faulted, and its checks must be able to fail.
#include <gtest/gtest.h>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/fork_oracle.hpp"
#include "benchmarks/mm/processes.hpp"

using namespace rmapbench::mm;

TEST(AnonLayout, VmasStaySeparateAndHoldTheirPattern) {
  for (long vmas : {1L, 2L, 3L, 100L}) {
    auto layout = AnonLayout::create(vmas, 2);
    ASSERT_TRUE(layout) << layout.status().message();
    auto mapped = layout->count_mapped_vmas();
    ASSERT_TRUE(mapped);
    EXPECT_EQ(*mapped, vmas);
    EXPECT_FALSE(layout->verify().failed());
  }
}

TEST(AnonLayout, VerifyCatchesOneFlippedByte) {
  auto layout = AnonLayout::create(10);
  ASSERT_TRUE(layout);
  layout->corrupt_one_byte_for_test(7, 0);
  rmapbench::Status s = layout->verify();
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("VMA 7"), std::string::npos) << s.message();
}

TEST(AnonLayout, RejectsEmptyLayouts) { EXPECT_FALSE(AnonLayout::create(0)); }

TEST(AnonLayout, UnmapAllButKeepsTheShare) {
  auto layout = AnonLayout::create(10);
  ASSERT_TRUE(layout);
  ASSERT_FALSE(layout->unmap_all_but(3, 5).failed());
  EXPECT_EQ(*layout->count_mapped_vmas(), 2);
  EXPECT_FALSE(layout->verify_range(3, 5).failed());
}

TEST(ForkOracle, PassesOnAHealthyKernel) {
  auto layout = AnonLayout::create(16);
  ASSERT_TRUE(layout);
  rmapbench::Status s = check_fork_isolation(*layout, "unit-test");
  EXPECT_FALSE(s.failed()) << s.message();
}

TEST(ForkOracle, ReportsAParentWhoseDataChanged) {
  setenv("RMAPBENCH_TEST_CORRUPT", "unit-test-corrupt", 1);
  auto layout = AnonLayout::create(4);
  ASSERT_TRUE(layout);
  rmapbench::Status s = check_fork_isolation(*layout, "unit-test-corrupt");
  unsetenv("RMAPBENCH_TEST_CORRUPT");
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("COW isolation broken"), std::string::npos) << s.message();
}
