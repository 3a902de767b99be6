#include "kernels/procfs/reader.hpp"
#include "kernels/status.hpp"
#include "reader.hpp"
#include "benchmarks/harness/registry.hpp"  // layer-violation: kernels reach up
#include "runners/cli/command.hpp"  // layer-violation
