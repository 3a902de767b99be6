#include "kernels/safety/knob_slots.hpp"

#include <atomic>
#include <cstring>

#include "kernels/safety/knob_file.hpp"

namespace rmapbench::safety {

namespace {

enum SlotState : int { kFree = 0, kBusy = 1, kLive = 2 };

struct Slot {
  std::atomic<int> state{kFree};
  std::atomic<int> which{0};  // which orig[] buffer is current
  pid_t owner = 0;
  unsigned long long seq = 0;
  char path[kMaxKnobPath] = {};
  char orig[2][kMaxKnobValue] = {};
  size_t orig_len[2] = {0, 0};
};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs lock-free atomics");

Slot g_slots[kMaxKnobSlots];

}  // namespace

int restore_live_knob_slots(pid_t pid) {
  int idx[kMaxKnobSlots];
  int n = 0;
  for (int i = 0; i < kMaxKnobSlots; ++i) {
    if (g_slots[i].state.load(std::memory_order_acquire) == kLive && g_slots[i].owner == pid) idx[n++] = i;
  }
  for (int i = 1; i < n; ++i) {  // insertion sort by seq, descending
    int v = idx[i];
    int j = i - 1;
    while (j >= 0 && g_slots[idx[j]].seq < g_slots[v].seq) {
      idx[j + 1] = idx[j];
      --j;
    }
    idx[j + 1] = v;
  }
  int restored = 0;
  for (int k = 0; k < n; ++k) {
    Slot& s = g_slots[idx[k]];
    int w = s.which.load(std::memory_order_acquire);
    if (write_knob_raw(s.path, s.orig[w], s.orig_len[w]) == 0) ++restored;
  }
  return restored;
}

int claim_knob_slot(pid_t owner, unsigned long long seq, const std::string& path, const std::string& original) {
  for (int i = 0; i < kMaxKnobSlots; ++i) {
    int expected = kFree;
    if (!g_slots[i].state.compare_exchange_strong(expected, kBusy, std::memory_order_acq_rel)) continue;
    Slot& s = g_slots[i];
    s.owner = owner;
    s.seq = seq;
    std::memcpy(s.path, path.c_str(), path.size() + 1);
    std::string bytes = original + "\n";
    std::memcpy(s.orig[0], bytes.data(), bytes.size());
    s.orig_len[0] = bytes.size();
    s.which.store(0, std::memory_order_release);
    s.state.store(kLive, std::memory_order_release);
    return i;
  }
  return -1;
}

void update_knob_slot_original(int i, const std::string& original) {
  if (i < 0) return;
  Slot& s = g_slots[i];
  int other = 1 - s.which.load(std::memory_order_acquire);
  std::string bytes = original + "\n";
  std::memcpy(s.orig[other], bytes.data(), bytes.size());
  s.orig_len[other] = bytes.size();
  s.which.store(other, std::memory_order_release);
}

void release_knob_slot(int i) {
  if (i < 0) return;
  g_slots[i].state.store(kBusy, std::memory_order_release);
  g_slots[i].owner = 0;
  g_slots[i].state.store(kFree, std::memory_order_release);
}

}  // namespace rmapbench::safety
