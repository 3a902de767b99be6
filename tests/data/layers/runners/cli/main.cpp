#include "runners/cli/command.hpp"
#include "runners/compare/baseline.hpp"
#include "runners/host/report.hpp"
#include "benchmarks/harness/registry.hpp"
#include "kernels/procfs/reader.hpp"
#include <benchmark/benchmark.h>
