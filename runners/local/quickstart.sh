#!/usr/bin/env bash
# Installs what is missing, builds rmapbench in build/, runs the quick suite
# on this host and prints the summary and the path of the results JSON.
# Extra arguments go to `rmapbench run` (e.g. --variant lazy).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
runners/local/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMAPBENCH_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" --target rmapbench >/dev/null
exec build/runners/rmapbench run --profile quick "$@"
