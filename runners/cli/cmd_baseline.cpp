// rmapbench baseline save|list: reference results per arch / host / kernel.
#include <fmt/core.h>

#include <filesystem>
#include <string>
#include <vector>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/host/host_report.hpp"
#include "runners/results/atomic_file.hpp"
#include "runners/results/results.hpp"

namespace rmapbench::cli {

namespace {

constexpr const char* kBaselineHelp = R"HELP(Usage: rmapbench baseline save RESULT [--dir DIR] [--replace] [--force]
       rmapbench baseline list [--dir DIR]

Baselines are reference results kept in the repository, one per arch, test
host and kernel:

    DIR/<arch>/<host-id>/<kernel-release>-<variant>.json

host-id is 12 hex digits of FNV-1a 64 over the host's CPU model, online CPU
count, NUMA layout (node count, CPUs per node, distances) and memory size
rounded to the nearest GiB, all taken from the result's own context - so it
stays the same across kernels, reboots and hostnames, and changes when the
hardware does (see baselines/README.md).

save    validates RESULT (it must be a complete rmapbench result) and copies
        it, byte for byte, to its place under DIR. The copy is written to a
        temporary file in the same directory, fsync'd and renamed, so a
        baseline is never half-written. An existing baseline is never
        overwritten unless --replace.
list    every baseline under DIR with its kernel, profile, repetitions and
        date; those taken on this host are marked '*'.

Options:
  --dir DIR     baselines directory (default: $RMAPBENCH_BASELINE_DIR, else
                ./baselines)
  --replace     save over an existing baseline
  --force       save a result whose run was interrupted (rmapbench.complete
                false); refused otherwise

Exit status:
  0  saved / listed
  2  usage error, RESULT unreadable or invalid, the baseline exists (without
     --replace), or DIR cannot be written
)HELP";

int save(const std::string& result_path, const std::string& dir, bool replace, bool force) {
  auto text = results::read_text_file(result_path);
  if (!text) {
    fmt::print(stderr, "rmapbench baseline: {}\n", text.status().message());
    return kExitUsage;
  }
  auto r = results::parse_results(*text, result_path);
  if (!r) {
    fmt::print(stderr, "rmapbench baseline: {}\n", r.status().message());
    return kExitUsage;
  }
  if (r->get("rmapbench.complete") == "false" && !force) {
    fmt::print(stderr,
               "rmapbench baseline: {}: the run was interrupted (rmapbench.complete is false); a partial run is "
               "not a good reference (--force saves it anyway)\n",
               result_path);
    return kExitUsage;
  }
  auto where = baseline::locate(*r);
  if (!where) {
    fmt::print(stderr, "rmapbench baseline: {}\n", where.status().message());
    return kExitUsage;
  }
  const std::string target = dir + "/" + where->relative_path();
  std::error_code exists_ec;
  if (!replace && std::filesystem::exists(target, exists_ec)) {
    auto existing = results::load_results(target);
    fmt::print(stderr, "rmapbench baseline: {} already exists{}; not overwritten (--replace overwrites it)\n", target,
               existing ? fmt::format(" (from {})", existing->get("date", "an earlier run")) : "");
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(target).parent_path(), ec);
  if (ec) {
    fmt::print(stderr, "rmapbench baseline: cannot create {}: {}\n",
               std::filesystem::path(target).parent_path().string(), ec.message());
    return kExitUsage;
  }
  Status s = results::write_file_atomic(target, *text, replace ? results::Overwrite::replace : results::Overwrite::refuse);
  if (s.failed()) {
    fmt::print(stderr, "rmapbench baseline: {}{}\n", s.message(),
               s.err() == EEXIST ? " (--replace overwrites it)" : "");
    return kExitUsage;
  }
  fmt::print("saved baseline {}\n  {} on {}, {} benchmarks, {} repetitions\n", target, r->label(),
             where->arch + "/" + where->host_id, r->benchmarks.size(), r->repetitions());
  return kExitOk;
}

int list(const std::string& dir) {
  auto entries = baseline::list(dir);
  if (entries.empty()) {
    fmt::print("no baselines under {} (save one with: rmapbench baseline save RESULT)\n", dir);
    return kExitOk;
  }
  std::string here;
  if (auto fp = baseline::fingerprint(host::this_host_context())) here = fp->id();
  fmt::print("baselines under {} ('*': taken on this host, host-id {}):\n", dir, here.empty() ? "unknown" : here);
  for (const auto& e : entries) {
    auto r = results::load_results(e.path);
    std::string detail = r ? fmt::format("{}, profile {}, {} repetitions, {}", r->label(), r->get("rmapbench.profile", "?"),
                                         r->repetitions(), r->get("date", "date unknown"))
                           : "INVALID: " + r.status().message();
    fmt::print("{} {}\n      {}\n", e.host_id == here ? "*" : " ", e.relative_path(), detail);
  }
  return kExitOk;
}

int run_baseline(const std::vector<std::string>& args) {
  std::string dir = baseline::default_dir();
  bool replace = false, force = false;
  std::vector<std::string> positional;
  CommandLine line("baseline");
  CLI::Option* dir_option = line.app.add_option("--dir", dir);
  line.app.add_flag("--replace", replace);
  line.app.add_flag("--force", force);
  line.app.add_option("ACTION", positional);
  if (!line.parse(args)) return kExitUsage;
  if (given(dir_option) && dir.empty()) return usage_error("baseline", "--dir needs a directory");
  if (positional.empty()) return usage_error("baseline", "expected 'save RESULT' or 'list'");
  if (positional[0] == "save") {
    if (positional.size() != 2) return usage_error("baseline", "save takes exactly one RESULT file");
    return save(positional[1], dir, replace, force);
  }
  if (positional[0] == "list") {
    if (positional.size() != 1) return usage_error("baseline", "list takes no arguments");
    return list(dir);
  }
  return usage_error("baseline", "unknown subcommand '" + positional[0] + "' (expected save or list)");
}

}  // namespace

Command baseline_subcommand() {
  return {"baseline", "save a result as the reference for its host and kernel, or list them",
          kBaselineHelp, run_baseline};
}

}  // namespace rmapbench::cli
