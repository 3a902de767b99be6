// Runs the real rmapbench binary (or any command) and captures what it did.
#pragma once

#include <string>
#include <vector>

#include "tests/unit/test_support.hpp"

namespace rmapbench::testing {

struct Outcome {
  int exit_code = -1;   // exit status, or 128+signal when killed
  std::string out;      // stdout
  std::string err;      // stderr
};

// argv excludes the binary; env entries are "NAME=value" added to ours.
Outcome run_rmapbench(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                      int timeout_seconds = 300);
Outcome run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                    int timeout_seconds = 300);

// "exit N", then stdout and stderr: what a failed expectation prints.
std::string describe(const Outcome& o);

inline std::string read_file(const std::string& path) { return slurp(path); }

}  // namespace rmapbench::testing
