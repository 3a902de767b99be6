// What `rmapbench run` does with processes before and around the benchmarks:
// address-space randomization off for its own process tree (one re-exec),
// and --runs K as K separate processes merged into one result.
#pragma once

#include <string>
#include <vector>

#include "runners/cli/run_options.hpp"
#include "runners/results/atomic_file.hpp"

namespace rmapbench::cli {

// ASLR of this run's process tree. Unless --keep-aslr, or randomization is
// already off (randomize_va_space=0, or ADDR_NO_RANDOMIZE inherited from
// setarch -R), sets personality(ADDR_NO_RANDOMIZE) and re-executes
// /proc/self/exe with the same arguments: this function then does not return
// in this process. Returns the state for the results' context:
//   aslr_effective  "off" or "on"
//   aslr_how        why, e.g. "ADDR_NO_RANDOMIZE set by rmapbench (re-exec)"
struct AslrState {
  std::string effective, how;
};
AslrState apply_aslr_policy(const RunOptions& o, const std::vector<std::string>& args);

// --runs K (K > 1): runs K separate `rmapbench run` processes one after
// another (each its own process, memory layout and interleaved repetitions),
// under the run lock the caller holds, then writes one result whose
// benchmarks carry "run_index" 0..K-1 to `output` (prepared by the caller,
// so an unwritable output is known before minutes of runs). Exit status as
// `run`.
int run_several(const RunOptions& o, const std::vector<std::string>& args, results::OutputFile& output);

// The benchmarks of several single-run result files as one: every entry gets
// "run_index" (its file's position plus `first_index`), the context is the
// first file's plus "rmapbench.runs". Pure, for tests.
std::string merge_run_results(const std::vector<std::string>& texts, int first_index = 0);

// Set in a run's children by run_several(): the parent holds the run lock.
inline constexpr const char* kParentHoldsLockEnv = "RMAPBENCH_PARENT_HOLDS_LOCK";

}  // namespace rmapbench::cli
