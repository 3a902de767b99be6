#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan+UBSan) in
# build-fuzz and runs them. Two modes:
#
#   tests/fuzz/run-fuzzers.sh [TARGET...]            # CI: deterministic
#   tests/fuzz/run-fuzzers.sh --explore [TARGET...]  # random seeds, longer
#
# CI mode gives the same verdict for the same commit on every run:
#   1. replay: every file of the committed seed corpus
#      (tests/fuzz/corpus/<target>/) is run once; a crash there is a
#      regression of a bug already found;
#   2. fuzz with fixed seeds (RMAPBENCH_FUZZ_SEEDS, default "1 2"), a fixed
#      number of inputs each (RMAPBENCH_FUZZ_RUNS, default 100000; a quarter
#      for fuzz_report_formats, whose inputs cost 10x more), starting
#      from a copy of the seed corpus, with libFuzzer's time-driven corpus
#      reload off. The mutations, hence the inputs tried, depend only on the
#      seed, the corpus and the code. A wall-clock bound per run
#      (RMAPBENCH_FUZZ_TIME_LIMIT, default 600 s) only guards against a hang
#      and is reported as a failure, never as a pass.
# Explore mode fuzzes each target for RMAPBENCH_FUZZ_SECONDS (default 600)
# with a random seed. A crashing input it finds is copied into the target's
# seed corpus (tests/fuzz/corpus/<target>/crash-<sha1>): fix the bug, then
# commit the input with the fix, so CI replays it from then on.
#
# Exits non-zero when any target crashes, leaks, times out or runs out of
# memory, printing the reproducer and the command that replays it.
# Environment: RMAPBENCH_FUZZ_BUILD_DIR (default <top>/build-fuzz).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${RMAPBENCH_FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=$(nproc 2>/dev/null || echo 2)

mode=ci
if [ "${1:-}" = "--explore" ]; then
  mode=explore
  shift
elif [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
  exit 0
fi

seeds=${RMAPBENCH_FUZZ_SEEDS:-1 2}
runs=${RMAPBENCH_FUZZ_RUNS:-100000}
time_limit=${RMAPBENCH_FUZZ_TIME_LIMIT:-600}
seconds=${RMAPBENCH_FUZZ_SECONDS:-600}
positive() {
  case $2 in
    '' | *[!0-9]* | 0) echo "run-fuzzers.sh: $1 must be a positive whole number, not '$2'" >&2; exit 2 ;;
  esac
}
positive RMAPBENCH_FUZZ_RUNS "$runs"
positive RMAPBENCH_FUZZ_TIME_LIMIT "$time_limit"
positive RMAPBENCH_FUZZ_SECONDS "$seconds"
for s in $seeds; do positive "each of RMAPBENCH_FUZZ_SEEDS" "$s"; done

if ! command -v clang >/dev/null || ! command -v clang++ >/dev/null; then
  echo "run-fuzzers.sh: clang is not installed (apt-get install clang libclang-rt-dev)" >&2
  exit 2
fi

# Inputs per seed for target $1: RMAPBENCH_FUZZ_RUNS, except where one input
# costs far more than the others: fuzz_report_formats compares a whole
# results file and renders it five times, 3 ms an input under ASan (100000
# inputs took 318 s of the CI's time a seed; the other targets 10-80 s).
runs_for() {
  case $1 in
    fuzz_report_formats) echo $(((runs + 3) / 4)) ;;
    *) echo "$runs" ;;
  esac
}

all_targets=()
for src in "$top"/tests/fuzz/fuzz_*.cpp; do
  all_targets+=("$(basename "$src" .cpp)")
done
if [ $# -gt 0 ]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    [ -f "$top/tests/fuzz/$t.cpp" ] || { echo "run-fuzzers.sh: no fuzz target '$t' (targets: ${all_targets[*]})" >&2; exit 2; }
  done
else
  targets=("${all_targets[@]}")
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
# report_failure TARGET LOG ARTIFACT_DIR: what broke and how to replay it.
report_failure() {
  local t=$1 log=$2 artifacts=$3 bin="$build/tests/fuzz/$1"
  echo "FAILED"
  failed+=("$t")
  grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz property broken|.*runtime error|rmapbench-fuzz:)' "$log" | head -5 >&2 || true
  for a in "$artifacts"/*; do
    [ -e "$a" ] || continue
    echo "  reproducer: $a" >&2
    echo "  replay:     $bin $a" >&2
    if [ "$mode" = explore ]; then
      local keep
      keep="$top/tests/fuzz/corpus/$t/crash-$(sha1sum "$a" | cut -c1-40)"
      cp "$a" "$keep"
      echo "  kept:       $keep (fix the bug, then commit this input with the fix)" >&2
    fi
  done
  echo "  log:        $log" >&2
}

for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  corpus="$top/tests/fuzz/corpus/$t"
  work="$build/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/artifacts"
  common=(-timeout=10 -rss_limit_mb=2048 -max_len=8192 -artifact_prefix="$work/artifacts/")
  [ -f "$top/tests/fuzz/$t.dict" ] && common+=(-dict="$top/tests/fuzz/$t.dict")
  mapfile -t inputs < <(find "$corpus" -type f 2>/dev/null | LC_ALL=C sort)

  if [ "$mode" = explore ]; then
    mkdir -p "$work/corpus"
    [ -d "$corpus" ] && cp -R "$corpus/." "$work/corpus/"
    printf 'fuzz: %-22s explore %ss, random seed, %s seed input(s) ... ' "$t" "$seconds" "${#inputs[@]}"
    if "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 "$work/corpus" >"$work/log" 2>&1; then
      echo "ok ($(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log") runs, $(grep -o 'cov: [0-9]*' "$work/log" | tail -1))"
    else
      report_failure "$t" "$work/log" "$work/artifacts"
    fi
    continue
  fi

  # 1. Replay the committed corpus, one input at a time.
  printf 'fuzz: %-22s replay %3s corpus input(s) ... ' "$t" "${#inputs[@]}"
  if [ ${#inputs[@]} -eq 0 ]; then
    echo "FAILED"
    echo "  $t has no seed corpus in $corpus: add at least one valid input" >&2
    failed+=("$t")
    continue
  fi
  if timeout "$time_limit" "$bin" "${common[@]}" "${inputs[@]}" >"$work/replay.log" 2>&1; then
    echo "ok"
  else
    report_failure "$t" "$work/replay.log" "$work/artifacts"
    continue
  fi

  # 2. Fixed seeds, fixed number of inputs each.
  t_runs=$(runs_for "$t")
  for seed in $seeds; do
    rm -rf "$work/corpus"
    mkdir -p "$work/corpus"
    cp "${inputs[@]}" "$work/corpus/"
    log="$work/seed-$seed.log"
    printf 'fuzz: %-22s seed %-3s %s runs ... ' "$t" "$seed" "$t_runs"
    set +e
    timeout "$time_limit" "$bin" "${common[@]}" -seed="$seed" -runs="$t_runs" -reload=0 -print_final_stats=1 \
      "$work/corpus" >"$log" 2>&1
    rc=$?
    set -e
    if [ $rc -eq 124 ]; then
      echo "FAILED"
      echo "  $t seed $seed did not finish $t_runs runs within ${time_limit}s (RMAPBENCH_FUZZ_TIME_LIMIT): a hang or a very slow input" >&2
      echo "  log: $log" >&2
      failed+=("$t")
    elif [ $rc -ne 0 ]; then
      report_failure "$t" "$log" "$work/artifacts"
    else
      echo "ok ($(grep -o 'cov: [0-9]*' "$log" | tail -1), $(grep -o 'corp: [0-9]*' "$log" | tail -1))"
    fi
  done
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} failure(s): ${failed[*]}" >&2
  exit 1
fi
if [ "$mode" = explore ]; then
  echo "fuzz: every target explored ${seconds}s without a failure"
else
  echo "fuzz: every target replayed its corpus and ran seeds ${seeds} x ${runs} inputs (fuzz_report_formats $(runs_for fuzz_report_formats)) without a failure"
fi
