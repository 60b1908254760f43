#!/usr/bin/env bash
# Instructions per exchange of every pipeline stage (decode, order, conn + parse, span, stitch,
# metrics, encode), counted by callgrind: repeatable whatever else the machine is doing.
# Records real traffic (wrk against a local nginx: keep-alive, small responses, both ends
# traced), then replays it through weft_replay_bench --until STAGE for each stage, one round,
# and subtracts the previous stage; reading the file (zero rounds) is subtracted from the first.
# The parsers' share of "conn + parse" comes from callgrind's inclusive cost of their handlers.
# Also prints the replay throughput per core of the whole pipeline (no callgrind).
#   usage: scripts/bench/stage_cost.sh [build dir] [recording seconds] [existing .weftrec]
set -euo pipefail
BUILD=${1:-build}
LOAD_SECONDS=${2:-1}
RECORDING=${3:-}
WORK=$(mktemp -d)
chmod 755 "$WORK"  # nginx's worker must read the page (mktemp makes 0700: every answer a 403)
cleanup() {
  [[ -f $WORK/nginx.pid ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
BENCH=$BUILD/tests/weft_replay_bench

if [[ -z $RECORDING ]]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$WORK/www" && printf "hello from weft's benchmark" >"$WORK/www/index.html"
  cat >"$WORK/nginx.conf" <<CONF
daemon on; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/error.log;
events {}
http { access_log off; server { listen 127.0.0.1:$PORT; root $WORK/www; } }
CONF
  nginx -c "$WORK/nginx.conf"
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/index.html") == 200 ]] ||
    { echo "stage_cost: nginx does not serve the page; not measuring" >&2; exit 1; }
  RECORDING=$WORK/load.weftrec
  "$BUILD/weft" record -o "$RECORDING" --duration $((LOAD_SECONDS + 2)) 2>"$WORK/record.err" &
  pid=$!
  for _ in $(seq 100); do grep -q capturing "$WORK/record.err" && break; sleep 0.1; done
  out=$(wrk -t1 -c2 -d"${LOAD_SECONDS}s" "http://127.0.0.1:$PORT/index.html")
  grep -q Non-2xx <<<"$out" && { echo "stage_cost: wrk saw non-2xx answers" >&2; exit 1; }
  wait "$pid"
fi

exchanges=$("$BENCH" "$RECORDING" 1 | awk '{print $6}')
echo "recording $(basename "$RECORDING"): $exchanges exchanges; replay throughput on one core:"
"$BENCH" "$RECORDING" 3 --until encode

count() {  # count ROUNDS [--until STAGE] -> instructions (callgrind's total)
  valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" "$BENCH" "$RECORDING" "$@" 2>&1 |
    awk '/Collected/ {print $4}'
}
base=$(count 0)
prev=$base
printf '%-10s %14s %14s\n' stage "instr/exchange" "cumulative"
for stage in decode order conn span stitch metrics encode; do
  total=$(count 1 --until "$stage")
  if [[ $stage == conn ]]; then
    # The parsers inside "conn": inclusive cost of every protocol handler's on_data/on_close.
    # callgrind_annotate may list one function under several files (inlined headers): each
    # function counts once, with its largest figure.
    parse=$(callgrind_annotate --inclusive=yes "$WORK/cg.out" 2>/dev/null |
      awk '!/ (=>|<) / && /protocols::.*Handler::on_(data|close)\(/ {
             gsub(",", "", $1); fn = $0; sub(/^[^)]*\) +[^:]*:/, "", fn); sub(/ \[.*$/, "", fn)
             if ($1 > best[fn]) best[fn] = $1 }
           END {for (f in best) s += best[f]; print s + 0}')
    printf '%-10s %14d %14s\n' "conn" $(((total - prev - parse) / exchanges)) ""
    printf '%-10s %14d %14d\n' "parse" $((parse / exchanges)) $(((total - base) / exchanges))
  else
    printf '%-10s %14d %14d\n' "$stage" $(((total - prev) / exchanges)) $(((total - base) / exchanges))
  fi
  prev=$total
done
