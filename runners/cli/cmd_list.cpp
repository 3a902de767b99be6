// rmapbench list: every workload, the kernel path it exercises, its sweep,
// what it needs, and whether this host can run it (if not, why).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <map>

#include "benchmarks/harness/registry.hpp"
#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"

namespace rmapbench::cli {
namespace {

constexpr const char* kListHelp = R"(Usage: rmapbench list [--benchmarks] [--profile quick|full] [--json]

Lists every workload: the kernel rmap path it exercises, what it times, its
oracle, its sweep parameters, what it needs from the host, and whether this
host can run it (and if not, the exact reason).

Options:
  --benchmarks   also list the benchmark names the profile registers (the
                 names --filter matches)
  --profile P    quick (default) or full, for --benchmarks
  --json         machine-readable output: an array with one object per
                 workload: name (the family: the first part of its
                 benchmark names), kernel_path, description, oracle,
                 parameters (text), sweep (one {param, quick, full} per
                 sweep parameter, the values of each profile before any
                 run --sweep), needs ({what, met, reason} each), runnable,
                 reason, profiles ({quick, full}: the benchmark names each
                 profile registers), and with --benchmarks, benchmarks (the
                 names of --profile)
  -h, --help     this text

Exit status: 0, or 2 on a usage error.
)";

std::string wrap(const std::string& text, size_t indent, size_t width = 78) {
  std::string out, line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t sp = text.find(' ', pos);
    std::string word = text.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

// The benchmark names a profile registers, per workload; nothing reaches
// Google Benchmark.
std::map<std::string, std::vector<std::string>> benchmark_names(Profile profile) {
  std::map<std::string, std::vector<std::string>> by_workload;
  register_all_benchmarks(Selection{profile, {}, [&](const std::string& name) {
                                      by_workload[name.substr(0, name.find('/'))].push_back(name);
                                      return false;
                                    }});
  return by_workload;
}

int list_command(const std::vector<std::string>& args) {
  bool json = false, with_benchmarks = false;
  std::string profile_text;
  CommandLine line("list");
  line.app.add_flag("--json", json);
  line.app.add_flag("--benchmarks", with_benchmarks);
  CLI::Option* profile_option = line.app.add_option("--profile", profile_text);
  if (!line.parse(args)) return kExitUsage;
  Profile profile = Profile::quick;
  if (given(profile_option)) {
    auto p = parse_profile(profile_text);
    if (!p) return usage_error("list", "unknown profile '" + profile_text + "'");
    profile = *p;
  }
  const auto names = with_benchmarks ? benchmark_names(profile) : std::map<std::string, std::vector<std::string>>{};
  auto names_of = [&](const std::string& workload) {
    auto it = names.find(workload);
    return it == names.end() ? std::vector<std::string>{} : it->second;
  };

  if (json) {
    const auto sweeps = declared_sweeps();
    const std::map<Profile, std::map<std::string, std::vector<std::string>>> per_profile = {
        {Profile::quick, benchmark_names(Profile::quick)}, {Profile::full, benchmark_names(Profile::full)}};
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : workloads()) {
      nlohmann::json needs = nlohmann::json::array();
      for (const auto& n : w.needs) {
        auto unmet = n.unmet();
        needs.push_back({{"what", n.what}, {"met", !unmet}, {"reason", unmet.value_or("")}});
      }
      auto reason = unmet_requirement(w);
      nlohmann::json sweep = nlohmann::json::array();
      if (auto it = sweeps.find(w.name); it != sweeps.end())
        for (const auto& d : it->second) sweep.push_back({{"param", d.param}, {"quick", d.quick}, {"full", d.full}});
      nlohmann::json profiles = nlohmann::json::object();
      for (const auto& [p, by_workload] : per_profile) {
        auto it = by_workload.find(w.name);
        profiles[profile_name(p)] = it == by_workload.end() ? std::vector<std::string>{} : it->second;
      }
      nlohmann::json item = {{"name", w.name},     {"kernel_path", w.kernel_path}, {"description", w.description},
                             {"oracle", w.oracle}, {"parameters", w.parameters},   {"sweep", sweep},
                             {"needs", needs},     {"runnable", !reason},          {"reason", reason.value_or("")},
                             {"profiles", profiles}};
      if (with_benchmarks) item["benchmarks"] = names_of(w.name);
      out.push_back(item);
    }
    fmt::print("{}\n", out.dump(2));
    return kExitOk;
  }
  for (const auto& w : workloads()) {
    auto reason = unmet_requirement(w);
    fmt::print("{}  [{}]\n", w.name, reason ? "cannot run here: " + *reason : "runs on this host");
    fmt::print("  kernel path: {}", wrap(w.kernel_path, 15).substr(15));
    fmt::print("{}", wrap(w.description, 2));
    if (!w.oracle.empty()) fmt::print("  oracle:      {}", wrap(w.oracle, 15).substr(15));
    fmt::print("  parameters:  {}", wrap(w.parameters, 15).substr(15));
    if (w.needs.empty()) fmt::print("  needs:       nothing special\n");
    for (const auto& n : w.needs) {
      auto unmet = n.unmet();
      fmt::print("  needs:       {} - {}\n", n.what, unmet ? "MISSING: " + *unmet : "ok");
    }
    if (with_benchmarks)
      for (const auto& n : names_of(w.name)) fmt::print("    {}\n", n);
    fmt::print("\n");
  }
  return kExitOk;
}

}  // namespace

Command list_subcommand() {
  return {"list", "list the workloads, what they need, and whether this host can run them", kListHelp, list_command};
}

}  // namespace rmapbench::cli
