// Requests to helper processes, one protocol for every workload: a workload
// writes what its agents do as a table of requests over the state an agent
// holds, and asks a group of them in parallel.
//
//   struct Holder { std::optional<Region> region; };
//   Result<Figures> fill(Holder& h, long seed) { ...; return Figures{}; }
//   constexpr harness::Request<Holder> kRequests[] = {{kFill, fill}, {kWrite, write}};
//   auto group = harness::AgentGroup::spawn(n, [](long) {
//     return mm::Agent::spawn(1, {}, harness::serve(std::make_shared<Holder>(), kRequests));
//   });
//   auto replies = group->call_all({kFill, seed});
//
// A failure keeps its kind on its way back (a Status::skip in an agent is a
// skip of the benchmark).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/mm/processes.hpp"
#include "kernels/status.hpp"

namespace rmapbench::harness {

// What an agent answers: up to 8 figures (mm::AgentReply::values).
using Figures = std::vector<double>;

template <typename Held>
struct Request {
  int op;
  Result<Figures> (*serve)(Held& held, long arg);
};

mm::AgentReply reply_figures(const Result<Figures>& figures);
mm::AgentReply unknown_request(int op);

// The handler an agent runs: the entry of `table` for each request's op,
// over `held` (which lives in the agent process).
template <typename Held, size_t N>
mm::Agent::Handler serve(std::shared_ptr<Held> held, const Request<Held> (&table)[N]) {
  const Request<Held>* entries = table;
  return [held, entries](const mm::AgentRequest& req) {
    for (size_t i = 0; i < N; ++i)
      if (entries[i].op == req.op) return reply_figures(entries[i].serve(*held, req.arg));
    return unknown_request(req.op);
  };
}

// Agents that live as long as the group, each our direct child.
class AgentGroup {
 public:
  // Agent i is spawn_one(i); the first failure is returned.
  static Result<AgentGroup> spawn(long count, const std::function<Result<mm::Agent>(long index)>& spawn_one);
  size_t size() const { return agents_.size(); }
  const std::vector<pid_t>& pids() const { return pids_; }
  mm::Agent& operator[](size_t i) { return agents_[i]; }
  // Every agent gets the request at once; the replies are collected after
  // (they work in parallel). The first failure is returned.
  Result<std::vector<mm::AgentReply>> call_all(const mm::AgentRequest& request);
  // One agent after another, each with its index as the argument.
  Status call_each(int op);

 private:
  std::vector<mm::Agent> agents_;
  std::vector<pid_t> pids_;
};

}  // namespace rmapbench::harness
