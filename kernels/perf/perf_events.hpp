// perf_event_open(2) counters, used directly (libperf has no Debian 12
// package): software events and tracepoints counted around a workload's
// kernel operation, in this process and (inherit) the children it forks.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/status.hpp"

namespace rmapbench::perf {

struct EventSpec {
  std::string name;  // "page-faults", "migrate:mm_migrate_pages"
  uint32_t type;     // PERF_TYPE_*
  uint64_t config;
};

// page-faults, context-switches, cpu-migrations, task-clock.
std::vector<EventSpec> software_events();

// Where tracefs is mounted (/sys/kernel/tracing, /sys/kernel/debug/tracing, or
// wherever /proc/mounts says), or why there is none.
Result<std::string> tracefs_dir();

// "migrate:mm_migrate_pages" -> its tracepoint id from
// <tracefs>/events/<subsys>/<event>/id.
Result<EventSpec> tracepoint(const std::string& subsys_event);

class Counter {
 public:
  // Counts user + kernel for `pid` (0: this process) and, with inherit, the
  // children it creates after this call (their counts are added to ours when
  // they exit). Counting starts now. Errors name the event and the likely
  // cause ("perf_event_open(page-faults): Permission denied —
  // kernel.perf_event_paranoid=3 ...").
  static Result<Counter> open(const EventSpec& e, pid_t pid = 0, bool inherit = true);

  Counter(Counter&& other) noexcept;
  Counter& operator=(Counter&& other) noexcept;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;
  ~Counter();

  // The count so far (task-clock: nanoseconds).
  Result<uint64_t> read() const;
  const EventSpec& spec() const;
  // For handing the counter to the process it counts (SCM_RIGHTS), which
  // then reads it right around its own operations.
  int fd() const { return fd_; }

 private:
  Counter(EventSpec spec, int fd) : spec_(std::move(spec)), fd_(fd) {}
  EventSpec spec_;
  int fd_ = -1;
};

}  // namespace rmapbench::perf
