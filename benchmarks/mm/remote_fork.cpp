#include "benchmarks/mm/remote_fork.hpp"

#include <fmt/core.h>

#include <memory>

#include "benchmarks/mm/fork_oracle.hpp"
#include "benchmarks/mm/op_counters.hpp"
#include "benchmarks/harness/registry.hpp"

namespace rmapbench::mm {

Result<Agent> spawn_fork_agent(int depth, long new_vmas, const AnonLayout* inherited, const std::string& workload) {
  // State that lives in the agent process only (created by setup there).
  auto timer = std::make_shared<std::optional<ForkTimer>>();
  auto own = std::make_shared<std::optional<AnonLayout>>();
  auto setup = [=]() -> Status {
    auto t = ForkTimer::create();
    if (!t) return t.status();
    timer->emplace(std::move(*t));
    if (new_vmas > 0) {
      auto l = AnonLayout::create(new_vmas, 1, 7);
      if (!l) return l.status().context("agent's new VMAs");
      own->emplace(std::move(*l));
    }
    return Status::ok();
  };
  auto handler = [=](const AgentRequest& req) -> AgentReply {
    switch (req.op) {
      case kRemoteForkExitWait: {
        auto t = (*timer)->fork_exit_wait();
        if (!t) return reply_error(t.status().message());
        return reply_ok({double(t->total_ns), double(t->fork_ns), double(t->exit_ns)});
      }
      case kRemoteCountPerOp: {
        std::vector<std::string> absent;
        auto c = count_per_op(req.arg, [&] { return (*timer)->fork_exit_wait().status(); }, &absent);
        if (!c) return reply_error(c.status().message());
        AgentReply r = reply_ok({c->page_faults, c->context_switches, c->cpu_migrations, c->sys_us});
        std::string notes;
        for (const auto& a : absent) notes += (notes.empty() ? "" : "; ") + a;
        std::snprintf(r.message, sizeof r.message, "%s", notes.c_str());
        return r;
      }
      case kRemoteCheck: {
        if (inherited) {
          if (Status s = inherited->verify(); s.failed())
            return reply_error(s.context(fmt::format("agent at depth {} lost the inherited data", depth)).message());
        }
        if (own->has_value()) {
          if (Status s = check_fork_isolation(own->value(), workload); s.failed()) return reply_error(s.message());
        }
        return reply_ok();
      }
    }
    return reply_error(fmt::format("unknown agent request {}", req.op));
  };
  return Agent::spawn(depth, setup, handler);
}

void run_remote_fork_loop(benchmark::State& state, Agent& agent, int phase) {
  double sums[3] = {0, 0, 0};
  for (auto _ : state) {
    auto r = agent.call({kRemoteForkExitWait, 0});
    if (!r) {
      fail(state, r.status().message());
      break;
    }
    for (int i = 0; i < 3; ++i) sums[i] += r->values[i];
    state.SetIterationTime(r->values[phase] / 1e9);
  }
  if (failed(state)) return;
  report_fork_phases(state, sums[1], sums[2]);
  auto counts = agent.call({kRemoteCountPerOp, std::min<long>(state.iterations(), 20)});
  if (!counts) return fail(state, counts.status().message());
  OpCounts c{counts->values[0], counts->values[1], counts->values[2], counts->values[3]};
  report_op_counts(state, c);
  if (auto check = agent.call({kRemoteCheck, 0}); !check) return fail(state, check.status().message());
  set_notes(state, {counts->message});
}

}  // namespace rmapbench::mm
