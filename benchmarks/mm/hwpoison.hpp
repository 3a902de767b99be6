// Memory failure, injected into one page: MADV_HWPOISON runs
// memory_failure() (collect_procs: every process whose VMA maps the page,
// found through the rmap; try_to_unmap; SIGBUS to the mappers that asked for
// early kill), MADV_SOFT_OFFLINE runs soft_offline_page() (the page migrated
// away, then retired). What the kernel says it retired (HardwareCorrupted,
// KPF_HWPOISON), undoing it through hwpoison_inject's unpoison-pfn, and the
// SIGBUS bookkeeping the oracle of a poisoning needs.
//
// Destructive: a page poisoned and never unpoisoned is lost until reboot.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/mm/page_census.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm::hwpoison {

enum class Injection { hard, soft };  // MADV_HWPOISON, MADV_SOFT_OFFLINE
const char* advice_name(Injection how);

// madvise(advice) of the page at `page`: the ns of the call.
Result<int64_t> inject(Injection how, void* page);
// What a failed madvise of `how` means: EINVAL is a kernel without
// CONFIG_MEMORY_FAILURE and EPERM a caller without CAP_SYS_ADMIN (skips);
// anything else is the kernel failing the injection (an error).
Status injection_failure(Injection how, int err);

// HardwareCorrupted of /proc/meminfo in kB (the kernel's count of poisoned
// pages); an error when the line is absent (no CONFIG_MEMORY_FAILURE).
Result<long long> parse_hardware_corrupted_kb(std::string_view meminfo);
Result<long long> hardware_corrupted_kb();

// The pagemap entry of the page at `addr` in process `pid` (0: us). Page
// frame numbers need CAP_SYS_ADMIN; without it an error.
Result<PagemapEntry> pagemap_entry(pid_t pid, uintptr_t addr);
inline bool poisoned(uint64_t kpageflags) { return (kpageflags & kKpfHwpoison) != 0; }

// <debugfs>/hwpoison/unpoison-pfn (module hwpoison_inject), or why not.
Result<std::string> unpoison_path();
// Writes `pfn` to it; the kernel refuses (EBUSY) while anything maps or
// holds the page, so a refusal is tried again for up to a second.
Status unpoison(const std::string& path, uint64_t pfn);

// ------------------------------------------------------------ SIGBUS

// si_code of a memory-failure SIGBUS: action required (the process touched
// the page, or poisoned it itself) / action optional (an early-kill mapper).
inline constexpr int kMceErrAr = 4;  // BUS_MCEERR_AR
inline constexpr int kMceErrAo = 5;  // BUS_MCEERR_AO
std::string sigbus_code_name(int code);

// One process's SIGBUS record, in memory shared by every process of a run;
// its signal handler fills it (async-signal-safe: plain stores).
struct SigbusSlot {
  std::atomic<int> count;
  int code;
  uintptr_t addr;
  pid_t pid;
};

// A MAP_SHARED array of slots, created before the processes are forked.
class SigbusBoard {
 public:
  static Result<SigbusBoard> create(size_t slots);
  SigbusBoard(SigbusBoard&& o) noexcept;
  SigbusBoard& operator=(SigbusBoard&&) = delete;
  ~SigbusBoard();
  SigbusSlot* slot(size_t i) { return &slots_[i]; }
  size_t size() const { return size_; }
  void clear();

 private:
  SigbusBoard(SigbusSlot* slots, size_t size) : slots_(slots), size_(size) {}
  SigbusSlot* slots_ = nullptr;
  size_t size_ = 0;
};

// In a forked process: asks for early kill (prctl PR_MCE_KILL_EARLY: the
// kernel signals it when a page it maps is poisoned, instead of when it next
// touches the page) and records every SIGBUS into `slot` instead of dying.
Status catch_sigbus(SigbusSlot* slot);

// What the oracle expects of one process: a mapper gets one SIGBUS with one
// of `codes` at `addr` (its own virtual address of the page); any other
// process none.
struct ExpectedSigbus {
  std::string who;  // "sharer 3"
  pid_t pid = 0;
  bool mapper = false;
  uintptr_t addr = 0;
  std::vector<int> codes;
};
// What a process got (count 0: nothing).
struct ReceivedSigbus {
  pid_t pid = 0;
  int count = 0;
  int code = 0;
  uintptr_t addr = 0;
};
ReceivedSigbus received(const SigbusSlot& slot, pid_t pid);

// Ok, or an error naming every process that was missed (a mapper without a
// SIGBUS), wrongly hit (a non-mapper with one), or got the wrong address or
// code. `what` prefixes it ("after MADV_HWPOISON").
Status check_sigbus(const std::vector<ExpectedSigbus>& expected, const std::vector<ReceivedSigbus>& got,
                    const std::string& what);

}  // namespace rmapbench::mm::hwpoison
