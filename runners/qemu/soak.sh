#!/usr/bin/env bash
# Boots the same guest N times and tallies how each boot ended, to measure
# a QEMU configuration's failure rate (hangs, Oopses) before trusting it:
#   runners/qemu/soak.sh 20 --numa 2 -- run --filter 'fork_storm/fork_exit_wait/vmas:(1|64)$|cow_after_fork/parent|thp_pmd_split/mprotect' --repetitions 3
# Prints one line per boot (exit code, seconds) and the tally; exits 1 when
# any boot ended in a guest failure (exit 3).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:?usage: soak.sh N [rmapbench qemu options] [-- guest args]}
shift
case $n in '' | *[!0-9]* | 0) echo "soak.sh: N must be a positive number" >&2; exit 2 ;; esac
declare -A tally=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/rmapbench-soak.XXXXXX")
for ((i = 1; i <= n; i++)); do
  start=$(date +%s)
  set +e
  "$top/runners/qemu/rmapbench-qemu" --out "$logdir/boot-$i.json" "$@" > "$logdir/boot-$i.log" 2>&1
  rc=$?
  set -e
  printf 'boot %3d: exit %d after %ds\n' "$i" "$rc" "$(( $(date +%s) - start ))"
  tally[$rc]=$(( ${tally[$rc]:-0} + 1 ))
done
echo "soak: $n boots; by exit code:"
for rc in "${!tally[@]}"; do printf '  exit %d: %d\n' "$rc" "${tally[$rc]}"; done
echo "soak: logs in $logdir"
[ "${tally[3]:-0}" -eq 0 ]
