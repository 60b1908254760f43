#!/usr/bin/env bash
# Records a mysqlslap run against a private MariaDB (Debian's mariadb-server) with `weft record`,
# both ends traced, for the replay benchmarks (docs/performance.md, MySQL replay throughput):
#   scripts/bench/mysqlslap_record.sh OUT.weftrec [queries, default 10000] [build dir]
# then: build/tests/weft_replay_bench OUT.weftrec 5 [--until encode]
#       scripts/bench/stage_cost.sh build 1 OUT.weftrec
set -euo pipefail
OUT=$1
QUERIES=${2:-10000}
BUILD=${3:-build}
WORK=$(mktemp -d)
chmod 755 "$WORK"
mkdir "$WORK/data"
chown mysql:mysql "$WORK/data"
MPID=
cleanup() {
  if [[ -n $MPID ]]; then kill "$MPID" 2>/dev/null || true; wait "$MPID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
mariadb-install-db --no-defaults --datadir="$WORK/data" --user=mysql --skip-test-db \
  --auth-root-authentication-method=normal >"$WORK/install.log" 2>&1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/mariadbd --no-defaults --datadir="$WORK/data" --socket="$WORK/data/sock" --port="$PORT" \
  --bind-address=127.0.0.1 --user=mysql --skip-log-bin --skip-name-resolve \
  --innodb-buffer-pool-size=32M --pid-file="$WORK/data/pid" >"$WORK/mariadbd.log" 2>&1 &
MPID=$!
for _ in $(seq 100); do
  mariadb --no-defaults -h127.0.0.1 -P"$PORT" -uroot -e "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.1
done
mariadb --no-defaults -h127.0.0.1 -P"$PORT" -uroot -e "CREATE DATABASE shop;
  CREATE TABLE shop.t (id int PRIMARY KEY, v varchar(32)); INSERT INTO shop.t VALUES (1,'a'),(2,'b'),(3,'c')"
"$BUILD/weft" record -o "$OUT" --duration 6 2>"$WORK/record.err" &
RPID=$!
for _ in $(seq 50); do grep -q capturing "$WORK/record.err" && break; sleep 0.1; done
mysqlslap --no-defaults -h127.0.0.1 -P"$PORT" -uroot --create-schema=shop \
  --query="SELECT v FROM t WHERE id = 2" --concurrency=2 --number-of-queries="$QUERIES" \
  --iterations=1 --no-drop >/dev/null
wait "$RPID"
echo "recorded $OUT ($(du -h "$OUT" | cut -f1))"
