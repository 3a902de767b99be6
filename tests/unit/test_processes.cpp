#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "benchmarks/harness/agents.hpp"
#include "benchmarks/mm/processes.hpp"

#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace rmapbench::mm;
using rmapbench::Status;

TEST(ForkTimer, PhasesAddUp) {
  auto timer = ForkTimer::create();
  ASSERT_TRUE(timer);
  auto t = timer->fork_exit_wait();
  ASSERT_TRUE(t) << t.status().message();
  EXPECT_GT(t->fork_ns, 0);
  EXPECT_GT(t->exit_ns, 0);
  EXPECT_GE(t->total_ns, t->fork_ns);
}

TEST(ChildGroup, ChecksRunOnReleaseAndFailuresComeBack) {
  auto ok = ChildGroup::spawn(3, {}, [](long) { return Status::ok(); });
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->size(), 3);
  EXPECT_FALSE(ok->release().failed());

  auto bad = ChildGroup::spawn(3, {}, [](long i) { return i == 1 ? Status::error("boom") : Status::ok(); });
  ASSERT_TRUE(bad);
  Status s = bad->release();
  ASSERT_TRUE(s.failed());
  EXPECT_NE(s.message().find("sharer 1"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("boom"), std::string::npos);
}

TEST(ChildGroup, BodyFailureIsReportedAtSpawn) {
  auto g = ChildGroup::spawn(2, [](long i) { return i == 0 ? Status::error("cannot set up") : Status::ok(); });
  ASSERT_FALSE(g);
  EXPECT_NE(g.status().message().find("cannot set up"), std::string::npos);
}

TEST(ChildGroup, DestructorLeavesNoChildren) {
  std::vector<pid_t> pids;
  {
    auto g = ChildGroup::spawn(4, {});
    ASSERT_TRUE(g);
    pids = g->pids();
  }
  for (pid_t pid : pids) EXPECT_EQ(kill(pid, 0), -1) << "child " << pid << " still exists";
}

TEST(Agent, ServesRequestsAtDepth) {
  for (int depth : {1, 3}) {
    auto agent = Agent::spawn(depth, {}, [](const AgentRequest& r) { return reply_ok({double(r.arg * 2)}); });
    ASSERT_TRUE(agent) << agent.status().message();
    auto r = agent->call({1, 21});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->values[0], 42);
  }
}

namespace {
// The fourth field of /proc/<pid>/stat, after the parenthesised name.
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos) return -1;
  std::istringstream rest(stat.substr(end_of_name + 1));
  char state = 0;
  pid_t ppid = -1;
  rest >> state >> ppid;
  return ppid;
}
}  // namespace

TEST(Agent, NamesEveryProcessOfItsChainTopFirst) {
  for (int depth : {1, 4}) {
    auto agent = Agent::spawn(depth, {}, [](const AgentRequest&) { return reply_ok({double(getpid())}); });
    ASSERT_TRUE(agent) << agent.status().message();
    const std::vector<pid_t> chain = agent->chain();
    ASSERT_EQ(chain.size(), static_cast<size_t>(depth));
    EXPECT_EQ(chain.front(), agent->pid());
    for (size_t k = 1; k < chain.size(); ++k) EXPECT_EQ(parent_of(chain[k]), chain[k - 1]) << "level " << k + 1;
    auto r = agent->call({1, 0});
    ASSERT_TRUE(r) << r.status().message();
    EXPECT_EQ(static_cast<pid_t>(r->values[0]), chain.back()) << "the deepest serves";
  }
}

TEST(Agent, SetupAndHandlerErrorsArrive) {
  auto broken = Agent::spawn(2, [] { return Status::error("no setup"); }, [](const AgentRequest&) { return reply_ok(); });
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.status().message().find("no setup"), std::string::npos);

  auto agent = Agent::spawn(1, {}, [](const AgentRequest&) { return reply_error("handler says no"); });
  ASSERT_TRUE(agent);
  auto r = agent->call({1, 0});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().message(), "handler says no");
}

TEST(ForkFailure, NamesTheLimit) {
  Status s = fork_failure(EAGAIN, "fork storm");
  EXPECT_NE(s.message().find("RLIMIT_NPROC"), std::string::npos) << s.message();
  EXPECT_EQ(s.err(), EAGAIN);
}

namespace {
struct Counter {
  long total = 0;
};
rmapbench::Result<rmapbench::harness::Figures> add(Counter& c, long n) {
  c.total += n;
  return rmapbench::harness::Figures{static_cast<double>(c.total), static_cast<double>(getpid())};
}
rmapbench::Result<rmapbench::harness::Figures> refuse(Counter&, long) {
  return Status::skip("this host lacks it");
}
constexpr rmapbench::harness::Request<Counter> kCounterRequests[] = {{1, add}, {2, refuse}};
}  // namespace

TEST(AgentGroup, ServesATableOfRequestsInParallelAndKeepsASkipASkip) {
  auto group = rmapbench::harness::AgentGroup::spawn(3, [](long) {
    return Agent::spawn(1, {}, rmapbench::harness::serve(std::make_shared<Counter>(), kCounterRequests));
  });
  ASSERT_TRUE(group) << group.status().message();
  ASSERT_EQ(group->size(), 3u);
  auto first = group->call_all({1, 5});
  ASSERT_TRUE(first) << first.status().message();
  auto second = group->call_all({1, 2});
  ASSERT_TRUE(second) << second.status().message();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*second)[i].values[0], 7);  // each agent keeps its own state
    EXPECT_EQ((*second)[i].values[1], group->pids()[i]);
  }
  auto skipped = group->call_all({2, 0});
  ASSERT_FALSE(skipped);
  EXPECT_TRUE(skipped.status().skipped());
  EXPECT_EQ(skipped.status().message(), "this host lacks it");
  auto unknown = (*group)[0].call({9, 0});
  ASSERT_FALSE(unknown);
  EXPECT_FALSE(unknown.status().skipped());
  EXPECT_EQ(unknown.status().message(), "unknown request 9");
}
