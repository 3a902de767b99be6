#pragma once
#include <string>
#include "kernels/status.hpp"
#include "benchmarks/result_vocabulary.hpp"
#include "benchmarks/harness/registry.hpp"  // layer-violation: the registry needs Google Benchmark
