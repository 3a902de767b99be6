#!/usr/bin/env bash
# Cross-builds rmapbench for arm64 (aarch64) with Debian's toolchain and the
# :arm64 multiarch libraries, and packs a self-contained bundle that runs on
# any arm64 Linux: a QEMU arm64 guest, a board, or a phone (adb push), even
# where glibc is absent. The bundle carries the binary, exactly the shared
# libraries it needs and glibc's arm64 dynamic loader; its `rmapbench`
# wrapper starts the binary through that loader.
#
#   runners/cross/build-arm64.sh          # -> build-arm64/rmapbench-arm64.tar.gz
#   runners/cross/build-arm64.sh --test   # also the unit tests, under qemu-user
#
# On the target:  tar xzf rmapbench-arm64.tar.gz && rmapbench-arm64/rmapbench doctor
# On a phone:     adb push rmapbench-arm64 /data/local/tmp/ && adb shell /data/local/tmp/rmapbench-arm64/rmapbench doctor
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${RMAPBENCH_ARM64_BUILD_DIR:-$top/build-arm64}
test=0
case ${1:-} in
  --test) test=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
  '') ;;
  *) echo "build-arm64.sh: unknown option '$1' (--test, --help)" >&2; exit 2 ;;
esac

runners/local/install-deps.sh --arm64

tests=OFF
[ "$test" = 1 ] && tests=ON
cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$top/runners/cross/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRMAPBENCH_WERROR=ON -DRMAPBENCH_BUILD_TESTS="$tests" >/dev/null
targets=(rmapbench)
[ "$test" = 1 ] && targets+=(rmapbench_unit_tests)
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"

# The bundle: bin/ the binary, lib/ the loader and the libraries `readelf`
# names, resolved recursively in the multiarch directories.
bundle="$build/rmapbench-arm64"
rm -rf "$bundle"
mkdir -p "$bundle/bin" "$bundle/lib"
aarch64-linux-gnu-strip -o "$bundle/bin/rmapbench" "$build/runners/rmapbench"
libdirs=(/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
needed() { aarch64-linux-gnu-readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
queue=("$bundle/bin/rmapbench")
while [ ${#queue[@]} -gt 0 ]; do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  for lib in $(needed "$elf"); do
    [ -e "$bundle/lib/$lib" ] && continue
    found=""
    for d in "${libdirs[@]}"; do
      [ -e "$d/$lib" ] && { found="$d/$lib"; break; }
    done
    [ -n "$found" ] || { echo "build-arm64.sh: $lib (needed by $(basename "$elf")) not found in ${libdirs[*]}" >&2; exit 1; }
    cp -L "$found" "$bundle/lib/$lib"
    queue+=("$bundle/lib/$lib")
  done
done
cp -L /lib/ld-linux-aarch64.so.1 "$bundle/lib/ld-linux-aarch64.so.1"
# The lean forker fork_storm times its forks from is embedded in rmapbench;
# where an in-memory copy may not be executed, rmapbench runs the file next
# to /proc/self/exe instead, which here is the loader in lib/.
aarch64-linux-gnu-strip -o "$bundle/lib/rmapbench-forker" "$build/runners/rmapbench-forker"
cat > "$bundle/rmapbench" <<'WRAPPER'
#!/bin/sh
# Starts the bundled rmapbench through the bundled loader and libraries, so
# it runs on any arm64 Linux whatever its libc (Android included).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/lib/ld-linux-aarch64.so.1" --library-path "$here/lib" "$here/bin/rmapbench" "$@"
WRAPPER
chmod 755 "$bundle/rmapbench"
tar -C "$build" -czf "$build/rmapbench-arm64.tar.gz" rmapbench-arm64
echo "build-arm64.sh: bundle $build/rmapbench-arm64.tar.gz ($(du -sh "$build/rmapbench-arm64.tar.gz" | cut -f1)): $(ls "$bundle/lib" | wc -l) libraries"

# The bundle must start on its own: under qemu-user with an empty library
# path, `--version` proves the loader and every library are inside it.
command -v qemu-aarch64-static >/dev/null || { echo "build-arm64.sh: qemu-aarch64-static missing" >&2; exit 1; }
QEMU_LD_PREFIX=/nonexistent qemu-aarch64-static "$bundle/lib/ld-linux-aarch64.so.1" --library-path "$bundle/lib" \
  "$bundle/bin/rmapbench" --version

if [ "$test" = 1 ]; then
  echo "build-arm64.sh: unit tests under qemu-aarch64-static"
  # qemu-user runs arm64 code on this kernel: a test that reads the kernel's
  # view of a process (/proc/self/maps, another process's /proc entries,
  # RLIMIT_NPROC across fork, a SIGKILLed child's journal, exec of the
  # static arm64 lean forker) sees the
  # emulator's process, not an arm64 one. Those run natively on x86_64 and
  # on a real arm64 host; everything pure (parsers, statistics, reports,
  # options) runs here, which is where arm64-specific breakage shows.
  emulator_blind='^(AnonLayout\.|LeanForker\.|KnobGuardTest\.JournalSurvivesSigkill|ResourceCheck\.RlimitNproc|RunLockTest\.SecondAcquireFailsNamingTheHolder)'
  ctest --test-dir "$build" -L unit -E "$emulator_blind" --output-on-failure --no-tests=error --timeout 300 -j"$(nproc)"
fi
