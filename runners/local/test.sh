#!/usr/bin/env bash
# Builds everything and runs the whole test suite: GoogleTest units and the
# CTest integration tests (which run real workloads at tiny sizes), first in
# a normal warning-free build, then again under ASan+UBSan, then each
# libFuzzer target for a bounded time. Needs root for the tests that change
# kernel knobs or switch users; they skip with the reason otherwise.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
jobs=$(nproc)
runners/local/install-deps.sh

step() { printf '\n=== %s\n' "$*"; }

step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMAPBENCH_WERROR=ON >/dev/null
cmake --build build -j"$jobs"

step "tests"
ctest --test-dir build --output-on-failure --timeout 900

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRMAPBENCH_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

step "tests under ASan+UBSan"
# Fork-heavy workloads run at tiny sizes here; leaks in forked children that
# _exit() are not leaks of the run. The CompareRealRun tests check the
# statistics' power on real timings, which the sanitizer distorts: they run
# in the normal stage above.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure --timeout 900 -E '^CompareRealRun\.'

if [ -x tests/fuzz/run-fuzzers.sh ]; then
  step "fuzzers"
  tests/fuzz/run-fuzzers.sh
fi
