#pragma once
#include "kernels/procfs/reader.hpp"
#include "runners/results/results.hpp"  // layer-violation: host reports depend only on kernels
