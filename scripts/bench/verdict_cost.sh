#!/usr/bin/env bash
# What a capture verdict saves in the kernel: BPF ns per data event on connections whose
# verdict is payload (today's default), counts or ignore. A Python client/server pair on
# loopback moves WRITES small writes (SIZE bytes each, TCP_NODELAY) per run while
# tests/bench/verdict_bench.cpp (the kernel capture as weft opens it) gives every connection to
# the server's port the verdict under test; it reports run_time_ns/run_cnt of data__send and
# data__recv over the run (kernel.bpf_stats_enabled=1, set here and restored on exit).
#   usage: scripts/bench/verdict_cost.sh [build dir] [writes] [size] [rounds]
# Other socket traffic on the machine during a run is counted too: run it on a quiet machine.
set -euo pipefail
BUILD=${1:-build}
WRITES=${2:-200000}
SIZE=${3:-64}
ROUNDS=${4:-3}
BENCH=$BUILD/tests/weft_verdict_bench
WORK=$(mktemp -d)
OLD_STATS=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  [[ -n ${BENCH_PID:-} ]] && kill -INT "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
  [[ -n ${SERVER_PID:-} ]] && kill "$SERVER_PID" 2>/dev/null
  sysctl -q kernel.bpf_stats_enabled="$OLD_STATS"
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$PORT" <<'PY' &
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(16)
def drain(c):
    while c.recv(65536):
        pass
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
SERVER_PID=$!
client() {
  python3 - "$PORT" "$WRITES" "$SIZE" <<'PY'
import socket, sys
port, writes, size = map(int, sys.argv[1:])
s = socket.create_connection(("127.0.0.1", port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(b"x")  # the first record gives the bench the cookie; its verdict is set from then on
import time; time.sleep(0.3)
payload = b"a" * size
for _ in range(writes):
    s.send(payload)
s.close()
PY
}

sysctl -q kernel.bpf_stats_enabled=1
echo "writes=$WRITES size=${SIZE}B per run; ns per run of each data program (run_time_ns / run_cnt)"
printf '%-8s %-6s %10s %9s %10s %9s %8s\n' verdict round send_runs send_ns recv_runs recv_ns records
for round in $(seq "$ROUNDS"); do
  for verdict in payload counts ignore; do
    "$BENCH" --port "$PORT" --verdict "$verdict" >"$WORK/out" 2>"$WORK/err" &
    BENCH_PID=$!
    for _ in $(seq 100); do grep -q ready "$WORK/err" && break; sleep 0.1; done
    client
    sleep 0.3
    kill -INT "$BENCH_PID"; wait "$BENCH_PID"; BENCH_PID=
    python3 - "$verdict" "$round" "$WORK/out" <<'PY'
import json, sys
r = json.load(open(sys.argv[3]))
s, v = r["data__send"], r["data__recv"]
print("%-8s %-6s %10d %9.1f %10d %9.1f %8d" % (sys.argv[1], sys.argv[2], s["run_cnt"], s["ns_per_event"],
      v["run_cnt"], v["ns_per_event"], r["records"]))
PY
  done
done
