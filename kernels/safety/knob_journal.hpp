// The knob journal (state_dir()/knobs.journal): before a knob guard writes
// a knob, the knob's original value is appended here and fsync'd, so a run
// that dies by SIGKILL or a crash is put right by the next rmapbench start
// (restore_journaled_knobs) or by `rmapbench restore` (restore_journal).
#pragma once

#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::safety {

// Restores every knob left in the journal by an earlier run that died
// (SIGKILL, crash). Returns how many were restored, or the error.
Result<int> restore_journaled_knobs();

// Directory of the journal and the run lock: $RMAPBENCH_STATE_DIR, else
// /run/rmapbench (root) or $XDG_RUNTIME_DIR/rmapbench, else /tmp/rmapbench-$UID.
std::string state_dir();

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

// ---------------------------------------------------------------------------
// The guard's side (knob_guard.cpp): each call takes the journal lock.

// Identifies one guard's entry across processes and pid reuse.
struct JournalKey {
  int pid = 0;
  long long start_time = 0;
  unsigned long long seq = 0;
};
// Appends the entry, fsync'ing the file and the directory.
Status journal_append(const JournalEntry& e);
// Drops the entry `drop`; when `handover` is set, that entry's original
// becomes `original` (a newer guard on the same knob takes over).
Status journal_drop(const JournalKey& drop, const JournalKey* handover = nullptr, const std::string& original = {});

// This process's start time (ticks after boot), cached: what tells a journal
// entry's owner from a later process that got the same pid.
long long self_start_time();

}  // namespace rmapbench::safety
