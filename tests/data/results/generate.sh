#!/bin/bash
# Regenerates the synthetic results fixtures in this directory (bash + awk,
# deterministic: a Park-Miller generator seeded per file). Run from anywhere:
#   tests/data/results/generate.sh
# The files are committed; tests never run this script.
set -euo pipefail
cd "$(dirname "$0")"

# emit SEED < spec > file.json
# spec lines:
#   ctx KEY VALUE...                      context entry (VALUE is the rest of the line)
#   metrics JSON                          the rmapbench.metrics table (JSON text)
#   bench NAME REPS UNIT REAL_TIME NOISE% one benchmark; NOISE is the stddev in % of the value
#   counter NAME VALUE NOISE%             a counter of the last bench (NOISE 0: exact)
#   skip NAME MESSAGE...                  a benchmark that did not run (3 entries)
emit() {
  awk -v seed="$1" '
    function rnd() { state = (state * 16807) % 2147483647; return state / 2147483647 }
    function gauss(  s, i) { s = 0; for (i = 0; i < 12; i++) s += rnd(); return s - 6 }
    function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
    function rest(from,   i, s) { s = $from; for (i = from + 1; i <= NF; i++) s = s " " $i; return s }
    function flush_bench(   r, c, v, line) {
      if (bname == "") return
      for (r = 0; r < breps; r++) {
        line = sprintf("    {\n      \"name\": %s,\n      \"family_index\": %d,\n      \"per_family_instance_index\": 0,\n      \"run_name\": %s,\n      \"run_type\": \"iteration\",\n      \"repetitions\": %d,\n      \"repetition_index\": %d,\n      \"threads\": 1,\n      \"iterations\": 100,\n", jstr(bname "/min_time:0.050/manual_time"), family, jstr(bname "/min_time:0.050/manual_time"), breps, r)
        v = breal * (1 + bnoise / 100 * gauss())
        line = line sprintf("      \"real_time\": %.6f,\n      \"cpu_time\": %.6f,\n      \"time_unit\": %s", v, v / 50, jstr(bunit))
        for (c = 1; c <= ncounters; c++) {
          v = cval[c] * (1 + cnoise[c] / 100 * gauss())
          line = line sprintf(",\n      %s: %.6f", jstr(cname[c]), v)
        }
        entries[++nentries] = line "\n    }"
      }
      family++; bname = ""; ncounters = 0
    }
    BEGIN { state = seed; family = 0; nentries = 0; nctx = 0 }
    $1 == "ctx" { ctxk[++nctx] = $2; ctxv[nctx] = rest(3); next }
    $1 == "metrics" { ctxk[++nctx] = "rmapbench.metrics"; ctxv[nctx] = rest(2); next }
    $1 == "bench" { flush_bench(); bname = $2; breps = $3; bunit = $4; breal = $5; bnoise = $6; next }
    $1 == "counter" { ncounters++; cname[ncounters] = $2; cval[ncounters] = $3; cnoise[ncounters] = $4; next }
    $1 == "skip" {
      flush_bench()
      for (r = 0; r < 3; r++)
        entries[++nentries] = sprintf("    {\n      \"name\": %s,\n      \"family_index\": %d,\n      \"per_family_instance_index\": 0,\n      \"run_name\": %s,\n      \"run_type\": \"iteration\",\n      \"repetitions\": 3,\n      \"repetition_index\": %d,\n      \"threads\": 1,\n      \"error_occurred\": true,\n      \"error_message\": %s,\n      \"iterations\": 1,\n      \"real_time\": 0.0,\n      \"cpu_time\": 0.0,\n      \"time_unit\": \"us\"\n    }", jstr($2 "/min_time:0.050/manual_time"), family, jstr($2 "/min_time:0.050/manual_time"), r, jstr(rest(3)))
      family++
      next
    }
    END {
      flush_bench()
      print "{"
      print "  \"context\": {"
      print "    \"date\": \"2026-11-29T21:00:00+00:00\","
      print "    \"host_name\": \"testhost\","
      print "    \"executable\": \"rmapbench\","
      print "    \"num_cpus\": 2,"
      print "    \"mhz_per_cpu\": 2096,"
      print "    \"cpu_scaling_enabled\": false,"
      printf "    \"library_build_type\": \"release\""
      for (i = 1; i <= nctx; i++) printf ",\n    %s: %s", jstr(ctxk[i]), jstr(ctxv[i])
      print "\n  },"
      print "  \"benchmarks\": ["
      for (i = 1; i <= nentries; i++) printf "%s%s\n", entries[i], (i < nentries ? "," : "")
      print "  ]"
      print "}"
    }'
}

METRICS='{"real_time":{"unit":"time_unit","better":"lower","kind":"statistical","help":"latency of the timed kernel operation"},"page_faults":{"unit":"faults","better":"lower","kind":"statistical","help":"page faults per operation"},"anon_vma_per_child":{"unit":"objects","better":"lower","kind":"exact","help":"anon_vma objects per live child"},"forks_per_s":{"unit":"1/s","better":"higher","kind":"statistical","help":"fork throughput"}}'

# context VARIANT LAZY [key value]... : the host facts of the (fictional) test host
context() {
  local variant=$1 lazy=$2
  cat <<CTX
ctx rmapbench.schema_version 1
ctx rmapbench.version v0.1-test
ctx rmapbench.profile quick
ctx rmapbench.repetitions 10
ctx rmapbench.filter .*
ctx rmapbench.complete true
metrics $METRICS
ctx compiler GNU 12.2.0
ctx kernel_release 6.1.0-13-amd64
ctx arch x86_64
ctx variant $variant
ctx cpu_model Intel(R) Xeon(R) CPU E5-2690 v4 @ 2.60GHz
ctx cpus_online 2
ctx mem_total_bytes 8330866688
ctx numa_nodes 1
ctx numa_node0_cpus 0-1
ctx numa_node0_memory_bytes 8330866688
ctx numa_node0_distances 10
ctx config.CONFIG_KSM y
ctx config.CONFIG_TRANSPARENT_HUGEPAGE y
ctx config.CONFIG_NUMA y
ctx thp.enabled madvise
ctx thp.defrag madvise
ctx ksm.run 0
ctx ksm.pages_to_scan 100
ctx ksm.pages_sharing 0
ctx governor performance
ctx aslr 2
ctx emulation none
CTX
  if [ "$lazy" = y ]; then echo "ctx config.CONFIG_ANON_VMA_LAZY y"; fi
}

# benchmarks SHIFT% NOISE_VMAS1000 REPS_COW : the suite's benchmarks
benchmarks() {
  local shift=$1 noise=$2 cow_reps=$3 footprint=$4
  local v1000
  v1000=$(awk -v s="$shift" 'BEGIN { printf "%.3f", 2630 * (1 + s / 100) }')
  cat <<B
bench fork_storm/fork_exit_wait/vmas:1 10 us 132.5 1
counter page_faults 2.0 0
counter forks_per_s 7547 1
bench fork_storm/fork_exit_wait/vmas:64 10 us 290.0 1
counter page_faults 2.0 0
counter forks_per_s 3448 1
bench fork_storm/fork_exit_wait/vmas:1000 10 us $v1000 $noise
counter page_faults 2.0 0
counter forks_per_s 380 1
bench anon_vma_footprint/held_children/vmas:1000 10 us 4100 1
counter anon_vma_per_child $footprint 0
bench cow/child_write/sharers:8 $cow_reps us 1.85 1
skip migrate/move_pages/sharers:8 skipped: needs >= 2 NUMA nodes (this host has 1)
B
}

{ context stock n; benchmarks 0 1 10 1000; } | emit 11 > base.json
{ context stock n; benchmarks 0 1 10 1000; } | emit 12345 > aa.json
{ context anon_vma_lazy y; benchmarks 5 1 10 1; } | emit 777 > shift5.json
{ context stock n; benchmarks 0 15 3 1000; } | emit 4242 > noisy.json
{ context stock n; benchmarks 0 1 10 1000; } | sed 's/^ctx thp.enabled madvise/ctx thp.enabled never/; s/^ctx arch x86_64/ctx arch aarch64/; s/^ctx cpu_model .*/ctx cpu_model Cortex-A76/; s/^ctx cpus_online 2/ctx cpus_online 8/' | emit 99 > other_host.json
{ context stock n | sed 's/^ctx rmapbench.schema_version 1/ctx rmapbench.schema_version 2/'; benchmarks 0 1 10 1000; } | emit 5 > unknown_schema.json
{ context stock n; benchmarks 0 1 10 1000; } | emit 11 | sed '/"time_unit": "us"/{x;s/^/x/;/^x\{1,10\}$/{x;s/"us"/"ms"/;x};x}' > mismatched_units.json

# Truncated: the first 40% of a valid file (an interrupted write).
head -c $(( $(wc -c < base.json) * 2 / 5 )) base.json > truncated.json
# Duplicates: a repetition written twice.
{ context stock n; benchmarks 0 1 10 1000; } | emit 11 | sed 's/"repetition_index": 4,/"repetition_index": 3,/' > duplicates.json
# Zero repetitions.
{ context stock n; benchmarks 0 1 10 1000; } | emit 11 | sed 's/"repetitions": 10,/"repetitions": 0,/' > zero_repetitions.json
# A file from another tool (hyperfine's export format).
cat > other_tool.json <<'J'
{
  "results": [
    {
      "command": "./fork-test 1000",
      "mean": 0.00263,
      "stddev": 0.00003,
      "median": 0.00262,
      "user": 0.0001,
      "system": 0.0025,
      "min": 0.00259,
      "max": 0.00270,
      "times": [0.00262, 0.00259, 0.00270]
    }
  ]
}
J
# A plain Google Benchmark file: no rmapbench context at all.
{ benchmarks 0 1 10 1000 | grep -v '^skip'; } | emit 31 > plain_gbench.json
