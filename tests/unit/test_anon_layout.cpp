// The layout is the base of every fork workload: its VMAs must really be
// separate, faulted, and its checks must be able to fail.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

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

// Out of memory is the layout's error, with errno's words, never an exit:
// under an RLIMIT_DATA with 8 MiB of room (anonymous private mappings count
// against it), a 64 MiB layout fails with ENOMEM and a small one still works.
TEST(AnonLayout, OutOfMemoryIsAnErrorNotAnExit) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::ifstream status("/proc/self/status");
    long data_kb = -1;
    for (std::string line; std::getline(status, line);)
      if (line.rfind("VmData:", 0) == 0) data_kb = std::stol(line.substr(7));
    if (data_kb < 0) _exit(10);
    const rlim_t limit = static_cast<rlim_t>(data_kb + 8 * 1024) * 1024;
    rlimit rl{limit, limit};
    if (setrlimit(RLIMIT_DATA, &rl) != 0) _exit(11);
    auto big = AnonLayout::create(16384);
    if (big) _exit(12);
    if (big.status().message().find("Cannot allocate memory") == std::string::npos) _exit(13);
    auto small = AnonLayout::create(16);
    _exit(small && !small->verify().failed() ? 0 : 14);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: no VmData, 11: setrlimit, 12: the big layout fit, 13: not ENOMEM's words, "
                                       "14: the small layout failed";
}
