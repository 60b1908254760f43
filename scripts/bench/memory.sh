#!/usr/bin/env bash
# weft run's resident size (VmRSS, and the peak VmHWM) from /proc: idle after start, with IDLE
# open idle loopback connections (each carried one HTTP request), after they all closed, and
# while SHORT short connections (one HTTP/1.0 request each, ab -c 50) go by, sampled along the
# way to show whether it grows. Both ends of every connection run on this machine, so weft
# tracks two sockets per connection.
#   usage: scripts/bench/memory.sh [weft binary] [idle connections] [short connections]
#          [extra weft run flags...]
# Root (weft attaches BPF; the port range and TIME-WAIT reuse are widened for the run and
# restored on exit). Bounded: each phase waits at most a few seconds to settle, ab at most 20
# minutes.
set -euo pipefail
WEFT=${1:-build/weft}
IDLE=${2:-10000}
SHORT=${3:-1000000}
shift 3 || shift $#
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx's worker (www-data) must read the page: checked below
OLD_PORTS=$(cat /proc/sys/net/ipv4/ip_local_port_range)
OLD_TW=$(cat /proc/sys/net/ipv4/tcp_tw_reuse)
cleanup() {
  [[ -n ${CLIENT_PID:-} ]] && kill "$CLIENT_PID" 2>/dev/null && wait "$CLIENT_PID" 2>/dev/null
  [[ -n ${SAMPLER_PID:-} ]] && kill "$SAMPLER_PID" 2>/dev/null
  [[ -n ${WEFT_PID:-} ]] && kill -INT "$WEFT_PID" 2>/dev/null && wait "$WEFT_PID" 2>/dev/null
  [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  sysctl -q net.ipv4.ip_local_port_range="$OLD_PORTS" net.ipv4.tcp_tw_reuse="$OLD_TW"
  rm -rf "$WORK"
}
trap cleanup EXIT
mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing
# A million connections in a few minutes: ports come back from TIME-WAIT.
sysctl -q net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/www" && printf "hello from weft's benchmark" >"$WORK/www/index.html"
cat >"$WORK/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
worker_rlimit_nofile 19000;
events { worker_connections 18000; }
http {
  access_log off; keepalive_timeout 3600s; keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT backlog=4096; root $WORK/www; }
}
CONF
nginx -c "$WORK/nginx.conf"
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
answer=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$PORT/index.html")
if [[ $answer != "hello from weft's benchmark 200" ]]; then
  echo "memory: nginx does not serve the page (got: $answer); not measuring" >&2
  exit 1
fi

"$WEFT" run --exporter otlp-file --output /dev/null --metrics-address off "$@" \
  >/dev/null 2>"$WORK/weft.err" &
WEFT_PID=$!
for _ in $(seq 100); do grep -q capturing "$WORK/weft.err" && break; sleep 0.1; done
grep -q capturing "$WORK/weft.err" || { cat "$WORK/weft.err" >&2; exit 1; }

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# Waits until the resident size moved less than 1% in the last second (at most 20 s): weft
# has then taken in what the phase produced.
settle() {
  local before now
  before=$(kib "$WEFT_PID" VmRSS)
  for _ in $(seq 20); do
    sleep 1
    now=$(kib "$WEFT_PID" VmRSS)
    ((now - before < before / 100 && before - now < before / 100)) && return
    before=$now
  done
}
ROWS=()
row() {  # phase, goal
  ROWS+=("$(printf '| %s | %.1f | %.1f | %s |' "$1" "$(bc -l <<<"$(kib "$WEFT_PID" VmRSS)/1024")" \
    "$(bc -l <<<"$(kib "$WEFT_PID" VmHWM)/1024")" "$2")")
  echo "memory: ${ROWS[-1]}" >&2
}

settle
row "idle after start" "at most 40 MB"

# The client holds IDLE connections, each after one request and its whole answer, until its
# standard input closes.
mkfifo "$WORK/hold"
python3 - "$PORT" "$IDLE" <"$WORK/hold" >"$WORK/client.out" <<'PY' &
import resource, socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (count + 100, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
request = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n"
held, ok = [], 0
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(request)
    answer = b""
    while b"weft's benchmark" not in answer:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    ok += answer.startswith(b"HTTP/1.1 200")
    held.append(s)
print(ok, flush=True)
sys.stdin.read()
for s in held:
    s.close()
PY
CLIENT_PID=$!
exec 3>"$WORK/hold"
for _ in $(seq 600); do [[ -s $WORK/client.out ]] && break; sleep 0.1; done
ok=$(cat "$WORK/client.out")
if [[ $ok != "$IDLE" ]]; then
  echo "memory: only ${ok:-0} of $IDLE idle connections got a 200" >&2
  exit 1
fi
settle
row "$IDLE open idle connections" "at most 150 MB"
exec 3>&-
wait "$CLIENT_PID"
CLIENT_PID=
settle
row "after they closed" "near idle"

# Short connections, sampled every 5 s.
(while sleep 5; do echo "$(kib "$WEFT_PID" VmRSS)"; done) >"$WORK/samples" &
SAMPLER_PID=$!
timeout 1200 ab -q -n "$SHORT" -c 50 -r "http://127.0.0.1:$PORT/index.html" >"$WORK/ab.out" 2>&1 || true
kill "$SAMPLER_PID"
SAMPLER_PID=
complete=$(awk '/^Complete requests/ {print $3}' "$WORK/ab.out")
failed=$(awk '/^Failed requests/ {print $3}' "$WORK/ab.out")
non2xx=$(awk '/^Non-2xx responses/ {print $3}' "$WORK/ab.out")
if [[ ${complete:-0} != "$SHORT" || ${failed:-1} != 0 || -n $non2xx ]]; then
  echo "memory: ab: complete=${complete:-?} failed=${failed:-?} non-2xx=${non2xx:-0}" >&2
  tail -20 "$WORK/ab.out" >&2
  exit 1
fi
settle
samples=$(awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1024}' "$WORK/samples")
row "after $SHORT short connections" "no growth"

kill -INT "$WEFT_PID"
wait "$WEFT_PID" || true
WEFT_PID=
echo "| phase | VmRSS MB | VmHWM MB | goal |"
echo "|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "VmRSS (MB) every 5 s during the short connections: $samples"
grep "connections:" "$WORK/weft.err" || true
