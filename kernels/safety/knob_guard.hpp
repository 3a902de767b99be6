// The one way the suite changes a kernel knob (sysfs / procfs file).
//
// Before a knob is written its original value is appended to the journal
// (fsync'd), so it is put back on scope exit, on SIGINT/SIGTERM/SIGHUP, on a
// failing workload, and after SIGKILL or a crash by the next rmapbench start
// or by `rmapbench restore`.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::safety {

class KnobGuard {
 public:
  // Journals the current value of `path`, then writes `value`. On failure
  // nothing was changed (and the journal entry is dropped).
  static Result<KnobGuard> set(const std::string& path, const std::string& value);

  KnobGuard(KnobGuard&&) noexcept;
  KnobGuard& operator=(KnobGuard&&) noexcept;
  KnobGuard(const KnobGuard&) = delete;
  KnobGuard& operator=(const KnobGuard&) = delete;
  ~KnobGuard();  // restores the original value and clears its journal entry

  const std::string& path() const;
  const std::string& original() const;
  const std::string& value() const;  // what the guard wrote

  // Restores now instead of at scope exit (the destructor then does nothing).
  // On error the journal entry is kept, so the next start or `rmapbench
  // restore` retries.
  Status restore();

  struct Impl;
 private:
  explicit KnobGuard(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Restores every knob left in the journal by an earlier run that died
// (SIGKILL, crash). Returns how many were restored, or the error.
Result<int> restore_journaled_knobs();

// Directory of the journal and the run lock: $RMAPBENCH_STATE_DIR, else
// /run/rmapbench (root) or $XDG_RUNTIME_DIR/rmapbench, else /tmp/rmapbench-$UID.
std::string state_dir();

// Installs SIGINT/SIGTERM/SIGHUP handlers that restore every live guard's
// knob (async-signal-safe), kill our process group's children, then let the
// caller finish writing partial results. Idempotent.
void install_signal_handlers();

// Set by the handlers; long loops poll it to stop early.
bool interrupted();
int interrupt_signal();

// ---------------------------------------------------------------------------
// Beyond the core API: the journal itself, for `rmapbench restore` and tests.

// The value a knob file holds, as it must be written back: the bracketed
// word of "always [madvise] never", else the trimmed contents ("0").
std::string parse_knob_value(const std::string& contents);
Result<std::string> read_knob(const std::string& path);

// Creates state_dir() (0755 for root, else 0700) if needed and refuses one
// that is a symlink or owned by another user.
Status ensure_state_dir();

// state_dir()/knobs.journal. Text, one line per live guard, fields separated
// by tabs (tab, newline and backslash escaped as \t \n \\), '#' lines are
// comments, a line without its final newline (torn write) is ignored:
//   pid  start_time  boot_id  seq  path  original  set_to
std::string journal_path();

struct JournalEntry {
  int pid = 0;                 // the owner: the process holding the guard
  long long start_time = 0;    // its start time (ticks after boot) against pid reuse
  std::string boot_id;         // /proc/sys/kernel/random/boot_id when written
  unsigned long long seq = 0;  // creation order within the owner
  std::string path;            // the knob (canonical path)
  std::string original;        // value to put back
  std::string set_to;          // value the guard wrote
};

Result<std::vector<JournalEntry>> read_journal();

enum class OwnerState { kAlive, kDead, kOtherBoot };
OwnerState owner_state(const JournalEntry& e);

struct RestoreOptions {
  bool all = false;      // also entries whose owner is still alive
  bool dry_run = false;  // decide and report, write nothing
};

enum class RestoreAction {
  kRestored,         // original written back, entry dropped
  kWouldRestore,     // dry run
  kAlreadyOriginal,  // knob already holds the original, entry dropped
  kChangedSince,     // knob holds neither what we set nor the original: someone
                     // changed it after us; left as is, entry dropped
  kOwnerAlive,       // skipped (not --all), entry kept
  kOtherBoot,        // written before the last reboot, which reset the knob; dropped
  kMissing,          // the knob file no longer exists; dropped
  kFailed,           // could not write the original; entry kept
};
const char* to_string(RestoreAction a);

struct RestoreReport {
  JournalEntry entry;
  OwnerState owner = OwnerState::kDead;
  RestoreAction action = RestoreAction::kFailed;
  std::string current;  // the knob's value when we looked ("" if unreadable)
  std::string target;   // what the knob is (to be) restored to: the oldest original of its
                        // stack of entries (nested guards on one knob are decided together)
  std::string detail;   // error text for kFailed
  std::string wrote;    // what was written for this entry: its own original (entries are
                        // replayed newest first, as the guards unwind), "" if nothing
};

// Walks the journal newest entry first (so nested guards unwind in order),
// under the journal lock. Whether a knob is restored is decided once over
// all its entries; the writes then replay every entry's own original,
// newest first across knobs, exactly as the guards unwind on a normal exit
// (KSM: run=2, which unmerges, before max_page_sharing, and run=0 last). restore_journaled_knobs() is this with default
// options, printing one line per restored knob to stderr, and failing when
// any entry could not be restored.
Result<std::vector<RestoreReport>> restore_journal(const RestoreOptions& options);

// How many guards this process holds (tests, diagnostics).
int live_guard_count();

}  // namespace rmapbench::safety
