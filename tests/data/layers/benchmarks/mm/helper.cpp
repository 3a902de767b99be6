#include "benchmarks/harness/registry.hpp"
#include "runners/host/report.hpp"  // layer-violation: benchmarks reach up
#include "tests/unit/test_support.hpp"  // layer-violation
