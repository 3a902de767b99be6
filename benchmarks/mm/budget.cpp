#include "benchmarks/mm/budget.hpp"

#include <fmt/core.h>

#include <functional>
#include <optional>
#include <vector>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/harness/registry.hpp"
#include "kernels/safety/resource_check.hpp"

namespace rmapbench::mm {

namespace {

// `b` with every need that grows with `param` taken at `value`.
Budget at(Budget b, const std::string& param, long value) {
  for (Need* n : {&b.processes, &b.vmas, &b.pages})
    if (n->param == param) n->value = value;
  return b;
}

using Check = std::function<std::optional<std::string>(const Budget&)>;

// The largest value of `param` below its current one for which `check`
// passes (the needs only grow with it), or 0 when none does.
long largest_fit(const Budget& b, const std::string& param, long current, const Check& check) {
  long lo = 0, hi = current;  // check fails at hi; find the last passing value in [1, hi)
  while (hi - lo > 1) {
    long mid = lo + (hi - lo) / 2;
    if (check(at(b, param, mid))) hi = mid;
    else lo = mid;
  }
  return lo;
}

// The message of a failed check, ending with the size that fits.
std::string with_sweep_hint(std::string message, const Budget& b, const Need& by, const Check& check) {
  if (by.param.empty() || by.value <= 1) return message;
  const long fits = largest_fit(b, by.param, by.value, check);
  if (fits < 1) return message;
  const std::string hint = fmt::format(" or use --sweep {}={}", by.param, fits);
  const std::string generic = " or use a smaller size";  // check_memory's words without a hint
  if (message.ends_with(generic)) message.resize(message.size() - generic.size());
  return message + hint;
}

}  // namespace

long long budget_mappings(const Budget& b) { return b.vmas.amount() > 0 ? b.vmas.amount() + kMappingSlack : 0; }

long long budget_bytes(const Budget& b) {
  const long long ps = static_cast<long long>(page_size());
  const long long per_process = kProcessOverheadBytes + b.vmas.amount() * kVmaOverheadBytes;
  return b.pages.amount() * ps + b.processes.amount() * per_process;
}

Status check_budget(const Budget& b) {
  const Check processes = [](const Budget& x) { return safety::check_processes(static_cast<long>(x.processes.amount())); };
  const Check mappings = [](const Budget& x) { return safety::check_map_count(static_cast<long>(budget_mappings(x))); };
  const Check memory = [](const Budget& x) { return safety::check_memory(budget_bytes(x)); };
  // Memory grows with whatever sizes the processes, else the pages, else the VMAs.
  const Need& memory_by = !b.processes.param.empty() ? b.processes : !b.pages.param.empty() ? b.pages : b.vmas;

  std::vector<std::string> short_of;
  if (auto m = processes(b)) short_of.push_back(with_sweep_hint(*m, b, b.processes, processes));
  if (auto m = mappings(b)) short_of.push_back(with_sweep_hint(*m, b, b.vmas, mappings));
  if (auto m = memory(b)) short_of.push_back(with_sweep_hint(*m, b, memory_by, memory));
  if (short_of.empty()) return Status::ok();
  std::string message = "does not fit this host: ";
  for (size_t i = 0; i < short_of.size(); ++i) message += (i ? "; " : "") + short_of[i];
  return Status::error(message);
}

bool within_budget(benchmark::State& state, const Budget& b) {
  Status s = check_budget(b);
  if (s.failed()) fail(state, s.message());
  return !s.failed();
}

}  // namespace rmapbench::mm
