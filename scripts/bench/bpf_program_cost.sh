#!/usr/bin/env bash
# Kernel run time of each weft BPF program per invocation, from kernel.bpf_stats_enabled,
# under HTTP load (wrk against a local nginx, keep-alive, small responses), and the request
# rate with and without weft attached.
#   usage: scripts/bench/bpf_program_cost.sh [weft binary] [seconds] [extra weft flags...]
set -euo pipefail
WEFT=${1:-build/weft}
SECONDS_LOAD=${2:-5}
shift 2 || true
WORK=$(mktemp -d)
# mktemp makes the directory 0700: nginx's worker (www-data) could not read the page and every
# request would measure a 403. The benchmark checks what it serves below.
chmod 755 "$WORK"
OLD_STATS=$(cat /proc/sys/kernel/bpf_stats_enabled)
cleanup() {
  [[ -n ${WEFT_PID:-} ]] && kill -INT "$WEFT_PID" 2>/dev/null && wait "$WEFT_PID" 2>/dev/null
  [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  sysctl -q kernel.bpf_stats_enabled="$OLD_STATS"
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/www" && printf "hello from weft's benchmark" >"$WORK/www/index.html"
cat >"$WORK/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
events {}
http { access_log off; server { listen 127.0.0.1:$PORT; root $WORK/www; } }
CONF
nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$PORT/index.html")
if [[ $answer != "hello from weft's benchmark 200" ]]; then
  echo "bpf_program_cost: nginx does not serve the page (got: $answer); not measuring" >&2
  exit 1
fi

# Requests per second; fails when any answer was not 2xx (wrk counts them but still reports a rate).
rps() {
  local out
  out=$(wrk -t1 -c4 -d"${SECONDS_LOAD}s" "http://127.0.0.1:$PORT/index.html")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "bpf_program_cost: wrk saw non-2xx answers: $(grep Non-2xx <<<"$out")" >&2
    exit 1
  fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
untraced=$(rps)

sysctl -q kernel.bpf_stats_enabled=1
# WEFT_COMMAND: which weft job runs during the load (default: every event as JSON, the heaviest).
"$WEFT" ${WEFT_COMMAND:-events --json} "$@" >/dev/null 2>"$WORK/weft.err" &
WEFT_PID=$!
for _ in $(seq 50); do grep -q capturing "$WORK/weft.err" && break; sleep 0.1; done

traced=$(rps)
echo "wrk requests/s: untraced $untraced, traced (weft ${WEFT_COMMAND:-events --json}) $traced, ratio $(awk -v t="$traced" -v u="$untraced" 'BEGIN {printf "%.3f", t / u}')"
bpftool prog show --json | python3 -c "
import json, sys
names = ('data__send', 'data__recv', 'conn__state', 'conn__accept4', 'conn__accept')
print('%-14s %10s %8s' % ('program', 'runs', 'ns/run'))
for p in json.load(sys.stdin):
    if p.get('name') in names and p.get('run_cnt'):
        print('%-14s %10d %8.0f' % (p['name'], p['run_cnt'], p['run_time_ns'] / p['run_cnt']))
"
