#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>

#include "kernels/procfs/kernel_counters.hpp"
#include "kernels/perf/perf_events.hpp"
#include "kernels/host/host_probes.hpp"
#include "kernels/procfs/sysfs_text.hpp"

namespace rmapbench::host::probes {

namespace {

constexpr const char* kSecurityfs = "/sys/kernel/security";
constexpr const char* kLockdownFile = "/sys/kernel/security/lockdown";

std::string errname(int err) {
  const char* name = err ? strerrorname_np(err) : nullptr;
  return name ? name : "error " + std::to_string(err);
}

// Where a filesystem type is mounted, from /proc/mounts; empty when it is not.
std::string mount_point_of(std::string_view fstype) {
  auto mounts = sysfs::read_file("/proc/mounts");
  if (!mounts) return {};
  for (auto line : sysfs::split_lines(*mounts)) {
    auto w = sysfs::split_ws(line);
    if (w.size() >= 3 && w[2] == fstype) return std::string(w[1]);
  }
  return {};
}

void probe_perf(HostFacts& h) {
  for (const auto& e : perf::software_events()) {
    auto c = perf::Counter::open(e, 0, false);
    h.perf_events[e.name] = c ? "ok" : "unavailable: " + errname(c.status().err());
  }
  // One tracepoint stands for all: they share tracefs and the same permission rules.
  const std::string tp_name = "migrate:mm_migrate_pages";
  auto tp = perf::tracepoint(tp_name);
  if (!tp) {
    h.perf_events[tp_name] = !h.tracefs_available ? "unavailable: tracefs not mounted"
                             : tp.status().err() == ENOENT ? "unavailable: no such tracepoint"
                                                           : "unavailable: " + errname(tp.status().err());
    return;
  }
  auto c = perf::Counter::open(*tp, 0, false);
  h.perf_events[tp_name] = c ? "ok" : "unavailable: " + errname(c.status().err());
}

void probe_tracefs(HostFacts& h) {
  auto dir = perf::tracefs_dir();
  h.tracefs_available = static_cast<bool>(dir);
  h.tracefs_path = dir ? *dir : "not mounted";
  for (const char* subsys : {"migrate", "huge_memory", "ksm", "kmem"}) {
    if (!dir) {
      h.trace_subsystems[subsys] = "unknown (tracefs not mounted)";
      continue;
    }
    std::string path = *dir + "/events/" + subsys;
    if (access(path.c_str(), F_OK) == 0)
      h.trace_subsystems[subsys] = "present";
    else
      h.trace_subsystems[subsys] = errno == ENOENT ? "absent" : "unknown (" + std::string(std::strerror(errno)) + ")";
  }
}

void probe_debugfs(HostFacts& h) {
  std::string mnt = mount_point_of("debugfs");
  h.debugfs_mounted = !mnt.empty();
  h.debugfs_path = mnt.empty() ? "not mounted" : mnt;
  if (mnt.empty()) {
    h.split_huge_pages = "unknown (debugfs not mounted)";
    return;
  }
  // Opening for write is enough to learn whether writes are allowed; nothing
  // is written, so no folio is split.
  int fd = open((mnt + "/split_huge_pages").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    h.split_huge_pages = "writable";
  } else if (errno == EPERM) {
    h.split_huge_pages = "EPERM (kernel lockdown)";
  } else if (errno == ENOENT) {
    h.split_huge_pages = "absent (kernel without CONFIG_TRANSPARENT_HUGEPAGE or debugfs entry)";
  } else {
    h.split_huge_pages = errname(errno) + (errno == EACCES ? " (needs root)" : "");
  }
}

void probe_lockdown(HostFacts& h) {
  std::optional<std::string> text;
  std::string source_or_why;
  // Reads the lockdown file of a mounted securityfs; a missing file means
  // the lockdown LSM is not active, which is "none".
  auto read_lockdown = [&](const std::string& source) {
    auto t = sysfs::read_file(kLockdownFile);
    if (t) {
      text = *t;
      source_or_why = source;
    } else if (t.status().err() == ENOENT) {
      text = "[none]";
      source_or_why = "securityfs has no lockdown file (lockdown LSM not active)";
    } else {
      source_or_why = t.status().message();
    }
  };
  if (!mount_point_of("securityfs").empty()) {
    read_lockdown(kLockdownFile);
  } else if (geteuid() != 0) {
    source_or_why = "securityfs not mounted";
  } else if (mount("securityfs", kSecurityfs, "securityfs", 0, nullptr) == 0) {
    // Mounted only to look and detached right after: the host is left as found.
    read_lockdown(std::string(kLockdownFile) + " (securityfs mounted for the probe, then unmounted)");
    umount2(kSecurityfs, MNT_DETACH);
  } else {
    source_or_why = "securityfs not mounted; mounting it: " + std::string(std::strerror(errno));
  }
  auto v = lockdown_verdict(text, source_or_why, h.config, h.split_huge_pages);
  h.lockdown = v.value;
  h.lockdown_source = v.source;
}

void probe_slab(HostFacts& h) {
  auto reader = mm::SlabReader::open();
  h.slab_counters_readable = static_cast<bool>(reader);
  if (reader)
    h.slab_counters_source = reader->source();
  else
    h.slab_counters_reason = reader.status().message();
}

}  // namespace

LockdownVerdict lockdown_verdict(const std::optional<std::string>& securityfs_text, const std::string& source_or_why,
                                 const kernels::ConfigMap& config, const std::string& split_huge_pages) {
  if (securityfs_text) return {sysfs::knob_value(*securityfs_text), source_or_why};
  auto is_y = [&](const char* opt) {
    auto it = config.find(opt);
    return it != config.end() && it->second == "y";
  };
  auto it = config.find("CONFIG_SECURITY_LOCKDOWN_LSM");
  if (it != config.end() && it->second == "n") return {"none", "CONFIG_SECURITY_LOCKDOWN_LSM is not set"};
  // A forced level is a floor set at boot; securityfs could only have raised it.
  if (is_y("CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY"))
    return {"confidentiality", "CONFIG_LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY=y (" + source_or_why + ")"};
  if (is_y("CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY"))
    return {"integrity", "CONFIG_LOCK_DOWN_KERNEL_FORCE_INTEGRITY=y, at least (" + source_or_why + ")"};
  if (split_huge_pages.starts_with("EPERM"))
    return {"unknown (" + source_or_why + "; debugfs split_huge_pages refuses writes with EPERM: likely locked down)",
            "debugfs split_huge_pages"};
  return {"unknown (" + source_or_why + ")", source_or_why};
}

void probe_observability(HostFacts& h) {
  probe_tracefs(h);
  probe_perf(h);
  probe_debugfs(h);
  probe_lockdown(h);
  probe_slab(h);
}

}  // namespace rmapbench::host::probes
