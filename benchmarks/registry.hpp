// The registry moved to benchmarks/harness/; fork_storm.cpp and the
// selfcheck's harness_overhead.cpp still include it here until their own
// rewrite lands (issue 11, workload skeleton). Include the harness header.
#pragma once
#include "benchmarks/harness/registry.hpp"
