// The one way the suite changes a kernel knob (sysfs / procfs file).
//
// Before a knob is written its original value is appended to the journal
// (fsync'd), so it is put back on scope exit, on SIGINT/SIGTERM/SIGHUP, on a
// failing workload, and after SIGKILL or a crash by the next rmapbench start
// or by `rmapbench restore`.
#pragma once

#include <memory>
#include <string>

#include "benchmarks/mm/status.hpp"

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

}  // namespace rmapbench::safety
