// Resource checks: nothing when it fits; otherwise what is short and the
// largest size that would fit, and that size really is the largest.
#include <grp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/safety/children.hpp"
#include "kernels/safety/resource_check.hpp"

using namespace rmapbench;
using namespace rmapbench::safety;

namespace {

long long read_ll(const std::string& path) {
  std::ifstream in(path);
  long long v = -1;
  in >> v;
  return v;
}

// The number right after `prefix` in `text`, or -1.
long long number_after(const std::string& text, const std::string& prefix) {
  size_t p = text.find(prefix);
  if (p == std::string::npos) return -1;
  p += prefix.size();
  size_t e = p;
  while (e < text.size() && text[e] >= '0' && text[e] <= '9') ++e;
  return e == p ? -1 : std::stoll(text.substr(p, e - p));
}

TEST(ResourceCheck, SmallNeedsFit) {
  EXPECT_EQ(check_processes(1), std::nullopt);
  EXPECT_EQ(check_memory(4096), std::nullopt);
  EXPECT_EQ(check_map_count(10), std::nullopt);
  EXPECT_EQ(check_processes(0), std::nullopt);
  EXPECT_TRUE(check_resources({1, 4096, 10}).empty());
}

TEST(ResourceCheck, MapCountMessageNamesTheLargestFit) {
  long long max = read_ll("/proc/sys/vm/max_map_count");
  ASSERT_GT(max, 0);
  long need = static_cast<long>(max + 100);
  auto msg = check_map_count(need, {"vmas", 1});
  ASSERT_TRUE(msg);
  std::string prefix = "needs " + std::to_string(need) + " mappings; vm.max_map_count=" + std::to_string(max) +
                       " allows ";
  EXPECT_EQ(msg->rfind(prefix, 0), 0u) << *msg;
  long long allows = number_after(*msg, "allows ");
  long long expected = max - current_map_count();
  EXPECT_NEAR(static_cast<double>(allows), static_cast<double>(expected), 8.0) << *msg;
  EXPECT_EQ(number_after(*msg, "--sweep vmas="), allows) << *msg;
  EXPECT_NE(msg->find("sysctl -w vm.max_map_count="), std::string::npos) << *msg;
  // Exactly the largest fit passes.
  EXPECT_EQ(check_map_count(static_cast<long>(max - current_map_count() - 16)), std::nullopt);
}

TEST(ResourceCheck, MemoryMessageNamesTheLargestFit) {
  auto avail = meminfo_bytes("MemAvailable");
  ASSERT_TRUE(avail);
  auto msg = check_memory(1LL << 50, {"pages", 4096});
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind("needs 1048576.00 GiB of memory, ", 0), 0u) << *msg;
  EXPECT_NE(msg->find("allows "), std::string::npos) << *msg;
  MemoryHeadroom h = memory_headroom();
  ASSERT_GE(h.allowed_bytes, 0);
  EXPECT_LE(h.allowed_bytes, *avail);
  EXPECT_NE(msg->find(format_bytes(h.allowed_bytes)), std::string::npos) << *msg;
  long long pages = number_after(*msg, "--sweep pages=");
  EXPECT_NEAR(static_cast<double>(pages), static_cast<double>(h.allowed_bytes / 4096),
              static_cast<double>((64LL << 20) / 4096))
      << *msg;  // MemAvailable moves a little between the two reads
  EXPECT_EQ(check_memory(h.allowed_bytes / 2), std::nullopt);
}

TEST(ResourceCheck, FormatsBytes) {
  EXPECT_EQ(format_bytes(512), "512 bytes");
  EXPECT_EQ(format_bytes(4096), "4.0 KiB");
  EXPECT_EQ(format_bytes(512LL << 20), "512.0 MiB");
  EXPECT_EQ(format_bytes(3LL << 30), "3.00 GiB");
}

TEST(ResourceCheck, RootIsNotLimitedByRlimitNproc) {
  if (getuid() != 0) GTEST_SKIP() << "needs root";
  ProcessHeadroom h = process_headroom();
  EXPECT_EQ(h.limit.find("RLIMIT_NPROC"), std::string::npos) << h.limit;
}

TEST(ResourceCheck, HugeProcessCountNamesAKernelLimit) {
  auto msg = check_processes(1L << 40);
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->rfind("needs 1099511627776 processes, ", 0), 0u) << *msg;
  EXPECT_TRUE(msg->find("kernel.threads-max=") != std::string::npos ||
              msg->find("kernel.pid_max=") != std::string::npos || msg->find("pids.max=") != std::string::npos ||
              msg->find("RLIMIT_NPROC=") != std::string::npos)
      << *msg;
}

// In a child: drop to an unused unprivileged uid (RLIMIT_NPROC does not bind root),
// lower RLIMIT_NPROC to 20, and check that the message's "allows N more" is
// exactly what fork() then allows: N forks succeed, the next one fails EAGAIN.
TEST(ResourceCheck, RlimitNprocLoweredInAForkedChild) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    become_child_of_run();  // dies with the test process
    close(fds[0]);
    auto report = [&](const std::string& s) {
      (void)!write(fds[1], s.data(), s.size());
      close(fds[1]);
    };
    if (getuid() == 0) {
      // A uid nobody else uses, so concurrent runs do not change its task count.
      uid_t uid = 200000 + static_cast<uid_t>(getpid() % 100000);
      if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0) {
        report("cannot drop to an unprivileged uid");
        _exit(3);
      }
    }
    rlimit rl{20, 20};
    if (setrlimit(RLIMIT_NPROC, &rl) != 0) {
      report("setrlimit failed");
      _exit(3);
    }
    auto msg = check_processes(1000, {"children", 1});
    if (!msg) {
      report("no message");
      _exit(1);
    }
    long long allowed = number_after(*msg, "RLIMIT_NPROC=20 allows ");
    std::vector<pid_t> kids;
    int fork_errno = 0;
    for (long long i = 0; i <= allowed; ++i) {
      pid_t k = fork();
      if (k == 0) {
        become_child_of_run();
        for (;;) pause();
      }
      if (k < 0) {
        fork_errno = errno;
        break;
      }
      kids.push_back(k);
    }
    for (pid_t k : kids) kill(k, SIGKILL);
    for (pid_t k : kids) waitpid(k, nullptr, 0);
    report(*msg + "\n" + std::to_string(kids.size()) + " " + std::to_string(fork_errno));
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  long long allowed = number_after(out, "RLIMIT_NPROC=20 allows ");
  ASSERT_GT(allowed, 0) << out;
  EXPECT_LT(allowed, 20);
  std::string a = std::to_string(allowed);
  // The message, then "<forks that succeeded> <errno of the one more fork>".
  EXPECT_EQ(out, "needs 1000 processes, RLIMIT_NPROC=20 allows " + a +
                     " more: raise it with ulimit -u or use --sweep children=" + a + "\n" + a + " " +
                     std::to_string(EAGAIN));
}

}  // namespace
