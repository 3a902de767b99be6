#include "runners/cli/run_processes.hpp"

#include <fmt/core.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runners/cli/command.hpp"
#include "kernels/procfs/sysfs_text.hpp"
#include "runners/results/atomic_file.hpp"
#include "kernels/safety/run_lock.hpp"

namespace rmapbench::cli {

namespace {

constexpr const char* kAslrSetEnv = "RMAPBENCH_ASLR_OFF_BY_HARNESS";

std::vector<char*> argv_of(std::vector<std::string>& words) {
  std::vector<char*> argv;
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  return argv;
}

// How this very program is started again through /proc/self/exe: words[0]
// is replaced by what precedes our arguments. Usually just our name; but
// the arm64 bundle starts rmapbench through its own dynamic loader
// ("ld-linux-aarch64.so.1 --library-path lib bin/rmapbench ..."), and then
// /proc/self/exe is the loader, which needs its options and our path again.
std::vector<std::string> self_exec_words(std::vector<std::string> words) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return words;
  exe[n] = '\0';
  const std::string name = std::filesystem::path(exe).filename().string();
  if (!name.starts_with("ld-linux") && !name.starts_with("ld-")) return words;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> cmdline;
  for (std::string w; std::getline(in, w, '\0');) cmdline.push_back(w);
  std::vector<std::string> prefix;
  size_t i = 0;
  if (!cmdline.empty()) prefix.push_back(cmdline[i++]);
  while (i < cmdline.size() && cmdline[i].starts_with("--")) {
    const std::string& opt = cmdline[i];
    const bool takes_value = opt == "--library-path" || opt == "--preload" || opt == "--argv0" || opt == "--audit" ||
                             opt == "--inhibit-rpath";
    prefix.push_back(cmdline[i++]);
    if (takes_value && i < cmdline.size()) prefix.push_back(cmdline[i++]);
  }
  if (i >= cmdline.size()) return words;
  prefix.push_back(cmdline[i]);  // the program the loader ran: us
  prefix.insert(prefix.end(), words.begin() + 1, words.end());
  return prefix;
}

volatile sig_atomic_t g_child = 0;
volatile sig_atomic_t g_signal = 0;

void forward_signal(int sig) {
  g_signal = sig;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

AslrState apply_aslr_policy(const RunOptions& o, const std::vector<std::string>& args) {
  const std::string va = std::string(sysfs::trim(sysfs::read_knob("/proc/sys/kernel/randomize_va_space")));
  const int persona = personality(0xffffffff);
  const bool no_randomize = persona != -1 && (persona & ADDR_NO_RANDOMIZE);
  if (va == "0") return {"off", "randomize_va_space=0 (host-wide)"};
  if (no_randomize)
    return {"off", std::getenv(kAslrSetEnv) ? "ADDR_NO_RANDOMIZE set by rmapbench for its process tree (re-exec)"
                                            : "ADDR_NO_RANDOMIZE inherited (setarch -R)"};
  if (o.keep_aslr) return {"on", fmt::format("--keep-aslr (randomize_va_space={}): each process gets a random layout", va)};
  if (persona == -1 || personality(static_cast<unsigned long>(persona) | ADDR_NO_RANDOMIZE) == -1) {
    const std::string why = std::strerror(errno);
    return {"on", "could not set ADDR_NO_RANDOMIZE: " + why};
  }
  setenv(kAslrSetEnv, "1", 1);
  std::vector<std::string> words = {"rmapbench", "run"};
  words.insert(words.end(), args.begin(), args.end());
  words = self_exec_words(std::move(words));
  auto argv = argv_of(words);
  execv("/proc/self/exe", argv.data());
  const std::string why = std::strerror(errno);
  personality(static_cast<unsigned long>(persona));
  unsetenv(kAslrSetEnv);
  return {"on", "re-exec with ADDR_NO_RANDOMIZE failed: " + why};
}

std::string merge_run_results(const std::vector<std::string>& texts, int first_index) {
  nlohmann::ordered_json merged;
  bool complete = true;
  int index = first_index;
  for (const auto& text : texts) {
    auto j = nlohmann::ordered_json::parse(text);
    if (merged.is_null()) {
      merged = j;
      merged["benchmarks"] = nlohmann::ordered_json::array();
    }
    if (j.contains("context") && j["context"].value("rmapbench.complete", "true") != "true") complete = false;
    for (auto& b : j["benchmarks"]) {
      b["run_index"] = index;
      merged["benchmarks"].push_back(b);
    }
    if (j.contains("host_reference") && j["host_reference"].contains("samples")) {
      if (!merged.contains("host_reference") || index == first_index) {
        merged["host_reference"] = j["host_reference"];
        merged["host_reference"]["samples"] = nlohmann::ordered_json::array();
      }
      for (auto& s : j["host_reference"]["samples"]) {
        s["run_index"] = index;
        merged["host_reference"]["samples"].push_back(s);
      }
    }
    ++index;
  }
  if (merged.is_null()) return "";
  merged["context"]["rmapbench.runs"] = std::to_string(texts.size());
  merged["context"]["rmapbench.complete"] = complete ? "true" : "false";
  return merged.dump(2) + "\n";
}

int run_several(const RunOptions& o, const std::vector<std::string>& args, results::OutputFile& output) {
  const std::string& out = output.path();
  const bool json_on_stdout = output.kind() == results::OutputFile::Kind::standard_output;
  // The children's arguments: ours without --runs and --out (--allow-destructive,
  // --sweep and the rest reach every run as given).
  std::vector<std::string> base;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--runs" || a == "--out" || a == "--benchmark_out") {
      ++i;
      continue;
    }
    if (a.starts_with("--runs=") || a.starts_with("--out=") || a.starts_with("--benchmark_out=")) continue;
    base.push_back(a);
  }
  setenv(kParentHoldsLockEnv, std::to_string(getpid()).c_str(), 1);
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  // The runs' own files go to a private directory: `out` may be a device,
  // a FIFO or stdout (README "Output files"), never a place for siblings.
  std::string scratch = (std::filesystem::temp_directory_path() / "rmapbench-runs.XXXXXX").string();
  if (!mkdtemp(scratch.data())) {
    fmt::print(stderr, "rmapbench run: a directory for the runs' files: {}\n", std::strerror(errno));
    return kExitUsage;
  }
  struct RemoveScratch {
    std::string dir;
    ~RemoveScratch() {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  } remove_scratch{scratch};
  std::vector<std::string> texts, files;
  int worst = kExitOk;
  for (int r = 0; r < o.runs && !g_signal; ++r) {
    const std::string file = fmt::format("{}/run{}.json", scratch, r);
    fmt::print(stderr, "rmapbench run: run {} of {} (a separate process)\n", r + 1, o.runs);
    std::vector<std::string> words = {"rmapbench", "run"};
    words.insert(words.end(), base.begin(), base.end());
    words.insert(words.end(), {"--runs", "1", "--out", file});
    words = self_exec_words(std::move(words));
    auto argv = argv_of(words);
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      fmt::print(stderr, "rmapbench run: fork: {}\n", std::strerror(errno));
      return kExitUsage;
    }
    if (pid == 0) {
      for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
      // The lock is ours (the parent's): a run must not outlive it. SIGKILL,
      // as if the parent's own process had been killed: the knob journal then
      // restores what it changed (the next run, or rmapbench restore).
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      // With --out -, stdout carries the merged JSON alone.
      if (json_on_stdout) dup2(STDERR_FILENO, STDOUT_FILENO);
      execv("/proc/self/exe", argv.data());
      _exit(127);
    }
    g_child = pid;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    g_child = 0;
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (g_signal) {
      // Interrupted (the child may have died of the signal before it could
      // handle it): keep what it wrote, stop.
      std::error_code ec;
      if (std::filesystem::exists(file, ec)) {
        texts.push_back(read_text(file));
        files.push_back(file);
      }
      break;
    }
    if (code != kExitOk && code != kExitFailure && code != kExitInterrupted) {
      fmt::print(stderr, "rmapbench run: run {} of {} exited {}; stopping\n", r + 1, o.runs, code);
      return code == kExitUsage ? kExitUsage : kExitFailure;
    }
    if (code == kExitFailure) worst = kExitFailure;
    texts.push_back(read_text(file));
    files.push_back(file);
    if (code == kExitInterrupted) break;
  }
  std::string merged;
  try {
    merged = merge_run_results(texts);
  } catch (const std::exception& e) {
    fmt::print(stderr, "rmapbench run: merging the runs: {}\n", e.what());
    return kExitUsage;
  }
  if (merged.empty()) {
    fmt::print(stderr, "rmapbench run: interrupted before a run wrote results; nothing written\n");
    return g_signal ? kExitInterrupted : kExitUsage;
  }
  if (g_signal) {
    auto j = nlohmann::ordered_json::parse(merged);
    j["context"]["rmapbench.complete"] = "false";
    merged = j.dump(2) + "\n";
  }
  Status written = output.write(merged);
  if (!written.failed()) written = output.commit();
  if (written.failed()) {
    fmt::print(stderr, "rmapbench run: the results were not written: {}\n", written.message());
    return kExitUsage;
  }
  fmt::print(json_on_stdout ? stderr : stdout, "\n{} separate runs merged (run_index 0..{})\nresults: {}\n",
             texts.size(), texts.size() - 1, out);
  if (g_signal) return kExitInterrupted;
  return worst;
}

}  // namespace rmapbench::cli
