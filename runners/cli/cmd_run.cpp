// rmapbench run: the workloads through Google Benchmark, results JSON with
// the host's facts in its context, progress and a summary on the terminal.
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>

#include "benchmarks/harness/host_reference.hpp"
#include "benchmarks/harness/metrics.hpp"
#include "kernels/status.hpp"
#include "benchmarks/harness/registry.hpp"
#include "runners/cli/command.hpp"
#include "runners/cli/progress_reporter.hpp"
#include "runners/cli/run_processes.hpp"
#include "runners/cli/run_options.hpp"
#include "runners/host/host_report.hpp"
#include "runners/results/atomic_file.hpp"
#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_journal.hpp"
#include "kernels/safety/signals.hpp"
#include "kernels/safety/run_lock.hpp"

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
  --profile P          quick (default: small sizes, 6 separate runs of 3
                       repetitions, 2-3 minutes) or full (the whole
                       sweep, one run of 10 repetitions).
  --repetitions N      repetitions per benchmark and run, interleaved in
                       random order (default: 3 quick, 10 full).
  --runs K             K separate runs (processes, one after another), each
                       with its own memory layout and interleaved repetitions,
                       into one result (run_index per repetition). compare
                       then treats the run as the unit of replication.
                       Default: 6 quick, 1 full.
  --keep-aslr          leave address-space randomization on. By default run
                       turns it off for its own process tree (personality
                       ADDR_NO_RANDOMIZE, one re-exec): a random layout per
                       run moves layout-dependent counts between runs.
  --allow-destructive  run the workloads that harm the host they run on:
                       memory_failure poisons pages (MADV_HWPOISON,
                       MADV_SOFT_OFFLINE) and unpoisons them where the kernel
                       lets it (hwpoison_inject). Without it they skip and
                       say why. For throwaway hosts: 'rmapbench qemu' passes
                       it to the guest's run; never given on a host by default.
  --sweep NAME=LIST    replace the values of one sweep parameter, e.g.
                       --sweep vmas=1000,1050 or --sweep sharers=1,8. Repeatable.
  --variant LABEL      label of the kernel under test (stock, lazy, ...).
                       Default: detected (CONFIG_ANON_VMA_LAZY, else "stock").
  --out FILE           write the results to FILE. Default:
                       results/<host>-<kernel>-<variant>-<profile>-<UTC time>.json
                       ($RMAPBENCH_RESULTS_DIR replaces results/). A regular
                       file is replaced atomically at the end; a character
                       device or FIFO is written to in place; a symlink is
                       followed; - is stdout (the summary then goes to stderr).
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

std::string default_out_path(const host::HostFacts& h, const std::string& variant, Profile profile) {
  const char* dir = std::getenv("RMAPBENCH_RESULTS_DIR");
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  return results_file_name(dir && *dir ? dir : "results", h.hostname, h.kernel_release, variant, profile, stamp);
}

// Google Benchmark's JSON, kept in memory: finalize_results() adds to it and
// writes it through results::OutputFile, whose every write is checked (an
// ofstream's are not). Google Benchmark points its file reporter at its own
// --benchmark_out stream before ReportContext(); it is redirected here.
class CapturingJsonReporter : public benchmark::JSONReporter {
 public:
  bool ReportContext(const Context& context) override {
    SetOutputStream(&text_);
    SetErrorStream(&text_);
    return benchmark::JSONReporter::ReportContext(context);
  }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
};

// Whether the pass-through flags ask Google Benchmark only to list the names.
bool lists_tests_only(const std::vector<std::string>& flags) {
  bool list = false;
  for (const auto& f : flags) {
    if (f == "--benchmark_list_tests") {
      list = true;
    } else if (f.starts_with("--benchmark_list_tests=")) {
      std::string v = f.substr(23);
      list = !(v == "false" || v == "0" || v == "no" || v == "f" || v == "n" || v == "False" || v == "FALSE");
    }
  }
  return list;
}

// Creates the output's directory if needed (idempotent, harmless to a
// running run) and says whether the output could be written, creating no
// file: a bad --out is refused before the lock, whoever holds it.
Status check_output(const std::string& out) {
  std::filesystem::path p(out);
  std::error_code ec;
  if (out != "-" && p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  return results::OutputFile::check(out);
}

// Decides where the results go (README "Output files") and proves it can be
// written before spending minutes on the run: for a regular file, the run's
// own uniquely named temporary is created next to it now. Called with the
// run lock held, so a run refused by the lock creates no file.
Result<results::OutputFile> prepare_output(const std::string& out) {
  std::filesystem::path p(out);
  std::error_code ec;
  if (out != "-" && p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  return results::OutputFile::open(out);
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

// Google Benchmark 1.7 writes NaN / Infinity for undefined aggregates (the
// CV of an all-zero counter), which is not JSON; those become null.
std::string without_non_finite_numbers(const std::string& text) {
  static const std::regex non_finite(R"(:\s*-?(NaN|nan|Infinity|inf)(\s*[,\n}]))");
  return std::regex_replace(text, non_finite, ": null$2");
}

// The host reference's samples, in a section of their own (results/
// README.md): "benchmarks" stays the workloads, as Google Benchmark's tools
// and users' scripts expect; --runs K adds each sample's run_index.
void add_host_reference(nlohmann::json& j, const std::vector<HostReference::Sample>& samples) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : samples) list.push_back({{"us", s.us}, {kStealMetric, s.steal_pct}});
  j["host_reference"] = {{"benchmark", kHostReferenceBenchmark}, {"label", HostReference::kLabel}, {"samples", list}};
}

// Adds what only the end of the run knows to Google Benchmark's JSON.
Result<std::string> finalize_results(const std::string& captured, bool complete,
                                     const std::vector<HostReference::Sample>& reference) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(without_non_finite_numbers(captured));
  } catch (const std::exception& e) {
    return Status::error(fmt::format("the results are not valid JSON after the run: {}", e.what()));
  }
  j["context"]["rmapbench.complete"] = complete ? "true" : "false";
  for (auto& b : j["benchmarks"]) {
    for (const char* key : {"name", "run_name"})
      if (b.contains(key) && b[key].is_string()) b[key] = suite_benchmark_name(b[key].get<std::string>());
  }
  if (!reference.empty()) add_host_reference(j, reference);
  return j.dump(2) + "\n";
}

// A child of `run --runs K` whose parent (still alive) holds the run lock.
bool parent_holds_lock() {
  const char* env = std::getenv(kParentHoldsLockEnv);
  if (!env || std::to_string(getppid()) != env) return false;
  auto holder = safety::RunLock::current_holder();
  return holder && holder->pid == getppid();
}

int run_command(const std::vector<std::string>& args) {
  RunOptions o;
  try {
    o = parse_run_options(args);
  } catch (const std::invalid_argument& e) {
    return usage_error("run", e.what());
  }
  if (!o.filter.empty()) {
    try {
      (void)filter_matches(o.filter, "");
    } catch (const std::regex_error& e) {
      return usage_error("run", fmt::format("--filter '{}' is not a valid regular expression: {}", o.filter, e.what()));
    }
  }

  // May re-execute this process with address-space randomization off.
  const AslrState aslr = apply_aslr_policy(o, args);

  Selection selection{o.profile, o.sweeps, [&](const std::string& name) { return filter_matches(o.filter, name); },
                      o.allow_destructive};
  const std::vector<std::string> registered = register_all_benchmarks(selection);
  const size_t selected = registered.size();
  if (std::string problems = sweep_problems(selection); !problems.empty()) return usage_error("run", problems);
  if (selected == 0)
    return usage_error("run", fmt::format("no benchmark matches --filter '{}' in the {} profile; "
                                          "'rmapbench list --benchmarks' shows the names",
                                          o.filter, profile_name(o.profile)));

  const host::HostFacts& facts = host::facts();
  const std::string variant = o.variant.empty() ? facts.variant : o.variant;

  std::vector<std::string> gb_args = {"rmapbench",
                                      "--benchmark_repetitions=" + std::to_string(o.repetitions),
                                      "--benchmark_enable_random_interleaving=true",
                                      o.profile == Profile::quick ? "--benchmark_min_time=0.05" : "--benchmark_min_time=0.5"};
  gb_args.insert(gb_args.end(), o.benchmark_flags.begin(), o.benchmark_flags.end());
  auto initialize_google_benchmark = [&gb_args]() {
    std::vector<char*> argv;
    for (auto& a : gb_args) argv.push_back(a.data());
    int argc = static_cast<int>(argv.size());
    argv.push_back(nullptr);
    benchmark::Initialize(&argc, argv.data());
    return !benchmark::ReportUnrecognizedArguments(argc, argv.data());
  };

  // --benchmark_list_tests: the names only; nothing runs, nothing is written.
  if (lists_tests_only(o.benchmark_flags)) {
    if (!initialize_google_benchmark()) return kExitUsage;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return kExitOk;
  }

  const std::string out = o.out.empty() ? default_out_path(facts, variant, o.profile) : o.out;
  if (Status s = check_output(out); s.failed()) return usage_error("run", s.message());

  // One run per host. The lock comes before any file is created: a run it
  // refuses touches nothing of the running one's. One of --runs K: the
  // parent holds the lock for all K.
  std::optional<safety::RunLock> lock;
  if (!parent_holds_lock()) {
    auto taken = safety::RunLock::acquire(safety::current_command_line());
    if (!taken) {
      fmt::print(stderr, "rmapbench run: {}\n", taken.status().message());
      return kExitUsage;
    }
    lock.emplace(std::move(*taken));
    if (!lock->note().empty()) fmt::print(stderr, "note: {}\n", lock->note());
  }

  auto output = prepare_output(out);
  if (!output) return usage_error("run", output.status().message());
  if (o.runs > 1) return run_several(o, args, *output);
  // With --out - the JSON is stdout; the summary goes to stderr instead.
  std::FILE* summary_to = output->kind() == results::OutputFile::Kind::standard_output ? stderr : stdout;

  // Knobs a crashed run left changed are put back first.
  if (auto restored = safety::restore_journaled_knobs(); !restored)
    fmt::print(stderr, "warning: restoring knobs left by an earlier run: {}\n", restored.status().message());
  auto reaper = safety::ProcessGroupReaper::create();
  if (!reaper) fmt::print(stderr, "warning: {}\n", reaper.status().message());
  safety::install_signal_handlers();

  for (const auto& w : host::warnings(facts)) {
    // The system-wide setting does not reach this run's processes when the
    // harness turned randomization off for them.
    if (aslr.effective == "off" && w.problem.starts_with("ASLR is on")) continue;
    fmt::print(stderr, "warning: {}\n         fix: {}\n", w.problem, w.fix);
  }

  for (const auto& f : host::context(facts))
    if (f.key != "variant") benchmark::AddCustomContext(f.key, f.value);
  benchmark::AddCustomContext("variant", variant);
  benchmark::AddCustomContext("aslr_effective", aslr.effective);
  benchmark::AddCustomContext("aslr_how", aslr.how);
  benchmark::AddCustomContext("rmapbench.schema_version", "1");
  benchmark::AddCustomContext("rmapbench.version", RMAPBENCH_VERSION);
  benchmark::AddCustomContext("rmapbench.profile", profile_name(o.profile));
  benchmark::AddCustomContext("rmapbench.repetitions", std::to_string(o.repetitions));
  benchmark::AddCustomContext("rmapbench.filter", o.filter);
  benchmark::AddCustomContext("rmapbench.allow_destructive", o.allow_destructive ? "true" : "false");
  benchmark::AddCustomContext("rmapbench.metrics", metrics_table_json());
  benchmark::AddCustomContext("compiler", compiler_id());

  // Google Benchmark needs a file for its file reporter; the reporter writes
  // into memory instead (CapturingJsonReporter).
  gb_args.insert(gb_args.begin() + 1, {"--benchmark_out=/dev/null", "--benchmark_out_format=json"});
  if (!initialize_google_benchmark()) return kExitUsage;

  fmt::print(stderr, "rmapbench {}: {} benchmarks x {} repetitions, profile {}, kernel {} ({})\n", RMAPBENCH_VERSION,
             selected, o.repetitions, profile_name(o.profile), facts.kernel_release, variant);
  ProgressReporter progress(selected * static_cast<size_t>(o.repetitions), o.quiet);
  auto reference = HostReference::create();
  if (!reference)
    fmt::print(stderr, "warning: no host reference in these results ({}): compare cannot tell host drift from a "
                       "kernel change\n", reference.status().message());
  else {
    reference->sample_if_due();
    progress.after_each_repetition([&reference] { reference->sample_if_due(); });
  }
  CapturingJsonReporter file_reporter;
  // The signal path kills the children; a workload writing to a dead
  // child's pipe then gets EPIPE (its error) instead of SIGPIPE ending the
  // run before it writes its incomplete results.
  signal(SIGPIPE, SIG_IGN);
  benchmark::RunSpecifiedBenchmarks(&progress, &file_reporter);
  signal(SIGPIPE, SIG_DFL);
  benchmark::Shutdown();
  if (reference && !safety::interrupted()) reference->sample_now();

  const bool complete = !safety::interrupted();
  // The results are written first; the summary is printed whether or not
  // that worked (a full disk loses the file, not what the run showed).
  Status written = Status::ok();
  const std::vector<HostReference::Sample> no_samples;
  if (auto text = finalize_results(file_reporter.text(), complete, reference ? reference->samples() : no_samples); !text) {
    written = text.status();
  } else if (Status s = output->write(*text); s.failed()) {
    written = s;
  } else {
    written = output->commit();
  }
  // Registration order reads as the sweep; the run order was random.
  std::vector<BenchmarkSummary> summaries = progress.summaries();
  auto rank = [&](const BenchmarkSummary& s) { return std::find(registered.begin(), registered.end(), s.name) - registered.begin(); };
  std::stable_sort(summaries.begin(), summaries.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  print_summary(summary_to, summaries);
  fmt::print(summary_to, "\n{} benchmarks, {} failed, {} skipped\nresults: {}\n", progress.summaries().size(),
             progress.failures(), progress.skips(), written.failed() ? "NOT WRITTEN" : out);
  std::fflush(summary_to);
  if (written.failed()) {
    fmt::print(stderr, "rmapbench run: the results were not written: {}\n", written.message());
    return kExitUsage;
  }
  if (!complete) {
    fmt::print(stderr, "rmapbench run: interrupted by {}; the results so far are in {} (marked incomplete)\n",
               safety::signal_name(safety::interrupt_signal()), out);
    return kExitInterrupted;
  }
  return progress.failures() > 0 ? kExitFailure : kExitOk;
}

}  // namespace

Command run_subcommand() {
  return {"run", "run the workloads, verify the kernel, write results JSON", kRunHelp, run_command};
}

}  // namespace rmapbench::cli
