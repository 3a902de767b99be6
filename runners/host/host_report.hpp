// What `run` records and `doctor` prints about the host: the probed
// HostFacts (kernels/host) turned into context entries and warnings.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kernels/host/host_facts.hpp"

namespace rmapbench::host {

struct Fact {
  std::string key;    // stable, snake_case: "kernel_release", "numa_nodes", "config.CONFIG_KSM"
  std::string value;
};

struct Warning {
  std::string problem;  // "cpufreq governor is 'powersave'"
  std::string fix;      // "cpupower frequency-set -g performance"
  bool mild = false;    // worth knowing, but results stay usable (e.g. ASLR on)
};

// Flat key/value list for the results JSON "context" and `doctor`.
std::vector<Fact> context(const HostFacts& h);
// Things that make results unstable or a workload impossible, each with its fix.
std::vector<Warning> warnings(const HostFacts& h);

// The host facts of the machine we run on, as a results context would hold
// them (for "this host" in `baseline list` / `check`).
std::map<std::string, std::string> this_host_context();

}  // namespace rmapbench::host
