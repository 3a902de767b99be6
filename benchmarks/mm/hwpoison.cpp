#include "benchmarks/mm/hwpoison.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <new>
#include <thread>

#include "benchmarks/mm/anon_layout.hpp"
#include "benchmarks/mm/fork_timing.hpp"
#include "kernels/host/host_facts.hpp"
#include "kernels/procfs/sysfs_text.hpp"

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#ifndef PR_MCE_KILL
#define PR_MCE_KILL 33
#define PR_MCE_KILL_SET 1
#define PR_MCE_KILL_EARLY 1
#endif

namespace rmapbench::mm::hwpoison {

const char* advice_name(Injection how) { return how == Injection::hard ? "MADV_HWPOISON" : "MADV_SOFT_OFFLINE"; }

Status injection_failure(Injection how, int err) {
  const std::string call = fmt::format("madvise({})", advice_name(how));
  if (err == EINVAL) return Status::skip(fmt::format("CONFIG_MEMORY_FAILURE not set: {} gives EINVAL", call));
  if (err == EPERM) return Status::skip(fmt::format("needs CAP_SYS_ADMIN: {} gives EPERM", call));
  if (err == EOPNOTSUPP && how == Injection::soft)
    return Status::skip(fmt::format("soft offline disabled: {} gives EOPNOTSUPP (vm.enable_soft_offline=0, or "
                                    "hwpoison_inject's filter)",
                                    call));
  return Status::from_errno(call, err);
}

Result<int64_t> inject(Injection how, void* page) {
  const int advice = how == Injection::hard ? MADV_HWPOISON : MADV_SOFT_OFFLINE;
  const int64_t t0 = monotonic_ns();
  const int rc = madvise(page, page_size(), advice);
  const int64_t ns = monotonic_ns() - t0;
  if (rc != 0) return injection_failure(how, errno);
  return ns;
}

Result<long long> parse_hardware_corrupted_kb(std::string_view meminfo) {
  for (std::string_view line : sysfs::split_lines(meminfo)) {
    if (!line.starts_with("HardwareCorrupted:")) continue;
    auto words = sysfs::split_ws(line.substr(std::strlen("HardwareCorrupted:")));
    auto kb = words.empty() ? std::nullopt : sysfs::parse_ll(words[0]);
    if (!kb || (words.size() > 1 && words[1] != "kB"))
      return Status::error(fmt::format("/proc/meminfo: cannot read '{}'", line));
    return *kb;
  }
  return Status::error("/proc/meminfo has no HardwareCorrupted (CONFIG_MEMORY_FAILURE not set)");
}

Result<long long> hardware_corrupted_kb() {
  auto text = sysfs::read_file("/proc/meminfo", 1 << 16);
  if (!text) return text.status();
  return parse_hardware_corrupted_kb(*text);
}

Result<PagemapEntry> pagemap_entry(pid_t pid, uintptr_t addr) {
  auto entries = pagemap_entries(pid, {{addr / page_size() * page_size(), page_size()}});
  if (!entries) return entries.status();
  return entries->front();
}

Result<std::string> unpoison_path() {
  const host::HostFacts& h = host::facts();
  if (!h.debugfs_mounted) return Status::error("debugfs not mounted");
  const std::string path = h.debugfs_path + "/hwpoison/unpoison-pfn";
  if (access(path.c_str(), W_OK) != 0)
    return Status::from_errno(fmt::format("{} (module hwpoison_inject not loaded, or lockdown {})", path, h.lockdown));
  return path;
}

Status unpoison(const std::string& path, uint64_t pfn) {
  const std::string text = fmt::format("{}\n", pfn);
  int err = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Status::from_errno(path);
    const ssize_t n = write(fd, text.data(), text.size());
    err = errno;
    close(fd);
    if (n == static_cast<ssize_t>(text.size())) return Status::ok();
    if (err != EBUSY) break;
  }
  return Status::from_errno(fmt::format("unpoisoning PFN {:#x} through {}", pfn, path), err);
}

// ------------------------------------------------------------ SIGBUS

std::string sigbus_code_name(int code) {
  if (code == kMceErrAr) return "BUS_MCEERR_AR";
  if (code == kMceErrAo) return "BUS_MCEERR_AO";
  return fmt::format("si_code {}", code);
}

Result<SigbusBoard> SigbusBoard::create(size_t slots) {
  void* p = mmap(nullptr, slots * sizeof(SigbusSlot), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::from_errno("mmap of the SIGBUS records");
  auto* array = static_cast<SigbusSlot*>(p);
  for (size_t i = 0; i < slots; ++i) new (&array[i]) SigbusSlot{};
  return SigbusBoard(array, slots);
}

SigbusBoard::SigbusBoard(SigbusBoard&& o) noexcept : slots_(o.slots_), size_(o.size_) {
  o.slots_ = nullptr;
  o.size_ = 0;
}

SigbusBoard::~SigbusBoard() {
  if (slots_) munmap(slots_, size_ * sizeof(SigbusSlot));
}

void SigbusBoard::clear() {
  for (size_t i = 0; i < size_; ++i) {
    slots_[i].count.store(0);
    slots_[i].code = 0;
    slots_[i].addr = 0;
    slots_[i].pid = 0;
  }
}

namespace {

SigbusSlot* g_slot = nullptr;

void record_sigbus(int, siginfo_t* info, void*) {
  SigbusSlot* s = g_slot;
  if (!s) return;
  if (s->count.load(std::memory_order_relaxed) == 0) {
    s->code = info->si_code;
    s->addr = reinterpret_cast<uintptr_t>(info->si_addr);
  }
  s->count.fetch_add(1, std::memory_order_release);
}

}  // namespace

Status catch_sigbus(SigbusSlot* slot) {
  slot->pid = getpid();
  g_slot = slot;
  struct sigaction sa {};
  sa.sa_sigaction = record_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGBUS, &sa, nullptr) != 0) return Status::from_errno("sigaction(SIGBUS)");
  if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) != 0)
    return Status::from_errno("prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY)");
  return Status::ok();
}

ReceivedSigbus received(const SigbusSlot& slot, pid_t pid) {
  ReceivedSigbus r;
  r.pid = pid;
  r.count = slot.count.load(std::memory_order_acquire);
  if (r.count > 0) {
    r.code = slot.code;
    r.addr = slot.addr;
  }
  return r;
}

Status check_sigbus(const std::vector<ExpectedSigbus>& expected, const std::vector<ReceivedSigbus>& got,
                    const std::string& what) {
  std::vector<std::string> missed, hit, wrong_addr, wrong_code;
  std::vector<bool> used(got.size(), false);
  auto name = [](const ExpectedSigbus& e) { return fmt::format("{} (pid {})", e.who, e.pid); };
  for (const ExpectedSigbus& e : expected) {
    const ReceivedSigbus* r = nullptr;
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i].pid == e.pid) {
        r = &got[i];
        used[i] = true;
      }
    const bool signalled = r && r->count > 0;
    if (!e.mapper) {
      if (signalled)
        hit.push_back(fmt::format("{}: {} at {:#x}", name(e), sigbus_code_name(r->code), r->addr));
      continue;
    }
    if (!signalled) {
      missed.push_back(name(e));
      continue;
    }
    if (r->addr != e.addr) wrong_addr.push_back(fmt::format("{}: {:#x}, its page is at {:#x}", name(e), r->addr, e.addr));
    bool code_ok = false;
    std::string codes;
    for (int c : e.codes) {
      code_ok = code_ok || c == r->code;
      codes += (codes.empty() ? "" : " or ") + sigbus_code_name(c);
    }
    if (!code_ok) wrong_code.push_back(fmt::format("{}: {}, expected {}", name(e), sigbus_code_name(r->code), codes));
  }
  for (size_t i = 0; i < got.size(); ++i)
    if (!used[i] && got[i].count > 0)
      hit.push_back(fmt::format("pid {} (not one of this run's processes): {} at {:#x}", got[i].pid,
                                sigbus_code_name(got[i].code), got[i].addr));
  std::string message;
  auto part = [&](const std::vector<std::string>& items, const char* title) {
    if (items.empty()) return;
    std::string list;
    for (const auto& item : items) list += (list.empty() ? "" : "; ") + item;
    message += fmt::format("{}{}: {}", message.empty() ? "" : "; ", title, list);
  };
  part(missed, "missed (a mapper got no SIGBUS)");
  part(hit, "wrongly hit (SIGBUS to a process that does not map the page)");
  part(wrong_addr, "wrong si_addr");
  part(wrong_code, "wrong si_code");
  if (message.empty()) return Status::ok();
  return Status::error(fmt::format("{}: {}", what, message));
}

}  // namespace rmapbench::mm::hwpoison
