// rmapbench doctor: what this host is, what it can run, and what would make
// its results unstable, before any time is spent running.
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "runners/host/host_report.hpp"

namespace rmapbench::cli {
namespace {

constexpr const char* kDoctorHelp = R"(Usage: rmapbench doctor [--json]

Probes this host and prints the facts every result records in its context,
grouped in sections:
  Kernel         release, version, arch, hostname, detected variant, config source
  CPU            model, CPUs online
  Memory & NUMA  total/available memory, NUMA nodes with their CPUs, memory, distances
  THP            /sys/kernel/mm/transparent_hugepage knobs and mTHP sizes
  KSM            /sys/kernel/mm/ksm knobs
  Kernel config  the CONFIG_ options that matter to rmap workloads
  Observability  perf events, tracefs, debugfs, lockdown, slab counters
  Stability      cpufreq governor, turbo, ASLR, emulation/virtualization
then "Warnings:": each problem that makes results unstable or a workload
impossible on this host, with the command or change that fixes it. Warnings
marked (mild) leave results usable.

Probing only reads, except that as root it may mount securityfs for a moment
to read the lockdown mode (unmounted again right away).

Options:
  --json       print {"context": {key: value, ...}, "warnings": [{"problem",
               "fix", "mild"}, ...]} instead; the keys are those of a result's
               context
  -h, --help   this text

Exit status: 0 (warnings do not change it), 2 on a usage error.
)";

const char* section_of(const std::string& key) {
  auto has = [&](std::string_view p) { return key.rfind(p, 0) == 0; };
  if (has("kernel_") || key == "arch" || key == "hostname" || key == "variant" || key == "config_source")
    return "Kernel";
  if (has("cpu")) return "CPU";
  if (has("mem_") || has("numa_")) return "Memory & NUMA";
  if (has("thp.")) return "THP";
  if (has("ksm.") || key == "ksm_users") return "KSM";
  if (has("config.")) return "Kernel config";
  if (has("perf") || has("trace") || has("debugfs") || has("lockdown") || has("slab_")) return "Observability";
  if (key == "governor" || key == "turbo" || key == "aslr" || has("emulation")) return "Stability";
  return "Other";
}

// The section heading already says "THP", so "thp.enabled" reads as "enabled".
std::string label_of(const std::string& key) {
  for (std::string_view p : {"thp.", "ksm.", "config."})
    if (key.rfind(p, 0) == 0) return key.substr(p.size());
  return key;
}

std::string with_human_size(const std::string& key, const std::string& value) {
  if (key.size() < 6 || key.compare(key.size() - 6, 6, "_bytes") != 0) return value;
  char* end = nullptr;
  double bytes = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end) return value;
  return fmt::format("{}  ({:.1f} GiB)", value, bytes / (1024.0 * 1024 * 1024));
}

void print_text(const std::vector<host::Fact>& facts, const std::vector<host::Warning>& warnings) {
  static const char* const kOrder[] = {"Kernel", "CPU",           "Memory & NUMA", "THP",  "KSM",
                                       "Kernel config", "Observability", "Stability", "Other"};
  for (const char* section : kOrder) {
    std::vector<const host::Fact*> mine;
    size_t width = 0;
    for (const auto& f : facts) {
      if (std::string_view(section_of(f.key)) != section) continue;
      mine.push_back(&f);
      width = std::max(width, label_of(f.key).size());
    }
    if (mine.empty()) continue;
    fmt::print("{}\n", section);
    for (const auto* f : mine)
      fmt::print("  {:<{}}  {}\n", label_of(f->key), width, with_human_size(f->key, f->value));
    fmt::print("\n");
  }
  if (warnings.empty()) {
    fmt::print("Warnings: none\n");
    return;
  }
  fmt::print("Warnings:\n");
  for (const auto& w : warnings) {
    fmt::print("  - {}{}\n", w.mild ? "(mild) " : "", w.problem);
    fmt::print("    fix: {}\n", w.fix);
  }
}

int doctor_command(const std::vector<std::string>& args) {
  bool json = false;
  CommandLine line("doctor");
  line.app.add_flag("--json", json);
  if (!line.parse(args)) return kExitUsage;
  const host::HostFacts& h = host::facts();
  const auto facts = host::context(h);
  const auto warnings = host::warnings(h);
  if (!json) {
    print_text(facts, warnings);
    return kExitOk;
  }
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  for (const auto& f : facts) context[f.key] = f.value;
  nlohmann::ordered_json warns = nlohmann::ordered_json::array();
  for (const auto& w : warnings) warns.push_back({{"problem", w.problem}, {"fix", w.fix}, {"mild", w.mild}});
  nlohmann::ordered_json out = {{"context", context}, {"warnings", warns}};
  fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace));
  return kExitOk;
}

}  // namespace

Command doctor_subcommand() {
  return {"doctor", "report this host's facts and what would make results unstable", kDoctorHelp, doctor_command};
}

}  // namespace rmapbench::cli
