// The host's own speed, sampled all through a run: a fixed amount of
// user-space work (a pointer chase through 256 KiB of 4 KiB pages, with integer
// mixing), no system call, no page fault inside the timed part. The kernel
// under test never runs in it, so when its time moves between two runs, the
// host moved (another guest on the machine, an SMT sibling, a frequency
// change), not the kernel. A kernel A/B is two runs at different times: a
// host that ran the whole second side 6% slower slows every timing row by
// about as much, which a between-run spread measured minutes earlier does
// not cover (it flagged 3 rows of an A/A in CI). compare takes the
// reference's change out of every timing row's before flagging it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench {

class HostReference {
 public:
  struct Sample {
    double us = 0;         // one fixed quantum of work, wall clock
    double steal_pct = 0;  // hypervisor steal over the interval since the previous sample, % of all CPU time
  };

  // Maps and fills the buffer (the only page faults); fails on ENOMEM.
  static Result<HostReference> create();
  HostReference(HostReference&& other) noexcept;
  HostReference& operator=(HostReference&&) = delete;
  HostReference(const HostReference&) = delete;
  ~HostReference();

  // One quantum of work, timed.
  Sample measure();
  // A sample when due: the first call always, then at most one per interval
  // and never more than 1/kOverheadShare of the run's time (a guest under
  // emulation runs the quantum 10-50x slower and samples less often).
  void sample_if_due();
  // A sample now (the end of the run: its last phase is sampled too).
  void sample_now();
  const std::vector<Sample>& samples() const { return samples_; }

  static constexpr const char* kLabel =
      "user space only (pointer chase in 256 KiB, no system calls): the host's speed, not the kernel's";
  static constexpr int kOverheadShare = 40;
  static constexpr std::chrono::milliseconds kMinInterval{500};

 private:
  HostReference(uint8_t* buffer, size_t bytes) : buffer_(buffer), bytes_(bytes) {}
  uint8_t* buffer_ = nullptr;
  size_t bytes_ = 0;
  uint32_t cursor_ = 0;
  uint64_t sink_ = 0;
  std::vector<Sample> samples_;
  std::chrono::steady_clock::time_point last_{};
  double last_us_ = 0;
  uint64_t last_steal_ = 0, last_total_ = 0;
};

}  // namespace rmapbench
