#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan) in
# build-fuzz and runs each for a bounded time on a copy of its committed seed
# corpus (tests/fuzz/corpus/<target>/, never grown by a run). Exits non-zero
# when any target crashes, leaks, times out or runs out of memory, printing
# the reproducer and the command that replays it.
#
#   tests/fuzz/run-fuzzers.sh                 # every target, 60 s each
#   RMAPBENCH_FUZZ_SECONDS=20 tests/fuzz/run-fuzzers.sh
#   tests/fuzz/run-fuzzers.sh fuzz_run_options   # only the named targets
#
# Environment: RMAPBENCH_FUZZ_SECONDS (default 60) per target;
# RMAPBENCH_FUZZ_BUILD_DIR (default <top>/build-fuzz).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${RMAPBENCH_FUZZ_SECONDS:-60}
build=${RMAPBENCH_FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=$(nproc 2>/dev/null || echo 2)

case $seconds in
  '' | *[!0-9]* | 0) echo "run-fuzzers.sh: RMAPBENCH_FUZZ_SECONDS must be a positive number of seconds, not '$seconds'" >&2; exit 2 ;;
esac
if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "run-fuzzers.sh: clang is not installed (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in "$top"/tests/fuzz/fuzz_*.cpp; do
    targets+=("$(basename "$src" .cpp)")
  done
fi

echo "fuzz: configuring $build with clang"
mkdir -p "$build"
CC=clang CXX=clang++ cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRMAPBENCH_FUZZ=ON -DRMAPBENCH_SANITIZE=ON >"$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; exit 2; }
echo "fuzz: building ${targets[*]}"
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# Leaks are bugs here (unlike in the forked children of the test suite).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

failed=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  seeds="$top/tests/fuzz/corpus/$t"
  work="$build/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  [ -d "$seeds" ] && cp -R "$seeds/." "$work/corpus/"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192
        -artifact_prefix="$work/artifacts/" -print_final_stats=1)
  [ -f "$top/tests/fuzz/$t.dict" ] && args+=(-dict="$top/tests/fuzz/$t.dict")
  printf 'fuzz: %-22s %ss on %s seed(s) ... ' "$t" "$seconds" "$(find "$seeds" -type f 2>/dev/null | wc -l)"
  if "$bin" "${args[@]}" "$work/corpus" >"$work/log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1)
    echo "ok (${runs:-?} runs, ${cov:-cov: ?})"
  else
    echo "FAILED"
    failed+=("$t")
    grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz property broken|.*runtime error)' "$work/log" | head -5 >&2 || true
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] || continue
      echo "  reproducer: $a" >&2
      echo "  replay:     $bin $a" >&2
    done
    echo "  log:        $work/log" >&2
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a failure"
