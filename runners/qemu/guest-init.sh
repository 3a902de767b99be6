#!/bin/busybox sh
# /init of the throwaway rmapbench guest (busybox sh). Mounts what the
# workloads read, checks that the NUMA topology is the one asked for, runs
# rmapbench with the arguments the host runner put in /etc/rmapbench/args
# under a watchdog, sends the exit status and the results JSON back on the
# results port (base64 between markers), and powers off.
# /etc/rmapbench/guest.conf (written by the runner) sets WANT_NODES,
# GUEST_TIMEOUT (seconds), RESULTS_PORT and WANT_RESULTS (1 for `run`).
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s /bin 2>/dev/null

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /tmp /run /sys/kernel/debug /sys/kernel/tracing
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
# Kernel messages would interleave with the results stream otherwise.
dmesg -n 1
hostname rmapbench-guest

. /etc/rmapbench/guest.conf

say() { echo "rmapbench-guest: $*" > /dev/console; }

# finish RC [TIMED_OUT] [REASON]: the one place the guest reports back.
finish() {
  stty -F "$RESULTS_PORT" raw -echo 2>/dev/null
  {
    echo "RMAPBENCH-GUEST-RESULT rc=$1 timed_out=${2:-0}"
    [ -n "${3:-}" ] && echo "RMAPBENCH-GUEST-ERROR $3"
    if [ "$WANT_RESULTS" = 1 ] && [ -s /tmp/results.json ]; then
      echo "RMAPBENCH-JSON-BEGIN"
      base64 /tmp/results.json
      echo "RMAPBENCH-JSON-END"
    fi
    echo "RMAPBENCH-GUEST-DONE"
  } > "$RESULTS_PORT"
  sync
  poweroff -f
}

# Modules the workloads use (decompressed by the runner); a missing one is
# a skip reason inside rmapbench, not a guest failure.
for m in /lib/rmapbench-modules/*.ko; do
  [ -e "$m" ] && insmod "$m" 2>/dev/null
done

nodes=0
for n in /sys/devices/system/node/node[0-9]*; do
  [ -d "$n" ] && nodes=$((nodes + 1))
done
if [ "$nodes" != "$WANT_NODES" ]; then
  finish 2 0 "the guest kernel sees $nodes NUMA node(s), $WANT_NODES were asked for (CONFIG_NUMA off in this kernel?)"
fi
say "$(uname -r) $(uname -m), $nodes NUMA node(s), $(nproc) CPU(s), lockdown: $(cat /sys/kernel/security/lockdown 2>/dev/null || echo unknown)"

set --
destructive=0
while IFS= read -r a; do
  set -- "$@" "$a"
  [ "$a" = --allow-destructive ] && destructive=1
done < /etc/rmapbench/args
# The guest is thrown away after the run: workloads that harm their host
# (memory_failure poisons pages) may run here, and only here by default.
[ "$1" = run ] && [ "$destructive" = 0 ] && set -- "$@" --allow-destructive
[ "$WANT_RESULTS" = 1 ] && set -- "$@" --out /tmp/results.json

cd /tmp
/opt/rmapbench/rmapbench "$@" > /dev/console 2>&1 &
pid=$!

# Watchdog: past GUEST_TIMEOUT, say what every rmapbench process is doing
# (state, wait channel, kernel stack) before giving up, so a hang in the
# kernel under test is diagnosable from the console alone.
start=$(cut -d. -f1 /proc/uptime)
timed_out=0
while kill -0 "$pid" 2>/dev/null; do
  now=$(cut -d. -f1 /proc/uptime)
  if [ $((now - start)) -ge "$GUEST_TIMEOUT" ]; then
    timed_out=1
    say "watchdog: rmapbench still running after ${GUEST_TIMEOUT}s; its processes:"
    for p in /proc/[0-9]*; do
      # By executable: its comm and argv[0] vary (re-executed runs; the
      # arm64 bundle runs through its own loader, under /opt/rmapbench too).
      exe=$(readlink "$p/exe" 2>/dev/null) || continue
      case $exe in
        /opt/rmapbench/*)
          state=$(sed -n 's/^State:[[:space:]]*//p' "$p/status" 2>/dev/null)
          say "  pid ${p#/proc/} (rmapbench) state: $state, wchan: $(cat "$p/wchan" 2>/dev/null)"
          sed 's/^/      /' "$p/stack" 2>/dev/null > /dev/console
          ;;
      esac
    done
    echo w > /proc/sysrq-trigger 2>/dev/null
    dmesg | tail -60 > /dev/console
    kill -TERM "$pid" 2>/dev/null
    sleep 5
    kill -KILL "$pid" 2>/dev/null
    break
  fi
  sleep 1
done
wait "$pid"
rc=$?
finish "$rc" "$timed_out"
