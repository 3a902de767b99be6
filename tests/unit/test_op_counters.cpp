#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "benchmarks/mm/op_counters.hpp"

using namespace rmapbench::mm;
using rmapbench::Status;

namespace {

// Faults `pages` fresh anonymous pages in; unmapped by the caller.
char* touch_fresh_pages(long pages) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, static_cast<size_t>(pages) * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  madvise(p, static_cast<size_t>(pages) * ps, MADV_NOHUGEPAGE);
  for (long i = 0; i < pages; ++i) static_cast<volatile char*>(p)[static_cast<size_t>(i) * ps] = 1;
  return static_cast<char*>(p);
}

}  // namespace

// The uncounted baseline (the deferred split's idle shrinker runs) runs with
// the counters on, before their first reading: its page faults are not the
// operation's.
TEST(CountPerOp, UncountedWorkRunsFirstAndIsNotCounted) {
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::string order;
  char* baseline_pages = nullptr;
  char* op_pages = nullptr;
  std::vector<std::string> unavailable;
  auto counts = count_per_op(
      1,
      [&] {
        order += "op ";
        op_pages = touch_fresh_pages(8);
        return op_pages ? Status::ok() : Status::from_errno("mmap");
      },
      &unavailable,
      [&] {
        order += "uncounted ";
        baseline_pages = touch_fresh_pages(256);
        return baseline_pages ? Status::ok() : Status::from_errno("mmap");
      });
  ASSERT_TRUE(counts) << counts.status().message();
  EXPECT_EQ(order, "uncounted op ");
  if (baseline_pages) munmap(baseline_pages, 256 * ps);
  if (op_pages) munmap(op_pages, 8 * ps);
  if (!unavailable.empty() || counts->page_faults < 0) GTEST_SKIP() << "perf page-faults counter unavailable here";
  EXPECT_GE(counts->page_faults, 8);
  EXPECT_LT(counts->page_faults, 256) << "the uncounted work's faults were counted";
}

TEST(CountPerOp, AFailingUncountedStepIsReturnedAndTheOperationDoesNotRun) {
  bool ran = false;
  auto counts = count_per_op(
      1,
      [&] {
        ran = true;
        return Status::ok();
      },
      nullptr, [] { return Status::error("idle shrinker run failed"); });
  ASSERT_FALSE(counts);
  EXPECT_EQ(counts.status().message(), "idle shrinker run failed");
  EXPECT_FALSE(ran);
}
