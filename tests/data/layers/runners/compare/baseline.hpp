#pragma once
#include <benchmark/benchmark.h>  // layer-violation
