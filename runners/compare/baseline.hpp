// Baselines: reference results kept per arch / host / kernel, and the host
// fingerprint that names the host (baselines/README.md documents both).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "kernels/status.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::baseline {

// What identifies a test host: the hardware, not its name or its kernel.
struct HostFingerprint {
  std::string cpu_model;  // context "cpu_model"
  int cpus = 0;           // "cpus_online", else Google Benchmark's "num_cpus"
  std::string numa;       // node count, CPUs per node and distances ("numa_*" keys except memory)
  long mem_gib = 0;       // "mem_total_bytes" (or "mem_total_kb") rounded to the nearest GiB

  // "cpu_model=...\ncpus=2\nnuma=...\nmem_gib=8\n": what the id hashes.
  std::string canonical() const;
  // First 12 hex digits of FNV-1a 64 of canonical(): stable across kernels,
  // reboots and rmapbench versions.
  std::string id() const;
  // "Intel(R) Xeon(R) ..., 2 CPUs, 1 NUMA node, 8 GiB"
  std::string describe() const;
};

// From a results context; fails when the context lacks the CPU model (a plain
// Google Benchmark file: no host facts to fingerprint).
Result<HostFingerprint> fingerprint(const std::map<std::string, std::string>& context);

// File-name-safe form of a context value: [A-Za-z0-9._+-] kept, others '_'.
std::string sanitize(const std::string& s);

struct Location {
  std::string arch, host_id, kernel_release, variant;
  // "<arch>/<host-id>/<kernel-release>-<variant>.json"
  std::string relative_path() const;
};

// Where RESULT belongs under a baselines directory; fails (naming the file
// and the missing key) unless it is an rmapbench result with arch,
// kernel_release, variant and the host facts.
Result<Location> locate(const results::ResultsFile& result);

struct Entry {
  std::string path;     // full path
  std::string arch, host_id;
  std::string name;     // "<kernel-release>-<variant>" (the file name without .json)
  std::string relative_path() const { return arch + "/" + host_id + "/" + name + ".json"; }
};
// Every <arch>/<host-id>/<name>.json under dir, sorted. A missing dir is an
// empty list.
std::vector<Entry> list(const std::string& dir);

// The default baselines directory: $RMAPBENCH_BASELINE_DIR, else ./baselines.
std::string default_dir();

}  // namespace rmapbench::baseline
