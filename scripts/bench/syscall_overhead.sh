#!/usr/bin/env bash
# What weft costs a syscall-heavy process that does no networking: `dd bs=1` (two syscalls per
# byte) timed untraced and traced, interleaved, in one run. Prints the median ratio per variant.
#   usage: scripts/bench/syscall_overhead.sh [weft binary] [rounds] [count]
set -euo pipefail
WEFT=${1:-build/weft}
ROUNDS=${2:-7}
COUNT=${3:-2000000}

run_dd() {
  local start end
  start=$(date +%s%N)
  dd if=/dev/zero of=/dev/null bs=1 count="$COUNT" 2>/dev/null
  end=$(date +%s%N)
  echo $(((end - start) / 1000))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

start_weft() {
  "$WEFT" events --json "$@" >/dev/null 2>/tmp/weft-bench.err &
  WEFT_PID=$!
  for _ in $(seq 50); do
    grep -q capturing /tmp/weft-bench.err 2>/dev/null && return 0
    sleep 0.1
  done
  echo "weft did not start: $(cat /tmp/weft-bench.err)" >&2
  exit 1
}

stop_weft() { kill -INT "$WEFT_PID"; wait "$WEFT_PID" || true; }
trap 'kill -INT ${WEFT_PID:-0} 2>/dev/null || true' EXIT

# variant name -> extra weft flags
declare -A VARIANTS=(
  [default]=""
  [exact-accept]="--exact-accept"
)

printf 'dd bs=1 count=%s, %s rounds, median microseconds\n' "$COUNT" "$ROUNDS"
for variant in default exact-accept; do
  base=() traced=()
  for _ in $(seq "$ROUNDS"); do
    base+=("$(run_dd)")
    # shellcheck disable=SC2086
    start_weft ${VARIANTS[$variant]}
    traced+=("$(run_dd)")
    stop_weft
  done
  b=$(printf '%s\n' "${base[@]}" | median)
  t=$(printf '%s\n' "${traced[@]}" | median)
  printf '%-24s untraced %8s  traced %8s  ratio %s\n' "$variant" "$b" "$t" \
    "$(awk -v t="$t" -v b="$b" 'BEGIN {printf "%.3f", t / b}')"
done
