// The memory_failure workload's pure parts: the SIGBUS bookkeeping of its
// oracle, HardwareCorrupted, what a failed injection means, and the opt-in.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "benchmarks/harness/registry.hpp"
#include "benchmarks/mm/hwpoison.hpp"

using namespace rmapbench::mm::hwpoison;

namespace {

constexpr uintptr_t kAddr = 0x7f0000001000;

// Two sharers and a poisoner map the page; a bystander does not.
std::vector<ExpectedSigbus> layout() {
  return {{"bystander", 100, false, kAddr, {kMceErrAo}},
          {"sharer 0", 101, true, kAddr, {kMceErrAo}},
          {"sharer 1", 102, true, kAddr, {kMceErrAo}},
          {"poisoner", 103, true, kAddr, {kMceErrAo, kMceErrAr}}};
}

std::vector<ReceivedSigbus> all_as_expected() {
  return {{100, 0, 0, 0}, {101, 1, kMceErrAo, kAddr}, {102, 1, kMceErrAo, kAddr}, {103, 1, kMceErrAr, kAddr}};
}

std::string message_of(const rmapbench::Status& s) { return s.failed() ? s.message() : "ok"; }

}  // namespace

TEST(Hwpoison, EveryMapperSignalledAndNoBystanderPasses) {
  EXPECT_EQ(message_of(check_sigbus(layout(), all_as_expected(), "after MADV_HWPOISON")), "ok");
  auto ao = all_as_expected();
  ao[3].code = kMceErrAo;  // 6.1: the poisoner is signalled like the others
  EXPECT_EQ(message_of(check_sigbus(layout(), ao, "x")), "ok");
}

TEST(Hwpoison, AMissedMapperIsNamed) {
  auto got = all_as_expected();
  got[2].count = 0;
  const std::string m = message_of(check_sigbus(layout(), got, "SIGBUS after MADV_HWPOISON"));
  EXPECT_NE(m.find("SIGBUS after MADV_HWPOISON: missed"), std::string::npos) << m;
  EXPECT_NE(m.find("sharer 1 (pid 102)"), std::string::npos) << m;
  EXPECT_EQ(m.find("sharer 0"), std::string::npos) << m;
}

TEST(Hwpoison, ABystanderHitIsNamed) {
  auto got = all_as_expected();
  got[0] = {100, 1, kMceErrAo, kAddr};
  const std::string m = message_of(check_sigbus(layout(), got, "x"));
  EXPECT_NE(m.find("wrongly hit"), std::string::npos) << m;
  EXPECT_NE(m.find("bystander (pid 100): BUS_MCEERR_AO at 0x7f0000001000"), std::string::npos) << m;
}

TEST(Hwpoison, WrongAddressAndWrongCodeAreNamed) {
  auto got = all_as_expected();
  got[1].addr = kAddr + 0x1000;
  got[2].code = kMceErrAr;  // only the poisoner may get "action required"
  const std::string m = message_of(check_sigbus(layout(), got, "x"));
  EXPECT_NE(m.find("wrong si_addr: sharer 0 (pid 101): 0x7f0000002000, its page is at 0x7f0000001000"), std::string::npos)
      << m;
  EXPECT_NE(m.find("wrong si_code: sharer 1 (pid 102): BUS_MCEERR_AR, expected BUS_MCEERR_AO"), std::string::npos) << m;
  EXPECT_EQ(m.find("missed"), std::string::npos) << m;
}

// Soft offline: nobody may be signalled; a signal from a process the oracle
// does not know is reported too.
TEST(Hwpoison, SoftOfflineExpectsNoSignalAnywhere) {
  auto none = layout();
  for (auto& e : none) e.mapper = false;
  std::vector<ReceivedSigbus> quiet = {{100, 0, 0, 0}, {101, 0, 0, 0}, {102, 0, 0, 0}, {103, 0, 0, 0}};
  EXPECT_EQ(message_of(check_sigbus(none, quiet, "x")), "ok");
  quiet[3] = {103, 1, kMceErrAr, kAddr};
  quiet.push_back({999, 1, 7, 0});
  const std::string m = message_of(check_sigbus(none, quiet, "SIGBUS after MADV_SOFT_OFFLINE"));
  EXPECT_NE(m.find("poisoner (pid 103): BUS_MCEERR_AR"), std::string::npos) << m;
  EXPECT_NE(m.find("pid 999 (not one of this run's processes): si_code 7"), std::string::npos) << m;
}

TEST(Hwpoison, HardwareCorruptedIsReadInKb) {
  const std::string meminfo = "MemTotal:        1000000 kB\nHardwareCorrupted:     8 kB\nAnonHugePages:  0 kB\n";
  auto kb = parse_hardware_corrupted_kb(meminfo);
  ASSERT_TRUE(kb) << kb.status().message();
  EXPECT_EQ(*kb, 8);
  auto absent = parse_hardware_corrupted_kb("MemTotal: 1 kB\n");
  ASSERT_FALSE(absent);
  EXPECT_NE(absent.status().message().find("CONFIG_MEMORY_FAILURE not set"), std::string::npos);
  EXPECT_FALSE(parse_hardware_corrupted_kb("HardwareCorrupted: lots kB\n"));
  EXPECT_FALSE(parse_hardware_corrupted_kb("HardwareCorrupted: 4 MB\n"));
}

TEST(Hwpoison, FailedInjectionsSkipOrFailByErrno) {
  auto einval = injection_failure(Injection::hard, EINVAL);
  EXPECT_TRUE(einval.skipped());
  EXPECT_NE(einval.message().find("CONFIG_MEMORY_FAILURE not set"), std::string::npos) << einval.message();
  auto eperm = injection_failure(Injection::soft, EPERM);
  EXPECT_TRUE(eperm.skipped());
  EXPECT_NE(eperm.message().find("CAP_SYS_ADMIN"), std::string::npos) << eperm.message();
  EXPECT_NE(eperm.message().find("MADV_SOFT_OFFLINE"), std::string::npos) << eperm.message();
  // The kernel failing to unmap or migrate the page is the kernel's failure.
  auto ebusy = injection_failure(Injection::hard, EBUSY);
  EXPECT_TRUE(ebusy.failed());
  EXPECT_FALSE(ebusy.skipped());
  EXPECT_NE(ebusy.message().find("madvise(MADV_HWPOISON)"), std::string::npos) << ebusy.message();
}

// The handler records into memory the parent sees, in a forked child, as
// the workload's processes do.
TEST(Hwpoison, AChildsSigbusLandsOnTheBoard) {
  auto board = SigbusBoard::create(2);
  ASSERT_TRUE(board) << board.status().message();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (catch_sigbus(board->slot(1)).failed()) _exit(2);
    raise(SIGBUS);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  const ReceivedSigbus got = received(*board->slot(1), pid);
  EXPECT_EQ(got.count, 1);
  EXPECT_EQ(got.code, SI_TKILL);
  EXPECT_EQ(received(*board->slot(0), 0).count, 0);
  EXPECT_EQ(board->slot(1)->pid, pid);
  board->clear();
  EXPECT_EQ(received(*board->slot(1), pid).count, 0);
}

TEST(Hwpoison, OptInNamesTheOption) {
  rmapbench::Requirement need = rmapbench::destructive_opt_in("poisons memory");
  rmapbench::register_all_benchmarks({rmapbench::Profile::quick, {}, [](const std::string&) { return false; }, false});
  auto why = need.unmet();
  ASSERT_TRUE(why.has_value());
  EXPECT_EQ(*why, "destructive: poisons memory; run with --allow-destructive (a QEMU guest passes it)");
  rmapbench::register_all_benchmarks({rmapbench::Profile::quick, {}, [](const std::string&) { return false; }, true});
  EXPECT_FALSE(need.unmet().has_value());
  rmapbench::register_all_benchmarks({rmapbench::Profile::quick, {}, [](const std::string&) { return false; }, false});
}
