// The one way the suite changes a kernel knob (sysfs / procfs file).
//
// Before a knob is written its original value is appended to the journal
// (fsync'd), so it is put back on scope exit, on SIGINT/SIGTERM/SIGHUP, on a
// failing workload, and after SIGKILL or a crash by the next rmapbench start
// or by `rmapbench restore` (knob_journal.hpp). The signal handler sees the
// live guards through knob_slots.hpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/safety/knob_file.hpp"     // read_knob, parse_knob_value: what a guard reads
#include "kernels/safety/knob_journal.hpp"  // restore_journaled_knobs: what a guard leaves behind
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

// How many guards this process holds (tests, diagnostics).
int live_guard_count();

}  // namespace rmapbench::safety
