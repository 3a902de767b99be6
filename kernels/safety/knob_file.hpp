// Reading and writing one knob file (sysfs / procfs), as the knob guard, the
// journal's restore and the signal handler do it.
#pragma once

#include <cstddef>
#include <string>

#include "kernels/status.hpp"

namespace rmapbench::safety {

// The value a knob file holds, as it must be written back: the bracketed
// word of "always [madvise] never", else the trimmed contents ("0").
std::string parse_knob_value(const std::string& contents);
Result<std::string> read_knob(const std::string& path);

// Writes `value` and a newline, retrying EBUSY for a while (see knob_file.cpp).
Status write_knob(const std::string& path, const std::string& value);

// open/write/close only, so a signal handler may call it. Returns 0 or the errno.
int write_knob_raw(const char* path, const char* data, size_t len);

// Two knob values are the same when their parsed values are, or the same number.
bool same_knob_value(const std::string& a, const std::string& b);

}  // namespace rmapbench::safety
