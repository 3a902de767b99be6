#pragma once
#include <benchmark/benchmark.h>  // layer-violation: the offline readers see this header
