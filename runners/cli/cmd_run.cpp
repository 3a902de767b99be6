// rmapbench run: the workloads through Google Benchmark, results JSON with
// the host's facts in its context, progress and a summary on the terminal.
#include <fcntl.h>
#include <fmt/core.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "benchmarks/metrics.hpp"
#include "benchmarks/mm/status.hpp"
#include "benchmarks/registry.hpp"
#include "runners/cli/command.hpp"
#include "runners/cli/progress_reporter.hpp"
#include "runners/host/host_facts.hpp"

namespace rmapbench::cli {
namespace {

constexpr const char* kRunHelp = R"(Usage: rmapbench run [OPTIONS] [--benchmark_* flags]

Runs the workloads (see 'rmapbench list') through Google Benchmark, verifies
after each one that the kernel kept every mapping right, and writes the
results as Google Benchmark JSON with this host's facts in its "context".

Options:
  --filter RE          run only benchmarks whose name matches the regular
                       expression RE (POSIX extended, searched anywhere in the
                       name; a leading '-' excludes instead). Default: all.
  --profile P          quick (default: small sizes, 5 repetitions, a few
                       minutes) or full (the whole sweep, 10 repetitions).
  --repetitions N      repetitions per benchmark, interleaved in random order
                       (default: 5 quick, 10 full). Statistics need >= 5.
  --sweep NAME=LIST    replace the values of one sweep parameter, e.g.
                       --sweep vmas=1000,1050 or --sweep sharers=1,8. Repeatable.
  --variant LABEL      label of the kernel under test (stock, lazy, ...).
                       Default: detected (CONFIG_ANON_VMA_LAZY, else "stock").
  --out FILE           write the results to FILE. Default:
                       results/<host>-<kernel>-<variant>-<profile>-<UTC time>.json
                       ($RMAPBENCH_RESULTS_DIR replaces results/).
  --quiet              no progress lines (the summary is still printed)
  -h, --help           this text

Google Benchmark's own flags (--benchmark_min_time=, --benchmark_filter=, ...)
are passed through to it unchanged.

Exit status:
  0    every selected benchmark ran and passed its checks (skips are fine:
       the summary gives each skip's reason)
  1    at least one workload failed: an error, or its oracle caught the
       kernel losing or corrupting a mapping (the others still ran)
  2    usage error: bad option, a filter that matches nothing, an output file
       that cannot be written, another run holding the lock
  130  interrupted (SIGINT/SIGTERM/SIGHUP): the results so far are written,
       marked "rmapbench.complete": "false"
)";

struct RunOptions {
  std::string filter;
  Profile profile = Profile::quick;
  int repetitions = 0;  // 0: by profile
  std::string variant;
  std::string out;
  bool quiet = false;
  std::map<std::string, std::vector<long>> sweeps;
  std::vector<std::string> benchmark_flags;
};

// Parses "--opt=value" and "--opt value"; returns the value or nullopt.
std::optional<std::string> option_value(const std::vector<std::string>& args, size_t& i, const std::string& name) {
  const std::string& a = args[i];
  if (a == name) {
    if (i + 1 >= args.size()) throw std::invalid_argument(name + " needs a value");
    return args[++i];
  }
  if (a.rfind(name + "=", 0) == 0) return a.substr(name.size() + 1);
  return std::nullopt;
}

std::vector<long> parse_long_list(const std::string& text, const std::string& what) {
  std::vector<long> values;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long v = 0;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || v < 0)
      throw std::invalid_argument(fmt::format("{}: '{}' is not a non-negative integer", what, item));
    values.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return values;
}

RunOptions parse_options(const std::vector<std::string>& args) {
  RunOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (auto v = option_value(args, i, "--filter")) {
      o.filter = *v;
    } else if (auto v = option_value(args, i, "--profile")) {
      auto p = parse_profile(*v);
      if (!p) throw std::invalid_argument(fmt::format("unknown profile '{}' (quick or full)", *v));
      o.profile = *p;
    } else if (auto v = option_value(args, i, "--repetitions")) {
      auto list = parse_long_list(*v, "--repetitions");
      if (list.size() != 1 || list[0] < 1 || list[0] > 1000)
        throw std::invalid_argument("--repetitions must be one integer from 1 to 1000");
      o.repetitions = static_cast<int>(list[0]);
    } else if (auto v = option_value(args, i, "--variant")) {
      if (v->empty() || v->find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                            std::string::npos)
        throw std::invalid_argument("--variant takes letters, digits, '.', '_' and '-' only");
      o.variant = *v;
    } else if (auto v = option_value(args, i, "--out")) {
      o.out = *v;
    } else if (auto v = option_value(args, i, "--benchmark_out")) {
      o.out = *v;
    } else if (auto v = option_value(args, i, "--sweep")) {
      const size_t eq = v->find('=');
      if (eq == std::string::npos || eq == 0) throw std::invalid_argument("--sweep takes NAME=V1,V2,...");
      o.sweeps[v->substr(0, eq)] = parse_long_list(v->substr(eq + 1), "--sweep " + v->substr(0, eq));
    } else if (a == "--quiet" || a == "-q") {
      o.quiet = true;
    } else if (a.rfind("--benchmark_", 0) == 0) {
      o.benchmark_flags.push_back(a);
    } else {
      throw std::invalid_argument(fmt::format("unknown option '{}'", a));
    }
  }
  if (o.repetitions == 0) o.repetitions = o.profile == Profile::quick ? 5 : 10;
  return o;
}

std::string sanitize(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  return s;
}

std::string default_out_path(const host::HostFacts& h, const std::string& variant, Profile profile) {
  const char* dir = std::getenv("RMAPBENCH_RESULTS_DIR");
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  std::string host = h.hostname.substr(0, h.hostname.find('.'));
  return fmt::format("{}/{}-{}-{}-{}-{}.json", dir && *dir ? dir : "results", sanitize(host), sanitize(h.kernel_release),
                     sanitize(variant), profile_name(profile), stamp);
}

// Proves the output can be written before spending minutes on the run.
Status prepare_output(const std::string& out) {
  std::filesystem::path p(out);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (std::filesystem::is_directory(p, ec)) return Status::error(out + " is a directory");
  const std::string partial = out + ".partial";
  int fd = open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::from_errno("cannot write " + partial);
  close(fd);
  return Status::ok();
}

bool name_matches(const std::string& filter, const std::string& name) {
  if (filter.empty()) return true;
  const bool negate = filter[0] == '-';
  std::regex re(negate ? filter.substr(1) : filter, std::regex::extended);
  return std::regex_search(name, re) != negate;
}

std::string compiler_id() {
#if defined(__clang__)
  return fmt::format("clang {}", __clang_version__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}", __VERSION__);
#else
  return "unknown";
#endif
}

// Adds what only the end of the run knows, then renames into place.
Status finalize_results(const std::string& partial, const std::string& out, bool complete) {
  nlohmann::json j;
  {
    std::ifstream in(partial);
    if (!in) return Status::from_errno("cannot read back " + partial);
    try {
      in >> j;
    } catch (const std::exception& e) {
      return Status::error(fmt::format("{} is not valid JSON after the run: {}", partial, e.what()));
    }
  }
  j["context"]["rmapbench.complete"] = complete ? "true" : "false";
  {
    std::ofstream o(partial, std::ios::trunc);
    o << j.dump(2) << "\n";
    o.flush();
    if (!o) return Status::from_errno("cannot write " + partial);
  }
  int fd = open(partial.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  if (std::rename(partial.c_str(), out.c_str()) != 0) return Status::from_errno("rename to " + out);
  return Status::ok();
}

int run_command(const std::vector<std::string>& args) {
  RunOptions o;
  try {
    o = parse_options(args);
  } catch (const std::invalid_argument& e) {
    return usage_error("run", e.what());
  }
  if (!o.filter.empty()) {
    try {
      (void)name_matches(o.filter, "");
    } catch (const std::regex_error& e) {
      return usage_error("run", fmt::format("--filter '{}' is not a valid regular expression: {}", o.filter, e.what()));
    }
  }

  const std::vector<std::string> names = register_all_benchmarks(o.profile, o.sweeps);
  const size_t selected =
      static_cast<size_t>(std::count_if(names.begin(), names.end(), [&](const auto& n) { return name_matches(o.filter, n); }));
  if (selected == 0)
    return usage_error("run", fmt::format("no benchmark matches --filter '{}' in the {} profile; "
                                          "'rmapbench list --benchmarks' shows the names",
                                          o.filter, profile_name(o.profile)));

  const host::HostFacts& facts = host::facts();
  const std::string variant = o.variant.empty() ? facts.variant : o.variant;
  const std::string out = o.out.empty() ? default_out_path(facts, variant, o.profile) : o.out;
  if (Status s = prepare_output(out); s.failed()) return usage_error("run", s.message());
  const std::string partial = out + ".partial";

  for (const auto& w : host::warnings(facts))
    fmt::print(stderr, "warning: {}\n         fix: {}\n", w.problem, w.fix);

  for (const auto& f : host::context(facts)) benchmark::AddCustomContext(f.key, f.value);
  benchmark::AddCustomContext("variant", variant);
  benchmark::AddCustomContext("rmapbench.schema_version", "1");
  benchmark::AddCustomContext("rmapbench.version", RMAPBENCH_VERSION);
  benchmark::AddCustomContext("rmapbench.profile", profile_name(o.profile));
  benchmark::AddCustomContext("rmapbench.repetitions", std::to_string(o.repetitions));
  benchmark::AddCustomContext("rmapbench.filter", o.filter);
  benchmark::AddCustomContext("rmapbench.metrics", metrics_table_json());
  benchmark::AddCustomContext("compiler", compiler_id());

  std::vector<std::string> gb_args = {"rmapbench",
                                      "--benchmark_repetitions=" + std::to_string(o.repetitions),
                                      "--benchmark_enable_random_interleaving=true",
                                      "--benchmark_out=" + partial,
                                      "--benchmark_out_format=json"};
  if (!o.filter.empty()) gb_args.push_back("--benchmark_filter=" + o.filter);
  gb_args.insert(gb_args.end(), o.benchmark_flags.begin(), o.benchmark_flags.end());
  std::vector<char*> argv;
  for (auto& a : gb_args) argv.push_back(a.data());
  int argc = static_cast<int>(argv.size());
  argv.push_back(nullptr);
  benchmark::Initialize(&argc, argv.data());
  if (benchmark::ReportUnrecognizedArguments(argc, argv.data())) return kExitUsage;

  fmt::print(stderr, "rmapbench {}: {} benchmarks x {} repetitions, profile {}, kernel {} ({})\n", RMAPBENCH_VERSION,
             selected, o.repetitions, profile_name(o.profile), facts.kernel_release, variant);
  ProgressReporter progress(selected * static_cast<size_t>(o.repetitions), o.quiet);
  benchmark::JSONReporter file_reporter;
  benchmark::RunSpecifiedBenchmarks(&progress, &file_reporter);
  benchmark::Shutdown();

  const bool complete = true;
  if (Status s = finalize_results(partial, out, complete); s.failed()) {
    fmt::print(stderr, "rmapbench run: {}\n", s.message());
    return kExitUsage;
  }
  print_summary(stdout, progress.summaries());
  fmt::print("\n{} benchmarks, {} failed, {} skipped\nresults: {}\n", progress.summaries().size(), progress.failures(),
             progress.skips(), out);
  return progress.failures() > 0 ? kExitFailure : kExitOk;
}

}  // namespace

RMAPBENCH_COMMAND(run, {"run", "run the workloads, verify the kernel, write results JSON", kRunHelp, run_command});

}  // namespace rmapbench::cli
