#!/usr/bin/env bash
# Fails on an #include that goes the wrong way between the layers of
# ARCHITECTURE.md, naming file:line and the rule it breaks.
#
#   check_layers.sh [ROOT]     checks ROOT (default: this source tree)
#   check_layers.sh --self-test
#       checks the fixture tree tests/data/layers, whose every wrong include
#       carries the marker "layer-violation": passes only when exactly the
#       marked lines are reported, so the checker is shown to fail.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# check ROOT: prints one line per violation, returns 1 when there is any.
check() {
  local root=$1
  (
    cd "$root"
    local dirs=()
    for d in kernels benchmarks runners; do [ -d "$d" ] && dirs+=("$d"); done
    [ ${#dirs[@]} -gt 0 ] || { echo "check_layers.sh: no kernels/, benchmarks/ or runners/ under $root" >&2; exit 2; }
    files=$(find "${dirs[@]}" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.cc' \) | sort)
    [ -n "$files" ] || { echo "check_layers.sh: no sources under $root" >&2; exit 2; }
    # "file<TAB>line<TAB>q|a<TAB>target" for every include; the known files first.
    {
      printf '%s\n' "$files" | sed 's/^/F\t/'
      # shellcheck disable=SC2086
      grep -nH -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]' $files |
        sed -E 's/^([^:]*):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*"([^"]*)".*/I\t\1\t\2\tq\t\3/;
                s/^([^:]*):([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*<([^>]*)>.*/I\t\1\t\2\ta\t\3/'
    } | awk -F'\t' '
      function dirname(p) { sub(/\/[^\/]*$/, "", p); return p }
      function normalize(p,   n, parts, out, i, k) {
        n = split(p, parts, "/"); k = 0
        for (i = 1; i <= n; i++) {
          if (parts[i] == "." || parts[i] == "") continue
          if (parts[i] == ".." && k > 0) { k--; continue }
          out[++k] = parts[i]
        }
        p = ""
        for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
        return p
      }
      # The layer a path belongs to.
      function layer(p) {
        if (p ~ /^kernels\//) return "kernels"
        if (p ~ /^benchmarks\//) return "benchmarks"
        if (p ~ /^runners\/(results|compare)\//) return "offline"
        if (p ~ /^runners\/host\//) return "host"
        if (p ~ /^runners\//) return "runners"
        if (p ~ /^tests\//) return "tests"
        return "other"
      }
      # What the offline readers (results, compare) may see below them:
      # nothing that probes the host or needs Google Benchmark.
      function offline_visible(p) {
        return layer(p) == "offline" || p == "kernels/status.hpp" || p ~ /^kernels\/process\// ||
               p == "benchmarks/result_vocabulary.hpp"
      }
      function report(file, line, rule, target) {
        printf "%s:%s: %s (includes %s)\n", file, line, rule, target
        bad++
      }
      $1 == "F" { known[$2] = 1; next }
      {
        file = $2; line = $3; kind = $4; target = $5
        from = layer(file)
        if (kind == "a") {
          if (offline_visible(file) && target ~ /^(benchmark\/|hwloc|numa|numaif\.h|zlib\.h)/)
            report(file, line, "offline results/compare reach for Google Benchmark or host libraries (hwloc, numa, zlib)", "<" target ">")
          next
        }
        resolved = normalize(dirname(file) "/" target)
        if (!(resolved in known)) resolved = normalize(target)
        to = layer(resolved)
        q = "\"" target "\""
        if (to == "tests" && from != "tests")
          report(file, line, "only tests include tests/", q)
        else if (from == "kernels" && to != "kernels")
          report(file, line, "kernels/ is the bottom layer: it includes only kernels/", q)
        else if (from == "benchmarks" && to != "kernels" && to != "benchmarks")
          report(file, line, "benchmarks/ depends only on kernels/", q)
        else if (from == "host" && to != "kernels" && to != "host")
          report(file, line, "runners/host depends only on kernels/", q)
        else if (offline_visible(file) && !offline_visible(resolved))
          report(file, line, "runners/results and runners/compare are offline: only results, compare, kernels/status.hpp, kernels/process/ and benchmarks/result_vocabulary.hpp", q)
      }
      END { exit bad > 0 ? 1 : 0 }'
  )
}

if [ "${1:-}" = "--self-test" ]; then
  fixture=$(cd "$here/../data/layers" && pwd)
  set +e
  reported=$(check "$fixture")
  rc=$?
  set -e
  printf '%s\n' "$reported"
  expected=$(cd "$fixture" && grep -rn --include='*.?pp' 'layer-violation' kernels benchmarks runners | cut -d: -f1,2 | sort)
  got=$(printf '%s\n' "$reported" | grep -o '^[^:]*:[0-9]*' | sort)
  if [ "$rc" -ne 1 ] || [ "$got" != "$expected" ]; then
    echo "check_layers.sh --self-test: exit $rc; expected exactly these lines reported:" >&2
    printf '%s\n' "$expected" >&2
    exit 1
  fi
  echo "check_layers.sh --self-test: all $(printf '%s\n' "$expected" | wc -l) wrong includes of the fixture reported, nothing else"
  exit 0
fi

root=${1:-$(cd "$here/../.." && pwd)}
if check "$root"; then
  echo "check_layers.sh: every include in $root goes one way (kernels <- benchmarks <- runners)"
else
  echo "check_layers.sh: includes above go the wrong way; see ARCHITECTURE.md" >&2
  exit 1
fi
