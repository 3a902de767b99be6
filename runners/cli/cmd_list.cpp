// rmapbench list: every workload, the kernel path it exercises, its sweep,
// what it needs, and whether this host can run it (if not, why).
#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "benchmarks/harness/registry.hpp"
#include "runners/cli/command.hpp"

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
  --json         machine-readable output
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

int list_command(const std::vector<std::string>& args) {
  bool json = false, with_benchmarks = false;
  Profile profile = Profile::quick;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--benchmarks") {
      with_benchmarks = true;
    } else if (args[i] == "--profile" && i + 1 < args.size()) {
      auto p = parse_profile(args[++i]);
      if (!p) return usage_error("list", "unknown profile '" + args[i] + "'");
      profile = *p;
    } else {
      return usage_error("list", "unknown option '" + args[i] + "'");
    }
  }
  const std::vector<std::string> names = with_benchmarks ? register_all_benchmarks(Selection{profile, {}, {}}) : std::vector<std::string>{};
  auto names_of = [&](const std::string& workload) {
    std::vector<std::string> mine;
    for (const auto& n : names)
      if (n.rfind(workload + "/", 0) == 0) mine.push_back(n);
    return mine;
  };

  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : workloads()) {
      nlohmann::json needs = nlohmann::json::array();
      for (const auto& n : w.needs) {
        auto unmet = n.unmet();
        needs.push_back({{"what", n.what}, {"met", !unmet}, {"reason", unmet.value_or("")}});
      }
      auto reason = unmet_requirement(w);
      nlohmann::json item = {{"name", w.name},         {"kernel_path", w.kernel_path}, {"description", w.description},
                             {"oracle", w.oracle},     {"parameters", w.parameters},   {"needs", needs},
                             {"runnable", !reason},    {"reason", reason.value_or("")}};
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

RMAPBENCH_COMMAND(list, {"list", "list the workloads, what they need, and whether this host can run them", kListHelp,
                         list_command});

}  // namespace rmapbench::cli
