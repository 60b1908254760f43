#!/usr/bin/env bash
# What the memory-BIO probes cost (docs/probes.md "Memory BIOs"): a node https server and a node
# client making N requests one after the other on one kept-alive connection, traced by WEFT, with
# kernel.bpf_stats_enabled=1. Prints, per BPF program of that weft process (read from its own
# /proc/PID/fdinfo: another weft on the machine is not counted), its runs during the requests,
# runs per request (both ends together) and ns per run. Not a benchmark: one run, a few seconds.
#   usage: sudo scripts/bench/tls_memory_bio_cost.sh WEFT [REQUESTS]
set -euo pipefail
WEFT=$(realpath "$1")
N=${2:-500}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  sysctl -qw kernel.bpf_stats_enabled=0
  rm -rf "$TMP"
}
trap cleanup EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout "$TMP/key.pem" \
  -out "$TMP/cert.pem" 2>/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$TMP/server.js" <<'JS'
const https = require("https"), fs = require("fs");
const [port, key, cert] = process.argv.slice(2);
https.createServer({key: fs.readFileSync(key), cert: fs.readFileSync(cert)}, (req, res) => res.end("ok\n"))
  .listen(+port, "127.0.0.1", () => console.log("listening"));
JS
cat >"$TMP/client.js" <<'JS'
const https = require("https");
const [port, n] = process.argv.slice(2).map(Number);
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
const get = () => new Promise((resolve, reject) => https.get(
  {host: "127.0.0.1", port, path: "/m", agent, rejectUnauthorized: false},
  (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
(async () => { for (let i = 0; i < n; i++) await get(); agent.destroy(); })();
JS
sysctl -qw kernel.bpf_stats_enabled=1
"$WEFT" run --exporter otlp-file --output /dev/null >"$TMP/weft.out" 2>"$TMP/weft.err" &
WEFT_PID=$!
PIDS+=("$WEFT_PID")
for _ in $(seq 100); do grep -q capturing "$TMP/weft.err" && break; sleep 0.1; done
node "$TMP/server.js" "$PORT" "$TMP/key.pem" "$TMP/cert.pem" >"$TMP/server.out" &
PIDS+=("$!")
for _ in $(seq 100); do grep -q listening "$TMP/server.out" && break; sleep 0.1; done

stats() { # "name run_time_ns run_cnt" for every BPF program weft holds open
  python3 - "$WEFT_PID" <<'PY'
import json, os, subprocess, sys
pid = sys.argv[1]
names = {p["id"]: p.get("name", "?") for p in json.loads(subprocess.check_output(["bpftool", "prog", "show", "--json"]))}
seen = set()
for fd in os.listdir(f"/proc/{pid}/fd"):
    try:
        if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
            continue
        info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}").read().splitlines() if ":" in l)
    except OSError:
        continue
    if int(info["prog_id"]) not in seen:
        seen.add(int(info["prog_id"]))
        print(names.get(int(info["prog_id"]), "?"), int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
PY
}
stats >"$TMP/before"
node "$TMP/client.js" "$PORT" "$N"
stats >"$TMP/after"
python3 - "$N" "$TMP/before" "$TMP/after" <<'PY'
import sys
n = int(sys.argv[1])
before = {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in open(sys.argv[2])}
print(f"{n} requests, one kept-alive connection, node server and client traced")
for line in sorted(open(sys.argv[3])):
    name, t, c = line.split()
    t0, c0 = before.get(name, (0, 0))
    runs = int(c) - c0
    if runs:
        print(f"  {name:22s} {runs:7d} runs  {runs / n:6.2f} per request  {(int(t) - t0) / runs:6.0f} ns per run")
PY
