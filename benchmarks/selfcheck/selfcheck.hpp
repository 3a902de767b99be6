// Benchmarks of the suite itself: each compares a workload's figure with a
// bare loop doing the same system calls and prints the ratio. They are not
// tests (timings on a shared host are noisy); run them on a quiet machine:
//   rmapbench-selfcheck [NAME...]
// Exit status: 0 every ratio inside its band, 1 some ratio outside, 2 usage.
#pragma once

#include <string>
#include <vector>

namespace rmapbench::selfcheck {

struct Selfcheck {
  std::string name;  // "fork", "thp", "ksm"
  std::string what;  // one line for --help
  int (*run)();      // prints its table, returns 0 inside the band, 1 outside
};

int register_selfcheck(Selfcheck s);

}  // namespace rmapbench::selfcheck

#define RMAPBENCH_SELFCHECK_CONCAT_INNER(a, b) a##b
#define RMAPBENCH_SELFCHECK_CONCAT(a, b) RMAPBENCH_SELFCHECK_CONCAT_INNER(a, b)
#define RMAPBENCH_SELFCHECK(ident, ...) \
  [[maybe_unused]] static const int RMAPBENCH_SELFCHECK_CONCAT(rmapbench_selfcheck_, ident) = ::rmapbench::selfcheck::register_selfcheck(__VA_ARGS__)
