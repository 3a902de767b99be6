// Starting another program and waiting for it: gnuplot for plots, `rmapbench
// run` for check and calibrate, the rmapbench binary under test.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::proc {

struct Outcome {
  int exit_code = 0;       // exit status, or 128 + signal number when killed
  std::string out;         // its stdout, when captured
  std::string err;         // its stderr, when captured
  bool timed_out = false;  // killed (SIGKILL) at Spawn::timeout_seconds
};

struct Spawn {
  std::vector<std::string> argv;  // argv[0] is looked up on PATH unless it has a '/'
  std::string cwd;                // empty: ours
  std::vector<std::string> env;   // "NAME=value" set on top of our environment
  int stdout_to = 1;              // our fd its stdout goes to (2: onto our stderr), unless captured
  bool capture_stdout = false;    // collect its stdout into Outcome::out
  bool capture_stderr = false;    // collect its stderr into Outcome::err (else inherited)
  int timeout_seconds = 0;        // > 0: killed after this long
};

// Fails only when the program could not be started at all.
Result<Outcome> run(const Spawn& s);

// The full path of an executable found on `search_path` (default: $PATH).
std::optional<std::string> find_on_path(const std::string& name, const std::optional<std::string>& search_path = {});

}  // namespace rmapbench::proc
