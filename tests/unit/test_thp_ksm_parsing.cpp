// Pure parsing and arithmetic of the THP and KSM helpers: smaps
// AnonHugePages of a range, pagemap entries, kpageflags census, the size
// mode, /proc/<pid>/stat CPU ticks, /proc/<pid>/schedstat, and what a KSM
// merge must end with under max_page_sharing. Plus two real reads of this
// process (smaps, stat) that need nothing special.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "kernels/procfs/ksm_users.hpp"
#include "benchmarks/mm/ksm.hpp"
#include "benchmarks/mm/thp.hpp"

using namespace rmapbench;
using namespace rmapbench::mm;

namespace {

// Two VMAs with THPs around one without; the fields between headers vary.
const char* kSmaps =
    "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
    "Size:                328 kB\n"
    "AnonHugePages:         0 kB\n"
    "VmFlags: rd ex mr mw me dw\n"
    "7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \n"
    "Size:               4096 kB\n"
    "Rss:                4096 kB\n"
    "Anonymous:          4096 kB\n"
    "AnonHugePages:      4096 kB\n"
    "THPeligible:    1\n"
    "VmFlags: rd wr mr mw me ac hg\n"
    "7f0000400000-7f0000401000 ---p 00000000 00:00 0 \n"
    "Size:                  4 kB\n"
    "AnonHugePages:         0 kB\n"
    "7f0000401000-7f0000601000 rw-p 00000000 00:00 0 \n"
    "Size:               2048 kB\n"
    "AnonHugePages:      2048 kB\n"
    "VmFlags: rd wr mr mw me ac hg\n"
    "7ffd8a2e1000-7ffd8a302000 rw-p 00000000 00:00 0   [stack]\n"
    "AnonHugePages:         0 kB\n";

TEST(SmapsAnonHugePages, SumsTheVmasOverlappingTheRange) {
  auto all = thp::parse_smaps_anon_huge_kb(kSmaps, 0x7f0000000000, 0x7f0000601000);
  ASSERT_TRUE(all) << all.status().message();
  EXPECT_EQ(*all, 6144);
  auto first = thp::parse_smaps_anon_huge_kb(kSmaps, 0x7f0000000000, 0x7f0000400000);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 4096);
  // A range touching only part of a VMA counts the whole VMA (smaps is per VMA).
  auto part = thp::parse_smaps_anon_huge_kb(kSmaps, 0x7f0000500000, 0x7f0000501000);
  ASSERT_TRUE(part);
  EXPECT_EQ(*part, 2048);
  // Bounds are half-open: the range ending where a VMA starts does not count it.
  auto before = thp::parse_smaps_anon_huge_kb(kSmaps, 0x7effff000000, 0x7f0000000000);
  ASSERT_TRUE(before);
  EXPECT_EQ(*before, 0);
}

TEST(SmapsAnonHugePages, FieldNamesStartingWithHexLettersAreNotHeaders) {
  // "AnonHugePages:", "Anonymous:" begin with 'A' (a hex digit in upper case):
  // only lower-case "lo-hi " lines are VMA headers.
  auto kb = thp::parse_smaps_anon_huge_kb(kSmaps, 0x7ffd8a2e1000, 0x7ffd8a302000);
  ASSERT_TRUE(kb);
  EXPECT_EQ(*kb, 0);
}

TEST(SmapsAnonHugePages, MalformedTextIsAnError) {
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb("AnonHugePages: 2048 kB\n", 0, ~0ul));  // before any header
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb("1000-2000 rw-p 0 0:0 0\nAnonHugePages: lots kB\n", 0, ~0ul));
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb("1000-2000 rw-p 0 0:0 0\nAnonHugePages: 2048 MB\n", 0, ~0ul));
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb("10zz-2000 rw-p 0 0:0 0\n", 0, ~0ul));
  // Negative sizes and sums past any memory size are garbage, not a count.
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb("1000-2000 rw-p 0 0:0 0\nAnonHugePages: -2048 kB\n", 0, ~0ul));
  EXPECT_FALSE(thp::parse_smaps_anon_huge_kb(
      "1000-2000 rw-p 0 0:0 0\nAnonHugePages: 9223372036854775807 kB\n"
      "2000-3000 rw-p 0 0:0 0\nAnonHugePages: 9223372036854775807 kB\n",
      0, ~0ul));
  auto empty = thp::parse_smaps_anon_huge_kb("", 0, ~0ul);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, 0);
}

TEST(SmapsAnonHugePages, ReadsThisProcess) {
  // A 4 MiB private mapping without MADV_HUGEPAGE on a host in madvise mode
  // (or with THP off) has no AnonHugePages; the read must at least work.
  const size_t len = 4 << 20;
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  madvise(p, len, MADV_NOHUGEPAGE);
  static_cast<char*>(p)[0] = 1;
  auto kb = thp::anon_huge_kb(0, reinterpret_cast<uintptr_t>(p), len);
  ASSERT_TRUE(kb) << kb.status().message();
  EXPECT_EQ(*kb, 0);
  munmap(p, len);
}

TEST(Pagemap, DecodesPresentSwappedAndPfn) {
  auto present = decode_pagemap((1ull << 63) | (1ull << 56) | 0x12345);
  EXPECT_TRUE(present.present);
  EXPECT_FALSE(present.swapped);
  EXPECT_EQ(present.pfn, 0x12345u);
  auto hidden = decode_pagemap(1ull << 63);  // not CAP_SYS_ADMIN: PFN zeroed
  EXPECT_TRUE(hidden.present);
  EXPECT_EQ(hidden.pfn, 0u);
  auto swapped = decode_pagemap((1ull << 62) | 0x7f);  // swap type/offset, not a PFN
  EXPECT_FALSE(swapped.present);
  EXPECT_TRUE(swapped.swapped);
  EXPECT_EQ(swapped.pfn, 0u);
  EXPECT_FALSE(decode_pagemap(0).present);
}

TEST(KpageflagsCensus, CountsThpHeadsAndKsmPages) {
  FolioCensus c;
  census_add(c, kKpfThp | kKpfCompoundHead);
  for (int i = 0; i < 15; ++i) census_add(c, kKpfThp | kKpfCompoundTail);
  census_add(c, kKpfKsm);
  census_add(c, 0);             // present, small folio
  census_add(c, std::nullopt);  // not present
  EXPECT_EQ(c.pages, 19);
  EXPECT_EQ(c.present, 18);
  EXPECT_EQ(c.thp_pages, 16);
  EXPECT_EQ(c.thp_heads, 1);
  EXPECT_EQ(c.ksm_pages, 1);
}

// A page never offered to KSM that kpageflags reads as KSM is the kernel
// confusing the two folio->mapping kinds: an error naming the process.
TEST(KpageflagsCensus, NeverMergedPagesReadingAsKsmAreAnError) {
  FolioCensus clean, confused;
  census_add(clean, kKpfThp | kKpfCompoundHead);
  census_add(clean, 0);
  census_add(confused, 0);
  census_add(confused, kKpfKsm);
  auto who = [](size_t k) { return "process " + std::to_string(k); };
  EXPECT_FALSE(check_never_merged({clean, clean}, who, "after the split").failed());
  Status s = check_never_merged({clean, confused}, who, "after the split");
  ASSERT_TRUE(s.failed());
  EXPECT_FALSE(s.skipped());
  EXPECT_NE(s.message().find("after the split: process 1 maps 1 pages that read as KSM"), std::string::npos)
      << s.message();
}

TEST(ThpSizeMode, InheritTakesTheTopLevelMode) {
  EXPECT_EQ(thp::effective_mode("inherit", "madvise"), "madvise");
  EXPECT_EQ(thp::effective_mode("inherit", "never"), "never");
  EXPECT_EQ(thp::effective_mode("never", "always"), "never");
  EXPECT_EQ(thp::effective_mode("madvise", "never"), "madvise");
}

TEST(ThpEvents, DifferenceAndSumKeepUnknownPerSizeStats) {
  thp::ThpEvents a{10, 4, 3, 7, 5}, b{4, 1, 1, 2, 2};
  thp::ThpEvents d = a - b;
  EXPECT_EQ(d.split_pmd, 6);
  EXPECT_EQ(d.split_page, 3);
  EXPECT_EQ(d.deferred_split_page, 2);
  EXPECT_EQ(d.size_split, 5);
  EXPECT_EQ(d.size_split_deferred, 3);
  thp::ThpEvents no_stats{1, 1, 1, -1, -1};
  EXPECT_EQ((no_stats - b).size_split, -1);
  thp::ThpEvents sum;
  sum += d;
  sum += d;
  EXPECT_EQ(sum.split_pmd, 12);
  EXPECT_EQ(sum.size_split, 10);
  EXPECT_EQ(sum.samples, 2);
  sum += no_stats - b;
  EXPECT_EQ(sum.size_split, -1);  // one sample without per-size stats: unknown
}

// /proc/<pid>/stat: fields 14 (utime) and 15 (stime), counted after the last ')'.
TEST(ProcStat, UtimePlusStime) {
  const char* ksmd = "37 (ksmd) S 2 0 0 0 -1 2097216 0 0 0 0 1234 56 0 0 25 5 1 0 24 0 0 18446744073709551615 0";
  auto t = ksm::parse_stat_cpu_ticks(ksmd);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(*t, 1290);
}

TEST(ProcStat, CommWithSpacesAndParentheses) {
  const char* odd = "4242 (a) b (c d)) R 1 4242 4242 0 -1 4194304 100 0 0 0 7 3 0 0 20 0 1 0 500 0 0";
  auto t = ksm::parse_stat_cpu_ticks(odd);
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_EQ(*t, 10);
}

TEST(ProcStat, MalformedIsAnError) {
  EXPECT_FALSE(ksm::parse_stat_cpu_ticks("37 ksmd S 2 0"));                       // no ')'
  EXPECT_FALSE(ksm::parse_stat_cpu_ticks("37 (ksmd) S 2 0 0 0 -1 2097216 0 0"));  // too short
  EXPECT_FALSE(ksm::parse_stat_cpu_ticks("37 (ksmd) S 2 0 0 0 -1 2097216 0 0 0 0 x 56 0"));
}

TEST(ProcStat, ReadsThisProcess) {
  std::ifstream in("/proc/self/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  auto t = ksm::parse_stat_cpu_ticks(ss.str());
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_GE(*t, 0);
}

TEST(Schedstat, FirstFieldIsNanosecondsOnCpu) {
  auto ns = ksm::parse_schedstat_ns("123456789 42 17\n");
  ASSERT_TRUE(ns);
  EXPECT_EQ(*ns, 123456789);
  EXPECT_FALSE(ksm::parse_schedstat_ns(""));
  EXPECT_FALSE(ksm::parse_schedstat_ns("abc 1 2"));
  EXPECT_FALSE(ksm::parse_schedstat_ns("-5 1 2"));
}

TEST(KsmStat, NamedFieldOfProcKsmStat) {
  const char* text =
      "ksm_rmap_items 64\nksm_zero_pages 0\nksm_merging_pages 13\nksm_process_profit 49152\n"
      "ksm_merge_any: no\nksm_mergeable: yes\n";
  auto items = ksm::parse_ksm_stat_field(text, "ksm_rmap_items");
  ASSERT_TRUE(items) << items.status().message();
  EXPECT_EQ(*items, 64);
  auto merging = ksm::parse_ksm_stat_field(text, "ksm_merging_pages");
  ASSERT_TRUE(merging);
  EXPECT_EQ(*merging, 13);
  EXPECT_FALSE(ksm::parse_ksm_stat_field(text, "ksm_rmap"));        // a prefix is not the field
  EXPECT_FALSE(ksm::parse_ksm_stat_field(text, "ksm_merge_any"));   // "name:" lines are not numbers
  EXPECT_FALSE(ksm::parse_ksm_stat_field("ksm_rmap_items x\n", "ksm_rmap_items"));
  EXPECT_FALSE(ksm::parse_ksm_stat_field("", "ksm_rmap_items"));
}

TEST(KsmExpected, OneContentUnderTheCap) {
  // 4 processes x 1024 identical pages, max_page_sharing 256: 16 KSM pages.
  auto e = ksm::expected_merge(ksm::mappers_per_content(4, 1024, 1), 256);
  EXPECT_EQ(e.shared, 16);
  EXPECT_EQ(e.sharing, 4096 - 16);
  // Below the cap: one KSM page.
  e = ksm::expected_merge(ksm::mappers_per_content(2, 100, 1), 256);
  EXPECT_EQ(e.shared, 1);
  EXPECT_EQ(e.sharing, 199);
  // A partial last KSM page: 300 mappers, cap 256 -> 2 pages.
  e = ksm::expected_merge({300}, 256);
  EXPECT_EQ(e.shared, 2);
  EXPECT_EQ(e.sharing, 298);
}

TEST(KsmExpected, DistinctContentsEachDuplicated) {
  // 2 processes x 512 pages, 64 contents: each content 16 mappers.
  auto m = ksm::mappers_per_content(2, 512, 64);
  ASSERT_EQ(m.size(), 64u);
  EXPECT_EQ(m[0], 16);
  auto e = ksm::expected_merge(m, 256);
  EXPECT_EQ(e.shared, 64);
  EXPECT_EQ(e.sharing, 1024 - 64);
  // max_page_sharing 16 over 8 x 512 identical pages: 256 KSM pages (chains).
  e = ksm::expected_merge(ksm::mappers_per_content(8, 512, 1), 16);
  EXPECT_EQ(e.shared, 256);
  EXPECT_EQ(e.sharing, 3840);
}

TEST(KsmExpected, UniqueContentsDoNotMerge) {
  // One process, every page different: nothing to merge.
  auto e = ksm::expected_merge(ksm::mappers_per_content(1, 64, 64), 256);
  EXPECT_EQ(e.shared, 0);
  EXPECT_EQ(e.sharing, 0);
  // The kernel's minimum cap is 2.
  e = ksm::expected_merge({5}, 1);
  EXPECT_EQ(e.shared, 3);
  EXPECT_EQ(e.sharing, 2);
}

TEST(KsmRegion, VerifiesContentAndOwnWrites) {
  auto r = ksm::KsmRegion::create(8, 2, 7);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_TRUE(r->verify({}, "test"));
  r->mark(3);
  EXPECT_TRUE(r->verify([](long j) { return j == 3; }, "test"));
  Status s = r->verify({}, "test");
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("leaked in"), std::string::npos) << s.message();
  r->corrupt_one_byte_for_test(5);
  s = r->verify([](long j) { return j == 3; }, "test");
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("page 5"), std::string::npos) << s.message();
  // Pages with the same content index hold the same bytes (what KSM merges).
  auto r2 = ksm::KsmRegion::create(4, 2, 7);
  ASSERT_TRUE(r2);
  const size_t ps = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_EQ(std::string(r2->start(), ps), std::string(r2->start() + 2 * ps, ps));
  EXPECT_NE(std::string(r2->start(), ps), std::string(r2->start() + ps, ps));
}

}  // namespace

TEST(KsmUsers, ParsesKsmStatOfEveryKernelVersion) {
  using rmapbench::host::parse_ksm_stat;
  auto s = parse_ksm_stat(
      "ksm_rmap_items 4096\nksm_zero_pages 0\nksm_merging_pages 4095\nksm_process_profit 16000\n"
      "ksm_merge_any: no\nksm_mergeable: yes\n");
  EXPECT_EQ(s.rmap_items, 4096);
  EXPECT_EQ(s.merging_pages, 4095);
  EXPECT_FALSE(s.merge_any);
  EXPECT_TRUE(s.mergeable);
  EXPECT_TRUE(s.uses_ksm());
  // 6.1: only the rmap items line.
  auto old = parse_ksm_stat("ksm_rmap_items 0\n");
  EXPECT_FALSE(old.uses_ksm());
  // Opted in, nothing scanned yet: still a user.
  EXPECT_TRUE(parse_ksm_stat("ksm_rmap_items 0\nksm_merging_pages 0\nksm_merge_any: yes\nksm_mergeable: no\n").uses_ksm());
  EXPECT_FALSE(parse_ksm_stat("garbage\nksm_rmap_items x\n").uses_ksm());
}

TEST(KsmUsers, DescribesOthersAndNeverListsThisProcess) {
  std::vector<rmapbench::host::KsmUser> users(7);
  for (size_t i = 0; i < users.size(); ++i) {
    users[i].pid = static_cast<pid_t>(100 + i);
    users[i].comm = "qemu";
    users[i].stat.rmap_items = 10;
    users[i].stat.merging_pages = 5;
  }
  users[1].stat = {};
  users[1].stat.mergeable = true;
  const std::string d = rmapbench::host::describe_ksm_users(users, 5);
  EXPECT_NE(d.find("qemu (pid 100: 5 pages merged, 10 tracked)"), std::string::npos) << d;
  EXPECT_NE(d.find("pid 101: MADV_MERGEABLE, nothing merged yet"), std::string::npos) << d;
  EXPECT_NE(d.find("and 2 more"), std::string::npos) << d;
  for (const auto& u : rmapbench::host::other_ksm_users()) EXPECT_NE(u.pid, getpid());
}

// KSM pages can be in any private mapping (PR_SET_MEMORY_MERGE merges the
// COWed pages of a process's .data and its libraries'): the scan for who
// blocks max_page_sharing reads every private mapping except [vsyscall],
// those with nothing resident or no KSM pages (smaps), and those too large to
// read page by page (ASan's shadow is terabytes: reading its pagemap failed
// the KSM workloads under ASan), which it counts when they hold KSM pages.
TEST(KsmPageHolders, CandidateRangesFromSmaps) {
  const std::string smaps =
      "55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]\n"
      "Rss:                  12 kB\n"
      "KSM:                   4 kB\n"
      "7f0000000000-7f0000200000 rw-p 00000000 00:00 0 \n"
      "Rss:                 100 kB\n"
      "7f0000200000-7f0000400000 rw-s 00000000 00:01 1234                       /dev/zero (deleted)\n"
      "Rss:                 100 kB\n"
      "7f1000000000-7f1000010000 rw-p 00010000 08:01 5678                       /usr/lib/libc.so.6\n"
      "Rss:                   8 kB\n"
      "KSM:                   0 kB\n"
      "7f2000000000-7f2000010000 rw-p 00000000 00:00 0 \n"
      "Rss:                   0 kB\n"
      "100000000000-110000000000 rw-p 00000000 00:00 0 \n"
      "Rss:                  64 kB\n"
      "KSM:                   8 kB\n"
      "7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n"
      "Rss:                  16 kB\n"
      "VmFlags: rd wr mr mw me gd ac\n"
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
      "Rss:                   0 kB\n"
      "garbage line\n";
  long too_large = 0;
  auto r = ksm_candidate_ranges(smaps, &too_large);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].first, 0x55d0c0a00000u);
  EXPECT_EQ(r[0].second, 0x21000u);
  EXPECT_EQ(r[1].second, 0x200000u);  // no KSM line (older kernels): read
  EXPECT_EQ(r[2].first, 0x7ffc00000000u);
  EXPECT_EQ(too_large, 1);
}
