// The fork workloads' oracle: after the measured forks the kernel must still
// give a child the parent's data, and a child's writes must stay private.
#pragma once

#include <string>

#include "benchmarks/mm/anon_layout.hpp"
#include "kernels/status.hpp"

namespace rmapbench::mm {

// Forks one child that checks every byte of `layout` against the parent's
// pattern, rewrites all of it (a COW fault per page) and checks its copy;
// then the parent checks that its own data did not change.
// `workload` names the caller for the RMAPBENCH_TEST_CORRUPT test hook.
Status check_fork_isolation(AnonLayout& layout, const std::string& workload);

}  // namespace rmapbench::mm
