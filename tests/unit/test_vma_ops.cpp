// The expected states of the vma_ops sequences (rmap_probe.hpp): where each
// layout page is after each sequence, which processes map which folio, which
// process a folio is walked from and which page each mapper drops. Pure, no
// kernel: a 4-folio layout of 4-page folios keeps the numbers readable.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <map>
#include <set>
#include <vector>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/rmap_probe.hpp"

namespace rmapbench::mm::rmap_probe {
namespace {

constexpr size_t kPage = 4096;
constexpr long kPpf = 4;  // pages per folio
constexpr uintptr_t kStart = 0x40000000;
constexpr uintptr_t kDestination = 0x80000000;
const Shape kLayout{kStart, 1, 4, kPpf, kPage};  // 16 pages, folios 0..3

std::vector<size_t> who_maps(const std::vector<View>& views, uint32_t seed, long folio) {
  auto m = mappers(views, kPpf);
  auto it = m.find({seed, folio});
  return it == m.end() ? std::vector<size_t>{} : it->second;
}

TEST(VmaOps, MremapMoveBeforeForkTakesEveryProcessToTheDestination) {
  const auto ours = after_remap(kLayout, Remap::move, kDestination);
  ASSERT_EQ(ours, (std::vector<Piece>{{kDestination, 1, 0, 16}}));
  const auto views = views_of(ours, ours, {101, 102}, "sharer");
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[0].who, "the benchmark process");
  EXPECT_EQ(views[0].pid, 0);
  EXPECT_EQ(views[2].who, "sharer 1");
  EXPECT_EQ(views[2].pid, 102);
  for (const View& v : views) EXPECT_EQ(v.pieces, ours);
  for (long f = 0; f < 4; ++f) EXPECT_EQ(who_maps(views, 1, f), (std::vector<size_t>{0, 1, 2}));
}

TEST(VmaOps, MremapMoveAfterForkLeavesTheSharersWhereTheyWere) {
  const auto views = views_of(after_remap(kLayout, Remap::move, kDestination), whole(kLayout), {101}, "sharer");
  EXPECT_EQ(views[0].pieces.front().start, kDestination);
  EXPECT_EQ(views[1].pieces.front().start, kStart);
  // The same folios, mapped at two addresses: both processes map each.
  for (long f = 0; f < 4; ++f) EXPECT_EQ(who_maps(views, 1, f), (std::vector<size_t>{0, 1}));
}

TEST(VmaOps, MremapGrowAddsTheNextFolioOfTheSameLayout) {
  const Remapped r = remapped(kLayout, Remap::grow, kDestination);
  EXPECT_EQ(r.start, kDestination);
  EXPECT_EQ(r.bytes, 20 * kPage);
  const auto ours = after_remap(kLayout, Remap::grow, kDestination);
  ASSERT_EQ(ours, (std::vector<Piece>{{kDestination, 1, 0, 16}, {kDestination + 16 * kPage, 1, 16, 4}}));
  // After fork, the grown folio is ours alone; before fork, everyone's.
  const auto after = views_of(ours, whole(kLayout), {101, 102}, "sharer");
  EXPECT_EQ(who_maps(after, 1, 4), (std::vector<size_t>{0}));
  EXPECT_EQ(who_maps(after, 1, 3), (std::vector<size_t>{0, 1, 2}));
  const auto before = views_of(ours, ours, {101, 102}, "sharer");
  EXPECT_EQ(who_maps(before, 1, 4), (std::vector<size_t>{0, 1, 2}));
}

TEST(VmaOps, MremapShrinkCutsHalfOfTheLastFolioInPlace) {
  const Remapped r = remapped(kLayout, Remap::shrink, kDestination);
  EXPECT_EQ(r.start, kStart);
  EXPECT_EQ(r.bytes, 14 * kPage);
  const auto ours = after_remap(kLayout, Remap::shrink, kDestination);
  ASSERT_EQ(ours, (std::vector<Piece>{{kStart, 1, 0, 14}}));
  // The last folio is still mapped (half of it) by the shrinking process.
  const auto views = views_of(ours, whole(kLayout), {101}, "sharer");
  EXPECT_EQ(who_maps(views, 1, 3), (std::vector<size_t>{0, 1}));
  // Each drops the last page it maps of each folio: ours page 13, theirs 15.
  EXPECT_EQ(drop_addresses(views[0], kPpf, kPage),
            (std::vector<uintptr_t>{kStart + 3 * kPage, kStart + 7 * kPage, kStart + 11 * kPage, kStart + 13 * kPage}));
  EXPECT_EQ(drop_addresses(views[1], kPpf, kPage).back(), kStart + 15 * kPage);
}

TEST(VmaOps, MprotectMiddleStartsAndEndsInsideFolios) {
  const auto [start, bytes] = mprotect_middle(kLayout);
  EXPECT_EQ(start, kStart + 2 * kPage);  // inside folio 0
  EXPECT_EQ(bytes, 12 * kPage);          // to inside folio 3
  EXPECT_NE((start - kStart) % (kPpf * kPage), 0u);
  EXPECT_NE((start + bytes - kStart) % (kPpf * kPage), 0u);
}

TEST(VmaOps, MunmapThenMergeGivesUsANewFolioAndLeavesTheOldOneToTheSharers) {
  const auto ours = after_munmap_then_merge(kLayout, 2);
  ASSERT_EQ(ours, (std::vector<Piece>{{kStart, 1, 0, 12}, {kStart + 12 * kPage, 2, 12, 4}}));
  const auto views = views_of(ours, whole(kLayout), {101, 102}, "sharer");
  EXPECT_EQ(who_maps(views, 1, 3), (std::vector<size_t>{1, 2}));  // the old last folio: the sharers only
  EXPECT_EQ(who_maps(views, 2, 3), (std::vector<size_t>{0}));     // the neighbour's: ours only
  // So the old last folio is walked from a sharer.
  const auto targets = walk_targets(views, kPpf, kPage);
  ASSERT_EQ(targets.size(), 5u);
  for (const WalkTarget& t : targets) {
    if (t.folio == FolioId{1, 3}) {
      EXPECT_EQ(t.view, 1u);
      EXPECT_EQ(t.start, kStart + 12 * kPage);
    } else {
      EXPECT_EQ(t.view, 0u);
    }
    EXPECT_EQ(t.pages, kPpf);
  }
}

TEST(VmaOps, ForkOfForkGrandchildrenMapBothLayouts) {
  const Shape childs_own{0x50000000, 3, 4, kPpf, kPage};
  const auto views = views_of_fork_of_fork(kLayout, childs_own, 200, {301, 302, 303});
  ASSERT_EQ(views.size(), 5u);
  EXPECT_EQ(views[1].who, "child");
  EXPECT_EQ(views[1].pid, 200);
  EXPECT_EQ(views[4].who, "grandchild 2");
  EXPECT_EQ(views[0].pieces, whole(kLayout));
  for (size_t i = 1; i < views.size(); ++i) ASSERT_EQ(views[i].pieces.size(), 2u);
  EXPECT_EQ(who_maps(views, 1, 0), (std::vector<size_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(who_maps(views, 3, 0), (std::vector<size_t>{1, 2, 3, 4}));
  // The child's folios are walked from the child.
  for (const WalkTarget& t : walk_targets(views, kPpf, kPage)) EXPECT_EQ(t.view, t.folio.first == 3 ? 1u : 0u);
}

TEST(VmaOps, OrphanedParentsFoliosAreMappedByTheOrphansAlone) {
  const Shape parents_own{0x50000000, 3, 4, kPpf, kPage};
  const auto views = views_of_orphaned(kLayout, parents_own, {401, 402});
  ASSERT_EQ(views.size(), 3u);
  EXPECT_EQ(views[2].who, "orphan 1");
  EXPECT_EQ(who_maps(views, 1, 2), (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(who_maps(views, 3, 2), (std::vector<size_t>{1, 2}));
}

TEST(VmaOps, WalkTargetsOneRangePerFolioEvenWhenAPieceStartsInsideIt) {
  // Pages 2..9: the end of folio 0, folio 1, the start of folio 2.
  const std::vector<View> views = {{"p", 0, {{kStart, 1, 2, 8}}}};
  const auto t = walk_targets(views, kPpf, kPage);
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].start, kStart);
  EXPECT_EQ(t[0].pages, 2);
  EXPECT_EQ(t[1].start, kStart + 2 * kPage);
  EXPECT_EQ(t[1].pages, 4);
  EXPECT_EQ(t[2].start, kStart + 6 * kPage);
  EXPECT_EQ(t[2].pages, 2);
  EXPECT_EQ(drop_addresses(views[0], kPpf, kPage),
            (std::vector<uintptr_t>{kStart + 1 * kPage, kStart + 5 * kPage, kStart + 7 * kPage}));
}

// The migration oracle: each page must be on its folio's target node; the
// first one that is not is named, with how many are not.
TEST(VmaOps, MisplacedNamesTheFirstPageOffItsFoliosTargetNode) {
  const View v{"orphan 0", 401, {{kStart, 1, 0, 8}, {0x50000000, 3, 0, 4}}};
  const std::map<FolioId, int> target = {{{1, 0}, 1}, {{1, 1}, 0}, {{3, 0}, 1}};
  EXPECT_EQ(misplaced(v, {{1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 1}}, target, kPpf, kPage).count, 0u);
  // Folio (1, 1) not moved (page 5 still on node 1), and one page of the
  // second piece not present (-ENOENT).
  const Misplaced m = misplaced(v, {{1, 1, 1, 1, 0, 1, 0, 0}, {1, 1, -2, 1}}, target, kPpf, kPage);
  EXPECT_EQ(m.count, 2u);
  EXPECT_EQ(m.address, kStart + 5 * kPage);
  EXPECT_EQ(m.seed, 1u);
  EXPECT_EQ(m.page, 5);
  EXPECT_EQ(m.node, 1);
  EXPECT_EQ(m.target, 0);
  // A folio without a target (never walked) is never where it should be.
  EXPECT_EQ(misplaced(v, {{1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 1, 1}}, {{{1, 0}, 1}, {{1, 1}, 0}}, kPpf, kPage).count, 4u);
}

TEST(VmaOps, MovedAndCutKeepTheLayoutPages) {
  const Piece p{kStart, 1, 4, 8};
  EXPECT_EQ(moved(p, 0x1000), (Piece{kStart + 0x1000, 1, 4, 8}));
  EXPECT_EQ(moved(p, -0x1000), (Piece{kStart - 0x1000, 1, 4, 8}));
  EXPECT_EQ(cut(p, 3), (Piece{kStart, 1, 4, 3}));
  EXPECT_EQ(cut(p, 20), p);
}

TEST(VmaOps, PatternDependsOnLayoutPageAndWordOnly) {
  std::set<uint64_t> words;
  for (uint32_t seed : {1u, 2u})
    for (long page : {0L, 1L, 511L, 512L})
      for (size_t w : {size_t{0}, size_t{1}}) words.insert(pattern_word(seed, page, w));
  EXPECT_EQ(words.size(), 16u);
  EXPECT_EQ(pattern_word(1, 7, 3), pattern_word(1, 7, 3));
}

// fill and verify on real memory: the pattern round-trips wherever the
// piece is, dropped pages must read as zeros, and a flipped byte is named
// with the process and the page.
TEST(VmaOps, VerifyNamesTheProcessAndThePageOfADifference) {
  const size_t ps = page_size();
  void* mem = mmap(nullptr, 4 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  const uintptr_t at = reinterpret_cast<uintptr_t>(mem);
  const View v{"sharer 3 (pid 77)", 0, {{at, 5, 40, 4}}};
  fill(v.pieces.front());
  EXPECT_FALSE(verify(v, {}).failed());
  // A page dropped by MADV_DONTNEED reads as zeros, which the pattern is not.
  ASSERT_EQ(madvise(reinterpret_cast<void*>(at + 3 * ps), ps, MADV_DONTNEED), 0);
  EXPECT_FALSE(verify(v, {at + 3 * ps}).failed());
  Status s = verify(v, {});
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("page 43"), std::string::npos) << s.message();
  corrupt_one_byte_for_test(v);
  s = verify(v, {at + 3 * ps});
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("sharer 3 (pid 77)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("layout 5 page 40"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("byte 100"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("corrupted"), std::string::npos) << s.message();
  munmap(mem, 4 * ps);
}

}  // namespace
}  // namespace rmapbench::mm::rmap_probe
