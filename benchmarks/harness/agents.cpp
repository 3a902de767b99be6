#include "benchmarks/harness/agents.hpp"

#include <fmt/core.h>

namespace rmapbench::harness {

mm::AgentReply reply_figures(const Result<Figures>& figures) {
  if (!figures) return mm::reply_status(figures.status());
  mm::AgentReply r = mm::reply_ok();
  for (size_t i = 0; i < figures->size() && i < std::size(r.values); ++i) r.values[i] = (*figures)[i];
  return r;
}

mm::AgentReply unknown_request(int op) { return mm::reply_error(fmt::format("unknown request {}", op)); }

Result<AgentGroup> AgentGroup::spawn(long count, const std::function<Result<mm::Agent>(long index)>& spawn_one) {
  AgentGroup g;
  for (long i = 0; i < count; ++i) {
    auto a = spawn_one(i);
    if (!a) return a.status();
    g.pids_.push_back(a->pid());
    g.agents_.push_back(std::move(*a));
  }
  return g;
}

Result<std::vector<mm::AgentReply>> AgentGroup::call_all(const mm::AgentRequest& request) {
  for (auto& a : agents_)
    if (Status s = a.send(request); s.failed()) return s;
  std::vector<mm::AgentReply> replies;
  Status first;
  for (auto& a : agents_) {
    auto r = a.receive();
    if (!r && !first.failed()) first = r.status();
    if (r) replies.push_back(*r);
  }
  if (first.failed()) return first;
  return replies;
}

Status AgentGroup::call_each(int op) {
  for (size_t i = 0; i < agents_.size(); ++i)
    if (auto r = agents_[i].call({op, static_cast<long>(i)}); !r) return r.status();
  return Status::ok();
}

}  // namespace rmapbench::harness
