#pragma once
#include <benchmark/benchmark.h>
#include "benchmarks/result_vocabulary.hpp"
#include "kernels/procfs/reader.hpp"
