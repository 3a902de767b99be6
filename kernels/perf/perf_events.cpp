// Implements kernels/perf/perf_events.hpp (see there for why it lives here).
#include "kernels/perf/perf_events.hpp"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <utility>

#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::perf {

std::vector<EventSpec> software_events() {
  return {
      {"page-faults", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS},
      {"context-switches", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CONTEXT_SWITCHES},
      {"cpu-migrations", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_MIGRATIONS},
      {"task-clock", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK},
  };
}

Result<std::string> tracefs_dir() {
  // access() on /sys/kernel/debug/tracing also triggers its automount.
  for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    if (access((std::string(dir) + "/events").c_str(), F_OK) == 0) return std::string(dir);
  }
  if (auto mounts = sysfs::read_file("/proc/mounts")) {
    for (auto line : sysfs::split_lines(*mounts)) {
      auto w = sysfs::split_ws(line);
      if (w.size() >= 3 && w[2] == "tracefs") return std::string(w[1]);
    }
  }
  return Status::error(
      "tracefs not mounted (looked at /sys/kernel/tracing, /sys/kernel/debug/tracing, /proc/mounts); "
      "mount it: mount -t tracefs nodev /sys/kernel/tracing",
      ENOENT);
}

Result<EventSpec> tracepoint(const std::string& subsys_event) {
  size_t colon = subsys_event.find(':');
  bool bad = colon == std::string::npos || colon == 0 || colon + 1 == subsys_event.size() ||
             subsys_event.find_first_of("/:", colon + 1) != std::string::npos ||
             subsys_event.find('/') < colon || subsys_event.find("..") != std::string::npos;
  if (bad) return Status::error("tracepoint '" + subsys_event + "': expected subsystem:event", EINVAL);
  auto dir = tracefs_dir();
  if (!dir) return dir.status().context("tracepoint " + subsys_event);
  std::string path = *dir + "/events/" + subsys_event.substr(0, colon) + "/" + subsys_event.substr(colon + 1) + "/id";
  auto text = sysfs::read_file(path);
  if (!text) {
    int err = text.status().err();
    std::string why = err == ENOENT ? path + " missing: this kernel has no such tracepoint"
                      : (err == EACCES || err == EPERM) && geteuid() != 0 ? text.status().message() + " (needs root)"
                                                                          : text.status().message();
    return Status::error("tracepoint " + subsys_event + ": " + why, err);
  }
  auto id = sysfs::parse_ll(sysfs::trim(*text));
  if (!id || *id < 0) return Status::error("tracepoint " + subsys_event + ": " + path + ": not an id", EINVAL);
  return EventSpec{subsys_event, PERF_TYPE_TRACEPOINT, static_cast<uint64_t>(*id)};
}

namespace {

std::string likely_cause(int err) {
  switch (err) {
    case EACCES:
    case EPERM: {
      std::string paranoid = sysfs::read_knob("/proc/sys/kernel/perf_event_paranoid");
      auto level = sysfs::parse_ll(paranoid);
      if (level && *level <= 1 && geteuid() == 0)
        return "kernel.perf_event_paranoid=" + paranoid + " allows it, so a seccomp filter or an LSM blocks perf_event_open";
      return "kernel.perf_event_paranoid=" + paranoid +
             "; counting kernel-side events needs <= 1 or CAP_PERFMON (run as root, or sysctl -w kernel.perf_event_paranoid=1)";
    }
    case ENOENT:
      return "this kernel does not support the event";
    case ENODEV:
    case EOPNOTSUPP:
      return "the PMU here does not support the event";
    case ENOSYS:
      return "kernel built without CONFIG_PERF_EVENTS";
    case EMFILE:
      return "too many open files (raise ulimit -n)";
    case EINVAL:
      return "the kernel rejected the event attributes";
    default:
      return {};
  }
}

}  // namespace

Result<Counter> Counter::open(const EventSpec& e, pid_t pid, bool inherit) {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = e.type;
  attr.config = e.config;
  attr.inherit = inherit ? 1 : 0;
  // Time spent in a hypervisor is not the workload's kernel work.
  attr.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string cause = likely_cause(err);
    return Status::error("perf_event_open(" + e.name + "): " + std::strerror(err) + (cause.empty() ? "" : " — " + cause),
                         err);
  }
  return Counter(e, static_cast<int>(fd));
}

Counter::Counter(Counter&& other) noexcept : spec_(std::move(other.spec_)), fd_(std::exchange(other.fd_, -1)) {}

Counter& Counter::operator=(Counter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    spec_ = std::move(other.spec_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Counter::~Counter() {
  if (fd_ >= 0) close(fd_);
}

Result<uint64_t> Counter::read() const {
  if (fd_ < 0) return Status::error("perf counter " + spec_.name + ": not open (moved from)", EBADF);
  uint64_t value = 0;
  ssize_t n;
  do n = ::read(fd_, &value, sizeof value);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Status::from_errno("read(perf counter " + spec_.name + ")");
  if (n != sizeof value) return Status::error("read(perf counter " + spec_.name + "): short read", EIO);
  return value;
}

const EventSpec& Counter::spec() const { return spec_; }

}  // namespace rmapbench::perf
