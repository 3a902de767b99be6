// Starting another program (gnuplot for plots, `rmapbench run` for check)
// and waiting for it.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::proc {

struct Outcome {
  int exit_code = 0;  // exit status, or 128 + signal number when killed
  std::string err;    // its stderr, when captured
};

struct Spawn {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH unless it has a '/'
  std::string cwd;                // empty: ours
  int stdout_to = 1;              // our fd its stdout goes to (2: onto our stderr)
  bool capture_stderr = false;    // collect its stderr into Outcome::err (else inherited)
};

// Fails only when the program could not be started at all.
Result<Outcome> run(const Spawn& s);

// The full path of an executable found on $PATH.
std::optional<std::string> find_on_path(const std::string& name);

}  // namespace rmapbench::proc
