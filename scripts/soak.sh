#!/usr/bin/env bash
# Soak test, on demand (not in CI): `weft run` exporting to an OTLP/JSON file while nginx
# serves connection churn (one curl fetching at a fixed rate, a new connection per request) and
# process churn (loops starting a new curl process per request). Every few seconds it prints
# weft's resident size and open descriptors; after the warm-up it fails if either grew beyond
# its tolerance, comparing the mean of the first three samples after warm-up with the mean of
# the last three.
#   scripts/soak.sh [SECONDS]            default 300; needs root (weft loads BPF programs)
#   WEFT                   weft binary (default build/weft)
#   WEFT_SOAK_RATE         requests per second of the connection-churn curl (default 400)
#   WEFT_SOAK_PROCESSES    process-churn loops (default 2)
#   WEFT_SOAK_INTERVAL     seconds between samples (default 5)
#   WEFT_SOAK_WARMUP       seconds before the first sample that counts (default SECONDS/5)
#   WEFT_SOAK_RSS_KIB      tolerated resident-size growth in KiB (default 8192)
#   WEFT_SOAK_FDS          tolerated growth in open descriptors (default 2)
# The span file is emptied at every sample (weft appends) so disk use stays bounded; weft's
# summary at exit says how many spans it exported.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-300}
WEFT=${WEFT:-build/weft}
RATE=${WEFT_SOAK_RATE:-400}
PROCESSES=${WEFT_SOAK_PROCESSES:-2}
INTERVAL=${WEFT_SOAK_INTERVAL:-5}
WARMUP=${WEFT_SOAK_WARMUP:-$((DURATION / 5))}
RSS_TOLERANCE_KIB=${WEFT_SOAK_RSS_KIB:-8192}
FD_TOLERANCE=${WEFT_SOAK_FDS:-2}

if [[ $(id -u) -ne 0 ]]; then
  echo "soak.sh: must run as root (weft loads BPF programs)" >&2
  exit 1
fi
if [[ ! -x $WEFT ]]; then
  echo "soak.sh: no weft binary at $WEFT (build it, or set WEFT)" >&2
  exit 1
fi
if ((DURATION < WARMUP + 6 * INTERVAL)); then
  echo "soak.sh: $DURATION s leaves fewer than six samples after a $WARMUP s warm-up" >&2
  exit 2
fi

TMP=$(mktemp -d /tmp/weft-soak.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- nginx, one worker, on a free loopback port ---
PORT=$(free_port)
mkdir -p "$TMP/www"
echo "soak page" >"$TMP/www/page.txt"
cat >"$TMP/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
user root root;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $TMP/client_body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    keepalive_timeout 0;
    server { listen 127.0.0.1:$PORT; root $TMP/www; }
}
CONF
/usr/sbin/nginx -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf" &
PIDS+=($!)
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/page.txt" && break
  sleep 0.1
done

# --- weft ---
METRICS_PORT=$(free_port)
SPANS=$TMP/spans.jsonl
"$WEFT" run --exporter otlp-file --output "$SPANS" --metrics-address "127.0.0.1:$METRICS_PORT" \
  2>"$TMP/weft.stderr" &
WEFT_PID=$!
PIDS+=("$WEFT_PID")
for _ in $(seq 200); do
  grep -q "capturing" "$TMP/weft.stderr" && break
  if ! kill -0 "$WEFT_PID" 2>/dev/null; then
    echo "soak.sh: weft exited before capturing:" >&2
    cat "$TMP/weft.stderr" >&2
    exit 1
  fi
  sleep 0.1
done

# --- churn ---
URL="http://127.0.0.1:$PORT/page.txt"
END=$((SECONDS + DURATION))
# Connection churn: nginx closes after each response (keepalive_timeout 0); stopped at the
# end, a failed request shows on its stderr.
curl --silent --show-error --fail --rate "$RATE/s" "$URL?c=[1-100000000]" >/dev/null \
  2>"$TMP/churn.stderr" &
CHURN_PID=$!
PIDS+=("$CHURN_PID")
# Process churn: a new curl process for every request.
for n in $(seq "$PROCESSES"); do
  (
    count=0
    while ((SECONDS < END)); do
      curl --silent --fail -o /dev/null "$URL?p=$n" || exit 1
      count=$((count + 1))
    done
    echo "$count" >"$TMP/processes-$n"
  ) &
  PIDS+=($!)
done

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$WEFT_PID/status"; }
fds() { find "/proc/$WEFT_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
metric() {  # one sample (NAME or NAME{LABELS}) of weft's /metrics
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk -v name="$1" '$1 == name {sum += $NF} END {printf "%d", sum}'
}

echo "soak: ${DURATION}s, nginx :$PORT, connection churn ${RATE}/s, $PROCESSES process-churn loops," \
  "warm-up ${WARMUP}s, tolerance RSS +${RSS_TOLERANCE_KIB} KiB, fds +$FD_TOLERANCE"
printf "%6s %10s %5s %10s %12s %12s\n" "t(s)" "rss(KiB)" "fds" "spans" "ringbuf_full" "file(bytes)"
START=$SECONDS
RSS_AFTER=()
FDS_AFTER=()
while ((SECONDS < END)); do
  sleep "$INTERVAL"
  if ! kill -0 "$WEFT_PID" 2>/dev/null; then
    echo "soak.sh: FAIL: weft exited during the soak; stderr:" >&2
    cat "$TMP/weft.stderr" >&2
    exit 1
  fi
  t=$((SECONDS - START))
  rss=$(rss_kib)
  fd=$(fds)
  bytes=$(stat -c %s "$SPANS" 2>/dev/null || echo 0)
  : >"$SPANS"
  printf "%6d %10d %5d %10s %12s %12d\n" "$t" "$rss" "$fd" "$(metric weft_spans_total)" \
    "$(metric 'weft_events_lost_total{cause="ringbuf_full"}')" "$bytes"
  if ((t >= WARMUP)); then
    RSS_AFTER+=("$rss")
    FDS_AFTER+=("$fd")
  fi
done

kill "$CHURN_PID"
wait "$CHURN_PID" 2>/dev/null || true
if [[ -s $TMP/churn.stderr ]]; then
  echo "soak.sh: FAIL: the connection-churn curl failed: $(head -3 "$TMP/churn.stderr")" >&2
  exit 1
fi
made=0
for n in $(seq "$PROCESSES"); do
  if [[ ! -s $TMP/processes-$n ]]; then
    echo "soak.sh: FAIL: process-churn loop $n failed" >&2
    exit 1
  fi
  made=$((made + $(cat "$TMP/processes-$n")))
done
kill -INT "$WEFT_PID"
status=0
wait "$WEFT_PID" || status=$?
grep "^weft run: \(spans\|connections\|kernel losses\)" "$TMP/weft.stderr" || true
echo "soak: connection churn at up to ${RATE}/s from one curl, $made curl processes"
if ((status != 0)); then
  echo "soak.sh: FAIL: weft exited with $status" >&2
  exit 1
fi

mean3() { echo $((($1 + $2 + $3) / 3)); }
n=${#RSS_AFTER[@]}
rss_first=$(mean3 "${RSS_AFTER[@]:0:3}")
rss_last=$(mean3 "${RSS_AFTER[@]:n-3:3}")
fds_first=$(mean3 "${FDS_AFTER[@]:0:3}")
fds_last=$(mean3 "${FDS_AFTER[@]:n-3:3}")
echo "soak: after warm-up RSS ${rss_first} -> ${rss_last} KiB ($((rss_last - rss_first)) KiB)," \
  "fds ${fds_first} -> ${fds_last}"
if ((rss_last - rss_first > RSS_TOLERANCE_KIB || fds_last - fds_first > FD_TOLERANCE)); then
  echo "soak.sh: FAIL: growth beyond RSS +${RSS_TOLERANCE_KIB} KiB or fds +$FD_TOLERANCE" >&2
  exit 1
fi
echo "soak: PASS"
