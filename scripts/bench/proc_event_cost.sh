#!/usr/bin/env bash
# What weft's process programs (proc__exec, proc__exit) cost per process: kernel.bpf_stats_enabled
# while a shell runs /bin/true N times under `weft run`, read from bpftool for the weft process's
# own programs (its /proc/PID/fdinfo), so another weft on the machine is not counted.
#   usage: sudo scripts/bench/proc_event_cost.sh [weft binary] [processes]
set -euo pipefail
WEFT=${1:-build/weft}
N=${2:-2000}
WORK=$(mktemp -d)
OLD_STATS=$(sysctl -n kernel.bpf_stats_enabled)
cleanup() {
  [[ -n ${WEFT_PID:-} ]] && kill -INT "$WEFT_PID" 2>/dev/null && wait "$WEFT_PID" 2>/dev/null
  sysctl -qw kernel.bpf_stats_enabled="$OLD_STATS"
  rm -rf "$WORK"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1
"$WEFT" run --exporter otlp-file --output /dev/null 2>"$WORK/weft.err" &
WEFT_PID=$!
for _ in $(seq 100); do grep -q "capturing" "$WORK/weft.err" && break; sleep 0.1; done
grep -q "capturing" "$WORK/weft.err" || { echo "proc_event_cost: weft did not start" >&2; exit 1; }
for _ in $(seq "$N"); do /bin/true; done
for f in /proc/"$WEFT_PID"/fdinfo/*; do
  awk '/prog_id/{print $2}' "$f"
done | sort -u | while read -r id; do
  bpftool prog show id "$id" 2>/dev/null | grep -E "name proc__" || true
done | sed -E 's/.*name ([a-z_]+).*run_time_ns ([0-9]+) run_cnt ([0-9]+).*/\1 \2 \3/' |
  awk -v n="$N" '{printf "%-12s runs %6d  ns/run %8.0f  (%d processes started)\n", $1, $3, $2 / $3, n}'
