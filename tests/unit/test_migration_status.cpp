// The pure logic of page migration (benchmarks/mm/migration.hpp): what a
// move_pages(2) status array says, the frames every mapper must agree on,
// the vmstat deltas and the tracepoint-count oracle on the rmap walk. Plus
// the queries that work on one node (this process's pages are on a node; a
// move to the node they are on moves nothing).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "benchmarks/mm/migration.hpp"
#include "kernels/host/host_facts.hpp"

using namespace rmapbench::mm::migration;

TEST(MigrationStatus, AllOnTargetIsMoved) {
  MoveOutcome o = decode_statuses({1, 1, 1, 1}, 1);
  EXPECT_EQ(o.pages, 4);
  EXPECT_EQ(o.on_target, 4);
  EXPECT_EQ(o.elsewhere, 0);
  EXPECT_TRUE(o.not_moved_by_errno.empty());
  EXPECT_TRUE(o.all_moved());
  EXPECT_EQ(o.summary(), "4 of 4 pages on node 1");
}

TEST(MigrationStatus, NegativeStatusesAreCountedByErrnoNeverAsMoved) {
  std::vector<int> status(64, 1);
  status[3] = -EBUSY;
  status[9] = -EBUSY;
  status[40] = -EAGAIN;
  MoveOutcome o = decode_statuses(status, 1);
  EXPECT_EQ(o.on_target, 61);
  EXPECT_EQ(o.not_moved(), 3);
  EXPECT_FALSE(o.all_moved());
  EXPECT_EQ(o.not_moved_by_errno.at(-EBUSY), 2);
  EXPECT_EQ(o.not_moved_by_errno.at(-EAGAIN), 1);
  EXPECT_EQ(o.summary(), "3 of 64 pages not moved to node 1: 2 EBUSY, 1 EAGAIN");
}

TEST(MigrationStatus, OtherNodesAreElsewhere) {
  MoveOutcome o = decode_statuses({0, 1, 2, -ENOENT}, 1);
  EXPECT_EQ(o.on_target, 1);
  EXPECT_EQ(o.elsewhere, 2);
  EXPECT_EQ(o.not_moved_by_errno.at(-ENOENT), 1);
  EXPECT_EQ(o.summary(), "3 of 4 pages not moved to node 1: 1 ENOENT, 2 still on another node");
}

// move_pages(2) returning a positive count leaves the failed batch's statuses
// unwritten: the summary names the count the kernel gave.
TEST(MigrationStatus, KernelCountOfUnmigratedPagesIsNamed) {
  MoveOutcome o = decode_statuses({0, 0, 1}, 1);
  o.kernel_not_migrated = 2;
  EXPECT_EQ(o.summary(), "2 of 3 pages not moved to node 1: 2 still on another node; the kernel reported 2 pages it "
                         "could not migrate");
}

TEST(MigrationStatus, NoPagesIsNotMoved) {
  MoveOutcome o = decode_statuses({}, 0);
  EXPECT_FALSE(o.all_moved());
}

TEST(MigrationStatus, ErrnoNames) {
  EXPECT_EQ(errno_name(-EBUSY), "EBUSY");
  EXPECT_EQ(errno_name(EACCES), "EACCES");
  EXPECT_EQ(errno_name(-ENOMEM), "ENOMEM");
  EXPECT_EQ(errno_name(-EFAULT), "EFAULT");
  EXPECT_EQ(errno_name(9999), "errno 9999");
}

TEST(MigrationFrames, AgreeingFramesAreFine) {
  EXPECT_EQ(frame_disagreement({{5, 6, 7}, {5, 6, 7}, {5, 6, 7}}, {"us", "sharer 0", "sharer 1"}), "");
  EXPECT_EQ(frame_disagreement({}, {}), "");
}

TEST(MigrationFrames, FirstDifferenceIsNamed) {
  EXPECT_EQ(frame_disagreement({{5, 6, 7}, {5, 8, 7}}, {"us", "sharer 0"}),
            "page 1: us maps frame 0x6, sharer 0 maps frame 0x8");
  EXPECT_EQ(frame_disagreement({{5, 0}, {5, 0}}, {"us", "sharer 0"}), "page 1 is not present in us");
  EXPECT_EQ(frame_disagreement({{5, 6}, {5}}, {"us", "sharer 0"}), "sharer 0 has 1 pages, us has 2");
}

TEST(MigrationStats, FromVmstatAndDeltas) {
  Stats before = stats_from_vmstat({{"pgmigrate_success", 100}, {"pgmigrate_fail", 3}, {"thp_migration_success", 1}});
  Stats after = stats_from_vmstat({{"pgmigrate_success", 164}, {"pgmigrate_fail", 5}, {"thp_migration_success", 3}});
  Stats d = after - before;
  EXPECT_EQ(d.success, 64);
  EXPECT_EQ(d.fail, 2);
  EXPECT_EQ(d.thp_success, 2);
  EXPECT_EQ(d.thp_fail, -1);  // no such line: stays unknown
  EXPECT_EQ(d.thp_split, -1);
}

TEST(MigrationEntries, ExactCountsPass) {
  EXPECT_EQ(entry_count_problem({320, 320, 0, 0}, 320, 0), "");
  EXPECT_EQ(entry_count_problem({0, 0, 10, 10}, 0, 10), "");
  EXPECT_EQ(entry_count_problem({64, 64, -1, -1}, 64, 0), "");  // no PMD events, no PMD mappings
}

// The known-answer kernel that misses the last mapping: with 4 sharers each
// of 64 pages is mapped 5 times, but only 4 mappings get an entry (and the
// migration is retried): the count must not match.
TEST(MigrationEntries, AWalkThatMissesAMappingIsNamed) {
  const std::string p = entry_count_problem({2560, 2560, 0, 0}, 320, 0);
  EXPECT_NE(p.find("2560 migration entries set for 320 pte mappings"), std::string::npos) << p;
  EXPECT_EQ(entry_count_problem({256, 256, 0, 0}, 320, 0).find("256 migration entries set for 320"), 0u);
}

TEST(MigrationEntries, EntriesSetButNotRemovedAreNamed) {
  const std::string p = entry_count_problem({320, 300, 0, 0}, 320, 0);
  EXPECT_NE(p.find("320 pte migration entries set but 300 removed"), std::string::npos) << p;
}

TEST(MigrationEntries, PmdMappingsWithoutPmdEventsAreNamed) {
  EXPECT_NE(entry_count_problem({0, 0, -1, -1}, 0, 5).find("no set_migration_pmd tracepoint"), std::string::npos);
}

TEST(MigrationEntries, Deltas) {
  EntryCounts d = EntryCounts{10, 9, -1, -1} - EntryCounts{4, 4, -1, -1};
  EXPECT_EQ(d.set_pte, 6);
  EXPECT_EQ(d.remove_pte, 5);
  EXPECT_EQ(d.set_pmd, -1);
}

// On any host: this process's faulted pages are on some node, and the node
// query agrees with itself; a range not mapped reads as -EFAULT or -ENOENT.
TEST(MigrationQueries, NodesOfFaultedPages) {
  const long ps = sysconf(_SC_PAGESIZE);
  void* p = mmap(nullptr, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  for (int i = 0; i < 3; ++i) static_cast<char*>(p)[i * ps] = 1;  // the 4th page never faulted
  auto nodes = nodes_of(0, p, 4);
  if (!nodes && nodes.status().skipped()) {
    munmap(p, 4 * ps);
    GTEST_SKIP() << nodes.status().message();  // the arm64 unit tests run under qemu-user
  }
  ASSERT_TRUE(nodes) << nodes.status().message();
  ASSERT_EQ(nodes->size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_GE((*nodes)[i], 0);
  EXPECT_LT((*nodes)[3], 0);
  // Moving to the node they are on: nothing to do, every page reported there.
  auto moved = move_range(0, p, 3, (*nodes)[0], false, 1);
  ASSERT_TRUE(moved) << moved.status().message();
  EXPECT_TRUE(moved->outcome.all_moved()) << moved->outcome.summary();
  munmap(p, 4 * ps);
}

TEST(MigrationQueries, OtherNodeSkipsOnOneNode) {
  auto other = other_node(0);
  if (rmapbench::host::numa_node_count() >= 2) {
    ASSERT_TRUE(other);
    EXPECT_NE(*other, 0);
  } else {
    ASSERT_FALSE(other);
    EXPECT_TRUE(other.status().skipped());
    EXPECT_EQ(other.status().message(), "needs >= 2 NUMA nodes (this host has 1)");
  }
}
