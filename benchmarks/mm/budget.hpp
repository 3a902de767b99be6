// What a benchmark will need from the host - processes, mappings, memory -
// checked before it builds anything (kernels/safety/resource_check.hpp reads
// the limits). A benchmark that does not fit fails with one message naming
// what is short and the largest size of its sweep parameter that fits; the
// rest of the run goes on:
//
//   if (!mm::within_budget(state, {mm::grows_with("children", children), mm::fixed(kVmas), mm::fixed(kVmas)}))
//     return;
#pragma once

#include <benchmark/benchmark.h>

#include <string>

#include "kernels/status.hpp"

namespace rmapbench::mm {

// An amount that is `fixed`, plus `per_unit` for each unit of sweep parameter
// `param` (whose value in this benchmark is `value`).
struct Need {
  long long fixed = 0;
  long long per_unit = 0;
  std::string param;
  long value = 0;
  long long amount() const { return fixed + per_unit * value; }
};
inline Need fixed(long long amount) { return {amount, 0, "", 0}; }
inline Need grows_with(const std::string& param, long value, long long per_unit = 1, long long fixed = 0) {
  return {fixed, per_unit, param, value};
}

struct Budget {
  Need processes;  // processes alive at the same time, besides the benchmark process
  Need vmas;       // VMAs of the layouts the most-mapped process holds (AnonLayout VMAs)
  Need pages;      // anonymous pages written: the layouts plus their COW copies
};

// Kernel memory a forked process costs on top of its pages (conservative:
// task, kernel stack, mm, page tables, its stack's COW copies) and per VMA
// it inherits (vm_area_struct, anon_vma, two anon_vma_chains).
inline constexpr long long kProcessOverheadBytes = 128 << 10;
inline constexpr long long kVmaOverheadBytes = 512;
// Mappings beyond the layouts' VMAs: two guard pages per layout, the fork
// timer's page, threads' stacks.
inline constexpr long kMappingSlack = 16;

// The mappings and the memory `b` needs.
long long budget_mappings(const Budget& b);
long long budget_bytes(const Budget& b);
// OK when everything fits, else "does not fit this host: <what is short>"
// ('; '-separated when several things are), each ending with "or use
// --sweep PARAM=N", N the largest value that fits.
Status check_budget(const Budget& b);
// check_budget(); on a shortfall fails the benchmark (rmapbench::fail) and
// returns false.
bool within_budget(benchmark::State& state, const Budget& b);

}  // namespace rmapbench::mm
