// rmapbench restore: put back the kernel knobs a dead run left changed.
#include <fmt/core.h>

#include "runners/cli/command.hpp"
#include "runners/cli/command_line.hpp"
#include "kernels/safety/knob_journal.hpp"
#include "kernels/safety/run_lock.hpp"

namespace rmapbench::cli {

namespace {

constexpr const char* kRestoreHelp =
    "Usage: rmapbench restore [--all] [--dry-run]\n"
    "\n"
    "Puts back the kernel knobs (THP, KSM, ... under /sys and /proc/sys) that an\n"
    "rmapbench run changed and could not restore itself because it was killed\n"
    "with SIGKILL, crashed, or the host lost power. Every knob change is written\n"
    "to a journal before it is made; this command prints what the journal holds\n"
    "and restores it, newest change first. `rmapbench run` does the same at start.\n"
    "\n"
    "An entry is restored only when its owner process is gone and the knob still\n"
    "holds a value that run left there; a knob someone changed since is left as is.\n"
    "Entries written before the last reboot are dropped (the reboot reset them).\n"
    "\n"
    "Options:\n"
    "  --all       also restore entries whose owner process is still alive (a hung\n"
    "              process, or one in another pid namespace). Refused while an\n"
    "              rmapbench run holds the run lock: stop it with SIGTERM, which\n"
    "              makes it restore its own knobs.\n"
    "  --dry-run   show what would be done, change nothing\n"
    "  -h, --help  this text\n"
    "\n"
    "Files (directory: $RMAPBENCH_STATE_DIR, else /run/rmapbench as root,\n"
    "$XDG_RUNTIME_DIR/rmapbench, else /tmp/rmapbench-$UID):\n"
    "  knobs.journal  one tab-separated line per change:\n"
    "                 pid start_time boot_id seq path original set_to\n"
    "  run.lock       who holds the run lock (pid, start, command)\n"
    "\n"
    "Exit status: 0 nothing left to restore (or dry run), 2 a knob could not be\n"
    "restored, the journal is unreadable, or a bad option.\n";

const char* owner_text(safety::OwnerState s) {
  switch (s) {
    case safety::OwnerState::kAlive: return "alive";
    case safety::OwnerState::kDead: return "dead";
    case safety::OwnerState::kOtherBoot: return "earlier boot";
  }
  return "?";
}

int run_restore(const std::vector<std::string>& args) {
  safety::RestoreOptions options;
  CommandLine line("restore");
  line.app.add_flag("--all", options.all);
  line.app.add_flag("-n,--dry-run", options.dry_run);
  if (!line.parse(args)) return kExitUsage;
  std::string journal = safety::journal_path();
  if (options.all && !options.dry_run) {
    if (auto holder = safety::RunLock::current_holder()) {
      fmt::print(stderr,
                 "rmapbench restore: a run is in progress ({} holds {}); it restores its own knobs when it "
                 "ends or gets SIGTERM. Stop it first, or drop --all to restore only dead runs' knobs.\n",
                 holder->describe(), safety::RunLock::lock_path());
      return kExitUsage;
    }
  }
  auto reports = safety::restore_journal(options);
  if (!reports) {
    fmt::print(stderr, "rmapbench restore: {}\n", reports.status().message());
    return kExitUsage;
  }
  if (reports->empty()) {
    fmt::print("knob journal {}: empty, nothing to restore\n", journal);
    return kExitOk;
  }
  fmt::print("knob journal {}: {} entr{}, newest first{}\n", journal, reports->size(),
             reports->size() == 1 ? "y" : "ies", options.dry_run ? " (dry run: nothing is changed)" : "");
  int failed = 0;
  for (const auto& r : *reports) {
    const auto& e = r.entry;
    std::string outcome = safety::to_string(r.action);
    if (r.action == safety::RestoreAction::kRestored || r.action == safety::RestoreAction::kWouldRestore)
      outcome += fmt::format(" to '{}'", r.target);
    fmt::print("  {}\n    set to '{}' by pid {} ({}), original '{}', now '{}': {}\n", e.path, e.set_to, e.pid,
               owner_text(r.owner), e.original, r.current, outcome);
    if (r.action == safety::RestoreAction::kFailed) {
      ++failed;
      fmt::print("    {}\n", r.detail);
    }
  }
  if (failed > 0) {
    fmt::print(stderr,
               "rmapbench restore: {} knob(s) could not be restored; they stay in {}. Write the original "
               "value into each path by hand (echo VALUE > PATH) once whatever blocks it is gone.\n",
               failed, journal);
    return kExitUsage;
  }
  return kExitOk;
}

}  // namespace

Command restore_subcommand() {
  return {"restore", "put back kernel knobs a killed or crashed run left changed", kRestoreHelp, run_restore};
}

}  // namespace rmapbench::cli
