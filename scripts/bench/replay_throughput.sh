#!/usr/bin/env bash
# HTTP/1 replay throughput (exchanges per second on one core) and instructions per exchange.
# Records real traffic (wrk against a local nginx: keep-alive, small responses, both ends
# traced), then replays it through the connection and HTTP/1 stages with weft_replay_bench,
# and once under callgrind.
#   usage: scripts/bench/replay_throughput.sh [build dir] [load seconds]
set -euo pipefail
BUILD=${1:-build}
LOAD_SECONDS=${2:-3}
WORK=$(mktemp -d)
cleanup() {
  [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/www" && head -c 2000 /dev/urandom | base64 >"$WORK/www/index.html"
cat >"$WORK/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
events {}
http { access_log off; server { listen 127.0.0.1:$PORT; root $WORK/www; } }
CONF
nginx -c "$WORK/nginx.conf"

record() {  # record FILE SECONDS wrk-args...
  local file=$1 secs=$2
  shift 2
  "$BUILD/weft" record -o "$file" --duration $((secs + 2)) 2>"$WORK/record.err" &
  local pid=$!
  for _ in $(seq 50); do grep -q capturing "$WORK/record.err" && break; sleep 0.1; done
  wrk "$@" "http://127.0.0.1:$PORT/index.html" >/dev/null
  wait "$pid"
}

record "$WORK/load.weftrec" "$LOAD_SECONDS" -t1 -c8 -d"${LOAD_SECONDS}s"
echo "recording: $(du -h "$WORK/load.weftrec" | cut -f1)"
echo "conn + http1:"
"$BUILD/tests/weft_replay_bench" "$WORK/load.weftrec" 5
echo "conn + http1 + spans + stitching (no export):"
"$BUILD/tests/weft_replay_bench" "$WORK/load.weftrec" 3 --spans

# Instructions per exchange: a small recording, one round, under callgrind; the fixed cost of
# reading the file is measured with zero rounds and subtracted.
record "$WORK/small.weftrec" 1 -t1 -c2 -d1s
count() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BUILD/tests/weft_replay_bench" "$WORK/small.weftrec" "$1" 2>&1 |
    awk '/Collected/ {print $4}'
}
one=$(count 1)
zero=$(count 0)
exchanges=$("$BUILD/tests/weft_replay_bench" "$WORK/small.weftrec" 1 | awk '{print $6}')
echo "callgrind: $exchanges exchanges, $(( (one - zero) / exchanges )) instructions per exchange (conn + http1 stages)"
