// Pins the calling process to one CPU (hwloc), so concurrent forkers run
// where the workload says and the scheduler does not move them mid-run.
#pragma once

#include "kernels/status.hpp"

namespace rmapbench::mm {

// Number of processing units this process may run on.
int usable_cpus();
// Binds the whole calling process to the `index`-th usable PU.
Status pin_to_cpu(int index);

}  // namespace rmapbench::mm
