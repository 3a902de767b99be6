#include "runners/compare/baseline.hpp"
#include "runners/results/results.hpp"
#include "kernels/procfs/reader.hpp"  // layer-violation: live host probing
#include <zlib.h>  // layer-violation
