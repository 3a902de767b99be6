// The live knob guards as the signal handler sees them: a fixed table of
// slots in static memory, published and read with lock-free atomics, so the
// handler can put every knob back without locks or allocation.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

namespace rmapbench::safety {

inline constexpr int kMaxKnobSlots = 128;
inline constexpr size_t kMaxKnobPath = 512;   // including the terminating NUL
inline constexpr size_t kMaxKnobValue = 256;  // including the newline and the NUL

// Publishes a guard: its knob and the value to put back. Returns the slot,
// or -1 when all are taken. `path` and `original` must fit the limits above.
int claim_knob_slot(pid_t owner, unsigned long long seq, const std::string& path, const std::string& original);
// A newer guard on the same knob takes over an older one's original.
void update_knob_slot_original(int slot, const std::string& original);
void release_knob_slot(int slot);

// Async-signal-safe: writes back the original of every live slot owned by
// `pid`, newest first (nested guards unwind in order). Returns how many.
int restore_live_knob_slots(pid_t pid);

}  // namespace rmapbench::safety
