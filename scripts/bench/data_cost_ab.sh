#!/usr/bin/env bash
# data__send/data__recv ns per event of several weft binaries, interleaved, on the same load:
# `weft events --json --port P > /dev/null` while a Python client makes 200 000 writes of 64
# bytes (TCP_NODELAY) to a Python server that reads everything; kernel.bpf_stats_enabled=1 and
# `bpftool prog show` (one weft at a time: run it on a quiet machine).
#   usage: scripts/bench/data_cost_ab.sh OLD_WEFT NEW_WEFT [...]
set -u
ERR=$(mktemp)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$PORT" <<'PY' &
import socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(16)
def drain(c):
    while c.recv(65536): pass
    c.close()
while True:
    c, _ = srv.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
PY
SERVER=$!
OLD=$(cat /proc/sys/kernel/bpf_stats_enabled); sysctl -q kernel.bpf_stats_enabled=1
for round in 1 2 3; do
for bin in "$@"; do
  $bin events --json --port $PORT > /dev/null 2>"$ERR" &
  W=$!
  for _ in $(seq 100); do grep -q capturing "$ERR" && break; sleep 0.1; done
  python3 - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
p = b"a" * 64
for _ in range(200000): s.send(p)
s.close()
PY
  bpftool prog show --json | python3 -c "
import json, sys
out = {p['name']: p for p in json.load(sys.stdin) if p.get('name') in ('data__send', 'data__recv') and p.get('run_cnt')}
print('$round', '$bin', ' '.join('%s %d runs %.0f ns' % (n, out[n]['run_cnt'], out[n]['run_time_ns'] / out[n]['run_cnt']) for n in sorted(out)))
"
  kill -INT $W; wait $W
done
done
kill $SERVER; sysctl -q kernel.bpf_stats_enabled=$OLD
rm -f "$ERR"
