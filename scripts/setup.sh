#!/usr/bin/env bash
# Installs everything weft needs to build, run and test on Debian 12 (bookworm).
# Idempotent: safe to run again; does nothing that is already done.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup.sh: must run as root (it installs packages)" >&2
  exit 1
fi

# bookworm-backports carries the libbpf/bpftool versions weft needs. The archive address is
# taken from this machine's own Debian sources so the repository names no mirror.
enable_backports() {
  local src=/etc/apt/sources.list.d/debian.sources
  local dst=/etc/apt/sources.list.d/weft-backports.sources
  [[ -f $dst ]] && return 0
  local uri keyring
  uri=$(awk '/^URIs:/ {print $2} /^Suites:/ && /bookworm( |$)/ {print "FOUND"; exit}' "$src" |
    grep -B1 FOUND | head -n1)
  keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$src")
  if [[ -z $uri ]]; then
    echo "setup.sh: cannot find the bookworm archive address in $src" >&2
    exit 1
  fi
  cat >"$dst" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
SRC
  apt-get update -qq
}

BUILD_PACKAGES=(build-essential cmake pkg-config clang-14 llvm-14 libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev doctest-dev libclang-rt-14-dev libcpp-httplib-dev
  libabsl-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libcurl4-openssl-dev)
# Go crypto/tls (src/proc/go_tls.cpp): struct offsets from the binary's DWARF (libdw) and the
# RET instructions of (*Conn).Read/Write found by a real x86-64 disassembler (capstone).
BUILD_PACKAGES+=(libdw-dev libcapstone-dev)
# opentelemetry-cpp (OTLP encoding, HTTP client) and the official OTLP protos.
BACKPORT_PACKAGES=(libbpf-dev bpftool opentelemetry-cpp-dev libopentelemetry-proto-dev opentelemetry-proto)
# Go 1.23 for the inference tests' net/http services (tests/e2e/suite_inference.py).
BACKPORT_PACKAGES+=(golang-go)
# Real peers and tools used by the end-to-end tests and benchmarks: the OTLP test receiver
# decodes with Debian's protobuf and gRPC for Python, promtool checks /metrics.
TEST_PACKAGES=(nginx-light curl python3 iproute2 nftables valgrind wrk python3-protobuf python3-grpcio openssl
  prometheus)
# The inference tests' thread-pool service (com.sun.net.httpserver, run as `java Service.java`).
TEST_PACKAGES+=(openjdk-17-jdk-headless)
# The inference tests' Apache httpd (event MPM, mod_proxy_http), started by the test itself.
TEST_PACKAGES+=(apache2)
# The Redis tests' server, clients and benchmark (tests/e2e/suite_redis.py).
TEST_PACKAGES+=(redis-server redis-tools python3-redis)
# The TLS tests' GnuTLS peers: wget (an HTTPS client on GnuTLS) and gnutls-serv --http.
TEST_PACKAGES+=(wget gnutls-bin)
# The TLS tests' client with OpenSSL linked in statically (libssl.a, libcrypto.a).
TEST_PACKAGES+=(libssl-dev)
# The TLS tests' python3-requests client (urllib3 over the ssl module, a kept-alive session).
TEST_PACKAGES+=(python3-requests)
# The HTTP/2 tests' load generator with many concurrent streams (h2load, tests/e2e/suite_http2.py).
TEST_PACKAGES+=(nghttp2-client)
# The network tests' reference for connection lifetimes and byte counts (tcplife, as
# /usr/sbin/tcplife; tests/e2e/suite_net.py).
TEST_PACKAGES+=(libbpf-tools)
# The PostgreSQL tests' server (initdb, pg_ctl, postgres), psql, pgbench and psycopg2
# (tests/e2e/suite_postgres.py); PostgreSQL's own parser, measured against weft's SQL sanitiser
# (scripts/bench/sql_sanitise_bench.cpp, docs/protocols.md).
TEST_PACKAGES+=(postgresql python3-psycopg2 libpg-query-dev)
# The MySQL tests' server (mariadbd, mariadb-install-db), the mariadb client and mysqlslap,
# pymysql, and Perl's DBD::MariaDB for server-side prepared statements (tests/e2e/suite_mysql.py).
TEST_PACKAGES+=(mariadb-server mariadb-client python3-pymysql libdbd-mariadb-perl)

missing() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

enable_backports
need=$(missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
need_bpo=$(missing "${BACKPORT_PACKAGES[@]}")
if [[ -n $need || -n $need_bpo ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  [[ -z $need ]] || apt-get install -y -qq --no-install-recommends $need
  # shellcheck disable=SC2086
  [[ -z $need_bpo ]] || apt-get install -y -qq --no-install-recommends -t bookworm-backports $need_bpo
fi

# Ground truth for the tracing tests: Node services instrumented with the OpenTelemetry JS
# SDK, at the exact versions in tests/e2e/node/package-lock.json.
if ! command -v node >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
NODE_DIR="$(dirname "$0")/../tests/e2e/node"
# npm records what it installed in node_modules/.package-lock.json: a lock file changed since
# (a dependency added) installs again.
if [[ ! -f $NODE_DIR/node_modules/.package-lock.json ||
  $NODE_DIR/package-lock.json -nt $NODE_DIR/node_modules/.package-lock.json ]]; then
  npm ci --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error
fi

# The nginx, apache2, prometheus and redis-server packages start system-wide servers; tests start their own
# (and only need promtool from the latter).
for service in nginx apache2 prometheus prometheus-node-exporter redis-server; do
  if systemctl is-active --quiet "$service" 2>/dev/null; then
    systemctl disable --now "$service" >/dev/null 2>&1 || true
  fi
done
echo "setup.sh: dependencies present"
