#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "benchmarks/mm/processes.hpp"

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
