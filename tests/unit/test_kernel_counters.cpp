// Slab/vmstat/meminfo parsers and readers, SlabReader sources, perf counters.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.hpp"
#include "kernels/procfs/kernel_counters.hpp"
#include "kernels/perf/perf_events.hpp"

namespace fs = std::filesystem;
using namespace rmapbench;
using namespace rmapbench::mm;

using rmapbench::testing::slurp;
namespace {

const std::string kData = std::string(RMAPBENCH_TEST_DATA_DIR) + "/host/";

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

using rmapbench::testing::TempDir;

// A /sys/kernel/slab look-alike: anon_vma on its own, anon_vma_chain merged
// into :A-0000064 together with fs_cache and eventpoll_pwq.
std::string make_sysfs_slab(const TempDir& dir) {
  std::string root = dir.path + "/slab";
  fs::create_directories(root + "/anon_vma");
  fs::create_directories(root + "/:A-0000064");
  write_file(root + "/anon_vma/objects", "349 N0=349\n");
  write_file(root + "/anon_vma/aliases", "0\n");
  write_file(root + "/:A-0000064/objects", "552 N0=552\n");
  write_file(root + "/:A-0000064/aliases", "2\n");
  for (const char* alias : {"anon_vma_chain", "fs_cache", "eventpoll_pwq"})
    fs::create_directory_symlink(":A-0000064", root + "/" + alias);
  return root;
}

}  // namespace

TEST(SlabObjects, ParsesSysfsObjects) {
  EXPECT_EQ(*parse_sysfs_slab_objects(slurp(kData + "slab_objects_one_node.txt")), 468);
  EXPECT_EQ(*parse_sysfs_slab_objects(slurp(kData + "slab_objects_two_nodes.txt")), 1024);
  EXPECT_EQ(*parse_sysfs_slab_objects("  12\n"), 12);
}

TEST(SlabObjects, MalformedIsAnError) {
  EXPECT_FALSE(parse_sysfs_slab_objects(slurp(kData + "slab_objects_malformed.txt")));
  EXPECT_FALSE(parse_sysfs_slab_objects(""));
  EXPECT_FALSE(parse_sysfs_slab_objects("\n"));
  EXPECT_FALSE(parse_sysfs_slab_objects("-3 N0=-3"));
  EXPECT_FALSE(parse_sysfs_slab_objects("12abc"));
  EXPECT_FALSE(parse_sysfs_slab_objects("99999999999999999999999"));
}

TEST(Slabinfo, ParsesActiveObjectsAndSkipsHeaders) {
  auto m = parse_slabinfo(slurp(kData + "slabinfo.txt"));
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m->at("anon_vma"), 349);
  EXPECT_EQ(m->at("anon_vma_chain"), 399);
  EXPECT_EQ(m->at("vm_area_struct"), 927);
  EXPECT_EQ(m->at("btrfs_delayed_node"), 0);
  EXPECT_EQ(m->size(), 5u);
}

TEST(Slabinfo, TruncatedEmptyGarbageAndOtherVersionsAreErrors) {
  auto cut = parse_slabinfo(slurp(kData + "slabinfo_truncated.txt"));
  ASSERT_FALSE(cut);
  EXPECT_NE(cut.status().message().find("line 4"), std::string::npos) << cut.status().message();
  EXPECT_FALSE(parse_slabinfo(""));
  EXPECT_FALSE(parse_slabinfo("slabinfo - version: 2.1\n# name ...\n"));
  EXPECT_FALSE(parse_slabinfo("hello world\n"));
  EXPECT_FALSE(parse_slabinfo("slabinfo - version: 1.1\nanon_vma 1 2 3 4 5\n"));
  EXPECT_FALSE(parse_slabinfo(
      "anon_vma x 468 104 39 1 : tunables 0 0 0 : slabdata 12 12 0\n"));
}

TEST(Vmstat, ParsesAndRejectsMalformed) {
  auto m = parse_vmstat(slurp(kData + "vmstat.txt"));
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m->at("pgfault"), 1234567);
  EXPECT_EQ(m->at("thp_split_pmd"), 7);
  EXPECT_EQ(m->size(), 8u);
  EXPECT_FALSE(parse_vmstat(""));
  EXPECT_FALSE(parse_vmstat("pgfault\n"));
  EXPECT_FALSE(parse_vmstat("pgfault abc\n"));
  EXPECT_FALSE(parse_vmstat("pgfault 1 2\n"));
}

TEST(Meminfo, ConvertsKilobytesToBytes) {
  auto m = parse_meminfo(slurp(kData + "meminfo.txt"));
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m->at("MemTotal"), 24683620LL * 1024);
  EXPECT_EQ(m->at("AnonHugePages"), 4096LL * 1024);
  EXPECT_EQ(m->at("HugePages_Total"), 0);
  EXPECT_EQ(m->at("Hugepagesize"), 2048LL * 1024);
}

TEST(Meminfo, MalformedIsAnError) {
  EXPECT_FALSE(parse_meminfo(""));
  EXPECT_FALSE(parse_meminfo("MemTotal 123 kB\n"));
  EXPECT_FALSE(parse_meminfo("MemTotal: 123 MB\n"));
  EXPECT_FALSE(parse_meminfo("MemTotal:\n"));
  EXPECT_FALSE(parse_meminfo(": 12 kB\n"));
}

TEST(KernelCounters, ReadThisHost) {
  auto vm = read_vmstat();
  ASSERT_TRUE(vm) << vm.status().message();
  EXPECT_GT(vm->at("pgfault"), 0);
  auto mem = read_meminfo();
  ASSERT_TRUE(mem) << mem.status().message();
  EXPECT_GT(mem->at("MemTotal"), 0);
  EXPECT_EQ(mem->at("MemTotal") % 1024, 0);
}

TEST(SlabReader, SysfsSourceFollowsMergedCaches) {
  TempDir dir;
  std::string root = make_sysfs_slab(dir);
  auto r = SlabReader::open_at(root, dir.path + "/no-slabinfo");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->source(), root);
  EXPECT_EQ(*r->objects("anon_vma"), 349);
  EXPECT_EQ(*r->objects("anon_vma_chain"), 552);
  EXPECT_EQ(r->note("anon_vma"), "");
  std::string note = r->note("anon_vma_chain");
  EXPECT_NE(note.find(":A-0000064"), std::string::npos) << note;
  EXPECT_NE(note.find("eventpoll_pwq, fs_cache"), std::string::npos) << note;
  EXPECT_NE(note.find("aliases: 2"), std::string::npos) << note;
  EXPECT_EQ(note.find("anon_vma_chain,"), std::string::npos) << note;  // not listed as its own alias
  auto missing = r->objects("no_such_cache");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("no slab cache 'no_such_cache'"), std::string::npos);
  EXPECT_FALSE(r->objects("../etc"));
}

TEST(SlabReader, FallsBackToSlabinfo) {
  TempDir dir;
  auto r = SlabReader::open_at(dir.path + "/no-sysfs", kData + "slabinfo.txt");
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->source(), kData + "slabinfo.txt");
  EXPECT_EQ(*r->objects("anon_vma_chain"), 399);
  EXPECT_NE(r->note("anon_vma_chain").find("slab_nomerge"), std::string::npos);
  auto missing = r->objects("fs_cache");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("merged"), std::string::npos);
}

TEST(SlabReader, MalformedSourcesAreRejected) {
  TempDir dir;
  fs::create_directories(dir.path + "/slab/anon_vma");
  write_file(dir.path + "/slab/anon_vma/objects", "garbage\n");
  auto r = SlabReader::open_at(dir.path + "/slab", kData + "slabinfo_truncated.txt");
  ASSERT_FALSE(r);
  EXPECT_NE(r.status().message().find("/slab/anon_vma/objects"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("slabinfo_truncated.txt"), std::string::npos) << r.status().message();
}

TEST(SlabReader, NeitherSourceNamesBoth) {
  TempDir dir;
  auto r = SlabReader::open_at(dir.path + "/slab", dir.path + "/slabinfo");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), dir.path + "/slab/anon_vma/objects: No such file or directory; " + dir.path +
                                      "/slabinfo: No such file or directory");
}

// Both real sources are root-only (mode 0400): an unprivileged process is told so.
TEST(SlabReader, UnprivilegedGetsThePermissionReason) {
  if (geteuid() != 0) {
    auto r = SlabReader::open();
    ASSERT_FALSE(r);
    EXPECT_NE(r.status().message().find("needs root"), std::string::npos) << r.status().message();
    return;
  }
  if (access("/sys/kernel/slab/anon_vma/objects", F_OK) != 0) GTEST_SKIP() << "no /sys/kernel/slab here";
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    std::string msg = "setresuid failed";
    if (setresgid(65534, 65534, 65534) == 0 && setresuid(65534, 65534, 65534) == 0) {
      auto r = SlabReader::open();
      msg = r ? "opened: " + r->source() : r.status().message();
    }
    (void)!write(fds[1], msg.data(), msg.size());
    _exit(0);
  }
  close(fds[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) msg.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  waitpid(pid, nullptr, 0);
  EXPECT_EQ(msg, "/sys/kernel/slab/anon_vma/objects: Permission denied (needs root); "
                 "/proc/slabinfo: Permission denied (needs root)");
}

TEST(SlabReader, ThisHostAsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "slab counters need root";
  auto r = SlabReader::open();
  ASSERT_TRUE(r) << r.status().message();
  auto n = r->objects("anon_vma");
  ASSERT_TRUE(n) << n.status().message();
  EXPECT_GT(*n, 0);
}

TEST(Perf, SoftwareEventsAreTheFourNamed) {
  auto events = perf::software_events();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].name, "page-faults");
  EXPECT_EQ(events[1].name, "context-switches");
  EXPECT_EQ(events[2].name, "cpu-migrations");
  EXPECT_EQ(events[3].name, "task-clock");
}

TEST(Perf, PageFaultsCountOurFaultsAndInheritedChildren) {
  auto c = perf::Counter::open(perf::software_events()[0]);
  if (!c) GTEST_SKIP() << c.status().message();
  EXPECT_EQ(c->spec().name, "page-faults");
  auto before = c->read();
  ASSERT_TRUE(before) << before.status().message();
  const size_t pages = 64, page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  auto* mem = static_cast<char*>(mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(mem, MAP_FAILED);
  for (size_t i = 0; i < pages; ++i) mem[i * page] = 1;
  auto mid = c->read();
  ASSERT_TRUE(mid);
  EXPECT_GE(*mid - *before, pages);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (size_t i = 0; i < pages; ++i) mem[i * page] = 2;  // COW faults, counted via inherit
    _exit(0);
  }
  waitpid(pid, nullptr, 0);
  auto after = c->read();
  ASSERT_TRUE(after);
  EXPECT_GE(*after - *mid, pages);
  munmap(mem, pages * page);
}

TEST(Perf, MovedFromCounterReportsInsteadOfCrashing) {
  auto c = perf::Counter::open(perf::software_events()[3], 0, false);
  if (!c) GTEST_SKIP() << c.status().message();
  perf::Counter moved = std::move(*c);
  EXPECT_TRUE(moved.read());
  EXPECT_FALSE(c->read());
}

TEST(Perf, TracepointNamesAreChecked) {
  for (const char* bad : {"", "migrate", ":x", "x:", "a/b:c", "a:b/c", "a:b:c", "..:x"}) {
    auto tp = perf::tracepoint(bad);
    ASSERT_FALSE(tp) << bad;
    EXPECT_NE(tp.status().message().find("subsystem:event"), std::string::npos) << bad;
  }
}

TEST(Perf, TracepointLookupExplainsFailure) {
  auto tp = perf::tracepoint("migrate:mm_migrate_pages");
  if (!perf::tracefs_dir()) {
    ASSERT_FALSE(tp);
    EXPECT_NE(tp.status().message().find("tracefs not mounted"), std::string::npos) << tp.status().message();
    return;
  }
  if (tp) {
    EXPECT_EQ(tp->name, "migrate:mm_migrate_pages");
  }
  auto none = perf::tracepoint("migrate:no_such_event_here");
  ASSERT_FALSE(none);
  EXPECT_NE(none.status().message().find("migrate:no_such_event_here"), std::string::npos);
}
