// Knob guards: the one way the suite changes a kernel knob.
//
// Order of a change:  read original -> append journal entry, fsync file and
// directory (knob_journal.cpp) -> publish the guard in the lock-free slot
// table, what the signal handler sees (knob_slots.cpp) -> write the knob.
// Order of a restore: write the original -> unpublish the slot -> drop the
// journal entry (rewrite to a temp file + rename, fsync'd).
// A crash anywhere leaves the journal holding every knob that may differ
// from its original; restoring twice is harmless.
#include "kernels/safety/knob_guard.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <mutex>

#include <fmt/core.h>

#include "kernels/safety/children.hpp"
#include "kernels/safety/knob_slots.hpp"
#include "kernels/safety/signals.hpp"

namespace rmapbench::safety {

struct KnobGuard::Impl {
  std::string path;      // canonical
  std::string original;  // what restore writes back
  std::string value;     // what we wrote
  pid_t owner = 0;
  long long start_time = 0;
  unsigned long long seq = 0;
  int slot = -1;
  bool armed = false;
};

namespace {

std::atomic<unsigned long long> g_seq{0};

// The live guards of this process, oldest first (non-handler view).
std::mutex& registry_mutex() {
  static std::mutex& m = *new std::mutex;  // never destroyed: guards may die during static destruction
  return m;
}
std::vector<KnobGuard::Impl*>& registry() {
  static auto& v = *new std::vector<KnobGuard::Impl*>;
  return v;
}

JournalKey key_of(const KnobGuard::Impl& im) { return {im.owner, im.start_time, im.seq}; }

std::string shell_quote_value(const std::string& v) { return "'" + v + "'"; }

Status restore_impl(KnobGuard::Impl& im) {
  if (!im.armed) return Status::ok();
  im.armed = false;
  if (getpid() != im.owner) return Status::ok();  // a forked copy: only the owner restores
  std::lock_guard<std::mutex> lock(registry_mutex());
  auto& live = registry();
  auto it = std::find(live.begin(), live.end(), &im);
  KnobGuard::Impl* newer = nullptr;
  if (it != live.end()) {
    for (auto jt = it + 1; jt != live.end(); ++jt) {
      if ((*jt)->path == im.path) {  // still registered = not restored yet
        newer = *jt;
        break;
      }
    }
  }
  Status st;
  if (newer) {
    // Destroyed out of order (e.g. a vector of guards): the newer guard on
    // the same knob takes over our original and will restore it.
    newer->original = im.original;
    const JournalKey key = key_of(*newer);
    update_knob_slot_original(newer->slot, im.original);
    st = journal_drop(key_of(im), &key, im.original);
    if (st.failed()) st = st.context("knob journal");
  } else {
    st = write_knob(im.path, im.original);
    if (st.failed()) {
      st = Status::error(fmt::format("could not restore {} to '{}': {}; it stays in the journal {} "
                                     "(retry with `rmapbench restore`)",
                                     im.path, im.original, st.message(), journal_path()),
                         st.err());
    } else {
      Status js = journal_drop(key_of(im));
      if (js.failed()) st = js.context(fmt::format("restored {}, but updating the knob journal", im.path));
    }
  }
  release_knob_slot(im.slot);
  im.slot = -1;
  if (it != live.end()) live.erase(it);
  return st;
}

void restore_at_exit() {
  pid_t me = getpid();
  std::vector<KnobGuard::Impl*> live;
  {
    std::unique_lock<std::mutex> lock(registry_mutex(), std::try_to_lock);
    if (!lock.owns_lock()) {  // another thread is mid-change: at least put the knobs back
      restore_live_knob_slots(me);
      return;
    }
    live = registry();
  }
  for (auto it = live.rbegin(); it != live.rend(); ++it) {
    if ((*it)->owner != me) continue;
    Status st = restore_impl(**it);
    if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
  }
}

}  // namespace

Result<KnobGuard> KnobGuard::set(const std::string& path, const std::string& value) {
  if (interrupted())
    return Status::error(fmt::format("not changing {}: the run was interrupted ({})", path,
                                     signal_name(interrupt_signal())));
  if (value.find_first_of("\n\r") != std::string::npos || value.size() + 2 > kMaxKnobValue)
    return Status::error(fmt::format("refusing to write {}: the value must be one line of at most {} bytes",
                                     shell_quote_value(value), kMaxKnobValue - 2));
  char resolved[PATH_MAX];
  if (!realpath(path.c_str(), resolved)) return Status::from_errno("knob " + path);
  std::string canonical = resolved;
  if (canonical.size() + 1 > kMaxKnobPath)
    return Status::error(fmt::format("knob path {} is longer than {} bytes", canonical, kMaxKnobPath - 1));
  auto original = read_knob(canonical);
  if (!original) return original.status();
  if (original->size() + 2 > kMaxKnobValue)
    return Status::error(fmt::format("knob {} holds a value longer than {} bytes", canonical, kMaxKnobValue - 2));

  auto impl = std::make_unique<Impl>();
  impl->path = canonical;
  impl->original = *original;
  impl->value = value;
  impl->owner = getpid();
  impl->start_time = self_start_time();

  std::lock_guard<std::mutex> lock(registry_mutex());
  impl->seq = ++g_seq;
  JournalEntry e{impl->owner, impl->start_time, current_boot_id(), impl->seq, impl->path, impl->original, value};
  if (Status st = journal_append(e); st.failed()) return st.context("knob journal");
  impl->slot = claim_knob_slot(impl->owner, impl->seq, impl->path, impl->original);
  if (impl->slot < 0) {
    journal_drop(key_of(*impl));
    return Status::error(fmt::format("too many knob guards alive at once (max {})", kMaxKnobSlots));
  }
  if (Status st = write_knob(impl->path, value); st.failed()) {
    release_knob_slot(impl->slot);
    if (Status js = journal_drop(key_of(*impl)); js.failed())
      fmt::print(stderr, "rmapbench: dropping the journal entry of {}: {}\n", impl->path, js.message());
    return st;
  }
  impl->armed = true;
  registry().push_back(impl.get());
  static bool atexit_registered = false;
  if (!atexit_registered) {
    std::atexit(restore_at_exit);
    atexit_registered = true;
  }
  return KnobGuard(std::move(impl));
}

KnobGuard::KnobGuard(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KnobGuard::KnobGuard(KnobGuard&&) noexcept = default;

KnobGuard& KnobGuard::operator=(KnobGuard&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      Status st = restore_impl(*impl_);
      if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

KnobGuard::~KnobGuard() {
  if (!impl_) return;
  Status st = restore_impl(*impl_);
  if (st.failed()) fmt::print(stderr, "rmapbench: {}\n", st.message());
}

Status KnobGuard::restore() { return impl_ ? restore_impl(*impl_) : Status::ok(); }

namespace {
const std::string& empty_string() {
  static const std::string& s = *new std::string;
  return s;
}
}  // namespace

const std::string& KnobGuard::path() const { return impl_ ? impl_->path : empty_string(); }
const std::string& KnobGuard::original() const { return impl_ ? impl_->original : empty_string(); }
const std::string& KnobGuard::value() const { return impl_ ? impl_->value : empty_string(); }

int live_guard_count() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  pid_t me = getpid();
  return static_cast<int>(std::count_if(registry().begin(), registry().end(),
                                        [me](const KnobGuard::Impl* i) { return i->owner == me && i->armed; }));
}

}  // namespace rmapbench::safety
