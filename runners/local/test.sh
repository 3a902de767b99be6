#!/usr/bin/env bash
# Builds everything and runs the whole test suite: GoogleTest units and the
# CTest integration tests (which run real workloads at tiny sizes), first in
# a normal warning-free build, then again under ASan+UBSan, then each
# libFuzzer target: its committed corpus replayed, then fixed seeds for a
# fixed number of inputs, so a commit always gets the same verdict
# (tests/fuzz/run-fuzzers.sh; --explore there for random-seed fuzzing).
# Each stage must run every test it registered, and at least one. Needs root
# for the tests that change kernel knobs or switch users; they skip with the
# reason otherwise.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
jobs=$(nproc)
# --qemu: the QemuGuest tests boot Debian's kernel under QEMU (runners/qemu);
# --arm64: the cross-build and its tests.
runners/local/install-deps.sh --qemu --arm64

# The four builds share one compiler cache; BASEDIR makes paths relative so
# a clean clone anywhere hits what an earlier clone compiled.
export CCACHE_BASEDIR="$top" CCACHE_NOHASHDIR=true

# Each step says how long the one before it took (CI has a time budget).
step_name="" step_start=$SECONDS
step() {
  [ -n "$step_name" ] && printf 'test.sh: %s took %d s\n' "$step_name" $((SECONDS - step_start))
  step_name=$* step_start=$SECONDS
  printf '\n=== %s\n' "$*"
}

# run_ctest STAGE BUILD_DIR [EXCLUDE_RE]: runs the stage's tests and checks
# that it ran every test it registered, and that ctest registered every test
# the GoogleTest binaries list plus the script tests (label "script"; a
# discovery that failed or timed out would otherwise shrink the suite
# silently). Zero tests is an error.
run_ctest() {
  local stage=$1 dir=$2 exclude=${3:-}
  local sel=() log="$dir/ctest-$stage.log"
  [ -n "$exclude" ] && sel=(-E "$exclude")

  local listed=0 bin n
  for bin in "$dir"/tests/rmapbench_unit_tests "$dir"/tests/rmapbench_integration_tests; do
    [ -x "$bin" ] || { echo "test.sh: $stage: $bin was not built" >&2; exit 1; }
    n=$("$bin" --gtest_list_tests | grep -c '^  ' || true)
    listed=$((listed + n))
  done
  local all registered scripts
  all=$(ctest --test-dir "$dir" -N | sed -n 's/^Total Tests: //p')
  registered=$(ctest --test-dir "$dir" -N "${sel[@]}" | sed -n 's/^Total Tests: //p')
  scripts=$(ctest --test-dir "$dir" -N -L '^script$' | sed -n 's/^Total Tests: //p')
  if [ "${all:-0}" -ne $((listed + ${scripts:-0})) ]; then
    echo "test.sh: $stage: ctest registered ${all:-0} tests but the GoogleTest binaries list $listed" \
         "and ${scripts:-0} are scripts" >&2
    exit 1
  fi

  set +e
  ctest --test-dir "$dir" --output-on-failure --no-tests=error --timeout 900 "${sel[@]}" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  local ran skipped
  ran=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  skipped=$(grep -c '(Skipped)$' "$log" || true)
  echo "test.sh: $stage: ${registered:-0} registered (of $all; excluded: ${exclude:-none}), ${ran:-0} ran, ${skipped} skipped, ctest exit $rc"
  [ "$rc" -eq 0 ] || exit "$rc"
  if [ "${ran:-0}" -ne "${registered:-0}" ] || [ "${ran:-0}" -eq 0 ]; then
    echo "test.sh: $stage: ran ${ran:-0} tests, expected ${registered:-0}" >&2
    exit 1
  fi
}

# Tests ON explicitly: quickstart.sh configures build/ without them, and a
# cached OFF must not silently empty this stage.
step "build (RelWithDebInfo, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMAPBENCH_WERROR=ON -DRMAPBENCH_BUILD_TESTS=ON >/dev/null
cmake --build build -j"$jobs"

step "tests"
run_ctest normal build

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRMAPBENCH_SANITIZE=ON -DRMAPBENCH_BUILD_TESTS=ON >/dev/null
cmake --build build-asan -j"$jobs"

step "tests under ASan+UBSan"
# Fork-heavy workloads run at tiny sizes here; leaks in forked children that
# _exit() are not leaks of the run. The CompareRealRun tests and the
# separate-runs A/A and known-extra-work tests check the statistics on real
# timings, which the sanitizer distorts (50 more VMAs read +0.1% under ASan):
# they run in the normal stage above, as do the QemuGuest and QemuAb tests
# (a sanitizer build at emulated speed tests nothing more). The one-run
# noise-profile FPR test repeats the whole decision over 1000 synthetic A/A seeds (75 s under ASan);
# its code runs under ASan in the other RunLevel tests.
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run_ctest asan build-asan '^(CompareRealRun\.|SeparateRuns\.(AaOf|KnownExtraWork|QuickProfileFlags)|QemuGuest\.|QemuAb\.|RunLevel\.OneRunPerSide)'

step "fuzzers (corpus replay, then fixed seeds: the same verdict for the same commit)"
tests/fuzz/run-fuzzers.sh

step "arm64: cross-build, the bundle, unit tests under qemu-user"
runners/cross/build-arm64.sh --test

step "arm64: the bundle in an arm64 guest with 2 NUMA nodes (QEMU TCG)"
arm64_json=$(mktemp "${TMPDIR:-/tmp}/rmapbench-arm64-guest.XXXXXX.json")
runners/qemu/rmapbench-qemu --arch arm64 --numa 2 --timeout 300 --out "$arm64_json" -- \
  run --filter 'thp_split/debugfs/folio:2048kB/sharers:0$|fork_storm/fork_exit_wait/vmas:1$' --runs 1 --repetitions 1 --quiet
for fact in '"arch": "aarch64"' '"numa_nodes": "2"' '"emulation": "qemu-tcg"' '"folio_split_us"'; do
  grep -q "$fact" "$arm64_json" || { echo "test.sh: arm64 guest results lack $fact: $arm64_json" >&2; exit 1; }
done
rm -f "$arm64_json"
echo "test.sh: arm64 guest: results back with aarch64, 2 NUMA nodes, TCG, and the debugfs THP split measured"
printf 'test.sh: %s took %d s\n' "$step_name" $((SECONDS - step_start))
echo "test.sh: all stages passed in $SECONDS s"
