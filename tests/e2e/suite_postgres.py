"""PostgreSQL: Debian's postgresql server, psql, pgbench and python3-psycopg2 on loopback;
`weft exchanges --json` counts and reads the PostgreSQL exchanges of both ends (the client and
the postgres backend process), `weft run` exports their spans.

Each test starts its own cluster: initdb into the test's temporary directory as the postgres
user, postgres listening on 127.0.0.1 on a free port (no unix socket others could use), trust
authentication; the cluster is stopped (fast shutdown) and deleted with the directory even when
the test fails. weft's output is filtered on that port, so other traffic does not count.
"""
import os
import re
import shutil
import signal
import subprocess

from harness import TestFailure, case, check, eq, free_port, start_weft, wait_listening, wait_until
from peers import read_line, tell
from suite_redis import exchanges_json, scrape, wait_for
from suite_tls import exchanges_tls_counts, make_certificate
from suite_tracing import otlp_spans

SYSTEM_PYTHON = "/usr/bin/python3"  # where python3-psycopg2 is installed
PG_BIN = "/usr/lib/postgresql/15/bin"


def start_postgres(ctx, ssl=False):
    """A cluster of this test on a free loopback port; returns the port. ssl: TLS with a
    self-signed certificate (clients choose it with sslmode=require)."""
    for tool in ("initdb", "postgres", "psql", "pgbench"):
        check(os.path.exists(os.path.join(PG_BIN, tool)),
              f"{tool} is not installed (Debian: postgresql; scripts/setup.sh installs it)")
    os.chmod(ctx.tmp, 0o755)  # the postgres user reaches its directories inside
    data = ctx.path("pgdata")
    os.mkdir(data, 0o700)
    shutil.chown(data, "postgres", "postgres")
    r = subprocess.run([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres", "--auth=trust",
                        "--no-sync", "-E", "UTF8", "--locale=C"], user="postgres", capture_output=True,
                       timeout=120)
    eq(r.returncode, 0, f"initdb exit status ({r.stderr.decode(errors='replace').strip()[-800:]})")
    options = []
    if ssl:
        make_certificate(ctx)
        for f in ("cert.pem", "key.pem"):
            shutil.chown(ctx.path(f), "postgres", "postgres")
            os.chmod(ctx.path(f), 0o600)
        options = ["-c", "ssl=on", "-c", f"ssl_cert_file={ctx.path('cert.pem')}",
                   "-c", f"ssl_key_file={ctx.path('key.pem')}"]
    port = free_port()
    log = open(ctx.path("postgres.log"), "wb")
    ctx.on_cleanup(log.close)
    # SIGINT: fast shutdown (ends the backends, whatever clients are still connected).
    proc = ctx.spawn([os.path.join(PG_BIN, "postgres"), "-D", data, "-p", str(port),
                      "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
                      "-c", "fsync=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB", *options],
                     user="postgres", stdout=log, stderr=subprocess.STDOUT, stop_signal=signal.SIGINT)
    try:
        wait_listening(port, timeout=30, proc=proc)
    except TestFailure as e:
        log.flush()
        with open(ctx.path("postgres.log"), errors="replace") as f:
            raise TestFailure(f"{e}; postgres.log:\n{f.read()[-1500:]}")
    return port


def psql(ctx, port, statements, timeout=30, sslmode="disable"):
    """One psql process running `statements` on one connection (each sent as its own Query);
    returns (pid, stdout, stderr)."""
    script = "".join(s + ";\n" for s in statements).encode()
    proc = ctx.spawn([os.path.join(PG_BIN, "psql"), "-X", "-q",
                      f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode={sslmode}"],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(script, timeout=timeout)
    return proc.pid, out.decode(errors="replace"), err.decode(errors="replace")


def pg_of(xs, side=None, pid=None, comm=None, local_port=None, remote_port=None):
    return [x for x in xs if x.get("protocol") == "postgresql" and (side is None or x["side"] == side) and
            (pid is None or x["pid"] == pid) and (comm is None or x["comm"] == comm) and
            (local_port is None or x["local"]["port"] == local_port) and
            (remote_port is None or x["remote"]["port"] == remote_port)]


def server_view(xs, client_exchanges):
    """The postgres backend's exchanges of the client's connections."""
    ports = {x["local"]["port"] for x in client_exchanges}
    return [x for x in pg_of(xs, "server", comm="postgres") if x["remote"]["port"] in ports]


def listing(xs):
    return "\n    ".join(f"{x['side']} {x['comm']}[{x['pid']}] {x['query_text'][:90]} -> "
                         f"{x['command_tag'] or x['sqlstate']}" for x in xs) or "(none)"


def start_exchanges(ctx, port):
    return start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")


def no_literal(text, literals):
    return not any(lit in text for lit in literals)


PSQL_STATEMENTS = [
    "CREATE TABLE kv (k int PRIMARY KEY, v text)",
    "INSERT INTO kv VALUES (1, 'secret-one')",
    "SELECT v FROM kv WHERE k = 1",
    "UPDATE kv SET v = 'secret-two' WHERE k = 1",
    "COPY kv TO STDOUT",
    "SELEC 1",
    "INSERT INTO kv VALUES (1, 'secret-dup')",
    "DELETE FROM kv WHERE k = 1",
]


@case(timeout=120)
def psql_statements_are_exchanges_on_both_ends(ctx):
    port = start_postgres(ctx)
    weft = start_exchanges(ctx, port)
    pid, out, err = psql(ctx, port, PSQL_STATEMENTS)
    check("42601" in err or "syntax error" in err, f"psql did not report the syntax error: {err}")
    check("duplicate key" in err, f"psql did not report the unique violation: {err}")
    n = len(PSQL_STATEMENTS)
    try:
        xs = wait_for(weft, "psql's exchanges on both ends",
                      lambda xs: len(pg_of(xs, "client", pid=pid)) >= n and
                      len(server_view(xs, pg_of(xs, "client", pid=pid))) >= n, timeout=20)
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(pg_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    client = pg_of(xs, "client", pid=pid)
    server = server_view(xs, client)
    for what, got in (("client (psql)", client), ("server (postgres)", server)):
        eq(len(got), n, f"{what} exchanges, one per statement:\n    {listing(got)}\n  ")
        eq([x["operation"] for x in got],
           ["CREATE", "INSERT", "SELECT", "UPDATE", "COPY", "", "INSERT", "DELETE"], f"{what} operations")
        eq([x["sqlstate"] for x in got], [None, None, None, None, None, "42601", "23505", None],
           f"{what} SQLSTATEs")
        eq([x["collection"] for x in got], ["kv", "kv", "kv", "kv", "kv", "", "kv", "kv"], f"{what} tables")
        eq((got[4]["copy"], got[4]["copy_bytes"], got[4]["command_tag"]), (True, len("1\tsecret-two\n"), "COPY 1"),
           f"{what} COPY TO STDOUT (one row, counted not kept)")
        eq(got[2]["query_text"], "SELECT v FROM kv WHERE k = ?;", f"{what} sanitised text")
        eq(got[2]["rows"], 1, f"{what} rows of the SELECT")
        eq(got[1]["command_tag"], "INSERT 0 1", f"{what} command tag")
        for x in got:
            check(no_literal(x["query_text"], ("secret", "'")), f"{what}: a literal in {x['query_text']}")
            check(x["request"]["start_ns"] <= x["request"]["end_ns"] <= x["response"]["start_ns"] <=
                  x["response"]["end_ns"], f"{what}: timings out of order in {x}")
        eq({x["database"] for x in got}, {"postgres"}, f"{what} database (from the startup message)")


PSYCOPG = r'''
import sys, psycopg2
c = psycopg2.connect(host="127.0.0.1", port=int(sys.argv[1]), user="postgres", dbname="postgres")
c.autocommit = True
cur = c.cursor()
cur.execute("SELECT 1")
print("connected", flush=True)
sys.stdin.readline()
cur.execute("CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, name text)")
cur.execute("INSERT INTO items VALUES (%s, %s)", (41, "secret-name"))
cur.execute("SELECT name FROM items WHERE id = %s", (41,))
cur.fetchall()
try:
    cur.execute("INSERT INTO items VALUES (%s, %s)", (41, "secret-again"))
except psycopg2.errors.UniqueViolation:
    pass
cur.execute("DELETE FROM items WHERE id = %s", (41,))
print("done", flush=True)
sys.stdin.readline()
'''


@case(timeout=120)
def psycopg2_connection_opened_before_weft_is_traced_from_its_next_statement(ctx):
    check(os.path.exists(SYSTEM_PYTHON), "no /usr/bin/python3")
    port = start_postgres(ctx)
    err = open(ctx.path("client.stderr"), "wb")
    ctx.on_cleanup(err.close)
    proc = ctx.spawn([SYSTEM_PYTHON, "-u", "-c", PSYCOPG, str(port)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=err, stop_signal=signal.SIGKILL)
    proc.err_path = err.name
    eq(read_line(proc, 20, "connected"), "connected", "psycopg2 client")
    weft = start_exchanges(ctx, port)
    tell(proc, "go")
    eq(read_line(proc, 20, "done"), "done", "psycopg2 client")
    want = ["CREATE", "INSERT", "SELECT", "INSERT", "DELETE"]
    try:
        wait_for(weft, "the pre-connected client's exchanges",
                 lambda xs: len(pg_of(xs, "client", pid=proc.pid)) >= len(want) and
                 len(server_view(xs, pg_of(xs, "client", pid=proc.pid))) >= len(want))
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(pg_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    client = pg_of(xs, "client", pid=proc.pid)
    server = server_view(xs, client)
    for what, got in (("client (psycopg2)", client), ("server (postgres)", server)):
        eq([x["operation"] for x in got], want, f"{what} operations:\n    {listing(got)}\n  ")
        eq([x["sqlstate"] for x in got], [None, None, None, "23505", None], f"{what} SQLSTATEs")
        eq(got[1]["query_text"], "INSERT INTO items VALUES (?, ?)", f"{what} sanitised text")
        # The startup message was before weft: the database is not known, not guessed.
        eq({x["database"] for x in got}, {None}, f"{what} database of a connection opened before weft")
        for x in got:
            check(no_literal(x["query_text"], ("secret", "41")), f"{what}: a literal in {x['query_text']}")
    tell(proc, "bye")


def pgbench(ctx, port, args, timeout=120):
    r = subprocess.run([os.path.join(PG_BIN, "pgbench"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                        *args, "postgres"], capture_output=True, timeout=timeout)
    out = r.stdout.decode(errors="replace")
    eq(r.returncode, 0, f"pgbench {' '.join(args)} exit status ({r.stderr.decode(errors='replace')[-800:]})")
    return out


# The built-in tpcb-like script: 7 statements per transaction, in this order.
TPCB = [("BEGIN", ""), ("UPDATE", "pgbench_accounts"), ("SELECT", "pgbench_accounts"),
        ("UPDATE", "pgbench_tellers"), ("UPDATE", "pgbench_branches"), ("INSERT", "pgbench_history"),
        ("END", "")]


def check_pgbench(ctx, port, mode):
    pgbench(ctx, port, ["-i", "-s", "1", "-q"])
    weft = start_exchanges(ctx, port)
    clients, per_client = 2, 40
    out = pgbench(ctx, port, ["-n", "-M", mode, "-c", str(clients), "-t", str(per_client)])
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    check(m, f"pgbench printed no transaction count: {out}")
    tx = int(m.group(1))
    eq(tx, clients * per_client, "transactions pgbench reports")

    def statements(xs, side):
        got = [x for x in pg_of(xs, side) if (x["operation"], x["collection"]) in TPCB]
        return got if side == "server" else [x for x in got if x["comm"] == "pgbench"]
    try:
        wait_for(weft, f"{tx * len(TPCB)} pgbench statements on both ends",
                 lambda xs: len(statements(xs, "client")) >= tx * len(TPCB) and
                 len(statements(xs, "server")) >= tx * len(TPCB), timeout=30)
    except TestFailure as e:
        xs = exchanges_json(weft)
        raise TestFailure(f"{e}; got {len(statements(xs, 'client'))} client and {len(statements(xs, 'server'))} "
                          f"server exchanges")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    for side in ("client", "server"):
        got = statements(xs, side)
        for op, table in TPCB:
            eq(sum(1 for x in got if (x["operation"], x["collection"]) == (op, table)), tx,
               f"{side}-side {op} {table} exchanges (pgbench -M {mode})")
        check(all(x["sqlstate"] is None for x in got), f"{side}: a pgbench statement failed")
        check(all(not x["statement_unknown"] for x in got), f"{side}: an unknown prepared statement")
        check(all("$1" in x["query_text"] or mode == "simple" for x in got if x["operation"] == "UPDATE"),
              f"{side}: -M {mode} parameters")
        for x in got:
            check(not re.search(r"= \d|\+ -?\d", x["query_text"]), f"{side}: a literal in {x['query_text']}")
    return xs


@case(timeout=240)
def pgbench_simple_protocol_counts_are_exact(ctx):
    xs = check_pgbench(ctx, start_postgres(ctx), "simple")
    check(not any(x["extended"] for x in pg_of(xs, "client") if x["comm"] == "pgbench"),
          "pgbench -M simple: an extended-protocol exchange")


@case(timeout=240)
def pgbench_prepared_protocol_counts_are_exact(ctx):
    xs = check_pgbench(ctx, start_postgres(ctx), "prepared")
    named = [x for x in pg_of(xs, "client") if x["comm"] == "pgbench" and x["operation"] == "UPDATE"]
    check(named and all(x["extended"] and x["statement_name"] for x in named),
          "pgbench -M prepared: UPDATEs not executed as named prepared statements")


PIPELINE_SCRIPT = r'''\set aid random(1, 100000)
\startpipeline
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
\endpipeline
'''


@case(timeout=240)
def pgbench_pipelined_extended_protocol_is_one_exchange_per_execute(ctx):
    port = start_postgres(ctx)
    pgbench(ctx, port, ["-i", "-s", "1", "-q"])
    script = ctx.path("pipeline.sql")
    with open(script, "w") as f:
        f.write(PIPELINE_SCRIPT)
    os.chmod(ctx.tmp, 0o755)
    weft = start_exchanges(ctx, port)
    out = pgbench(ctx, port, ["-n", "-M", "extended", "-c", "1", "-t", "30", "-f", script])
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    check(m, f"pgbench printed no transaction count: {out}")
    tx = int(m.group(1))

    def statements(xs):
        return [x for x in pg_of(xs, "client") if x["comm"] == "pgbench" and x["collection"] == "pgbench_accounts"]
    try:
        wait_for(weft, f"{3 * tx} pipelined statements", lambda xs: len(statements(xs)) >= 3 * tx, timeout=30)
    finally:
        weft.stop()
    got = statements(exchanges_json(weft))
    eq(len(got), 3 * tx, "client exchanges of the pipelined script (3 Executes per Sync)")
    eq([x["operation"] for x in got[:3]], ["SELECT", "UPDATE", "SELECT"], "order of the pipelined Executes")
    check(all(x["extended"] for x in got), "a pipelined statement not seen as extended protocol")


@case(timeout=120)
def postgres_spans_client_and_server_sanitised(ctx):
    port = start_postgres(ctx)
    out_path = ctx.path("spans.jsonl")
    metrics_port = free_port()
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out_path, "--trace-wait", "0.3",
                            "--export-interval", "0.1", "--metrics-address", f"127.0.0.1:{metrics_port}"],
                      label="run")
    weft.wait_capturing()
    pid, _, err = psql(ctx, port, PSQL_STATEMENTS)

    def pg_spans():
        return [s for s in otlp_spans(out_path) if s["attrs"].get("db.system.name") == "postgresql" and
                s["attrs"].get("server.port") in (port, str(port))]
    try:
        wait_until(lambda: len([s for s in pg_spans() if s["pid"] == pid]) >= len(PSQL_STATEMENTS) and
                   len([s for s in pg_spans() if s["kind"] == 2]) >= len(PSQL_STATEMENTS), 30,
                   "the psql client spans and the postgres server spans")
        text = wait_until(lambda: (lambda t: t if 'db_system_name="postgresql"' in t else None)(scrape(metrics_port)),
                          10, "PostgreSQL series of db_client_operation_duration_seconds on /metrics")
    finally:
        weft.stop()
    series = [line for line in text.splitlines() if 'db_system_name="postgresql"' in line and "_count{" in line]
    check(any(line.startswith("db_client_operation_duration_seconds_count{") and 'db_operation_name="SELECT"' in line
              and 'db_collection_name="kv"' in line for line in series),
          "no db.client.operation.duration series for SELECT kv:\n" + "\n".join(series))
    check(any(line.startswith("weft_db_server_operation_duration_seconds_count{") and
              'db_response_status_code="23505"' in line for line in series),
          "no server-side series for the unique violation:\n" + "\n".join(series))
    spans = pg_spans()
    client = [s for s in spans if s["pid"] == pid]
    server = [s for s in spans if s["kind"] == 2]
    for what, got, kind in (("client", client, 3), ("server", server, 2)):
        by_text = {s["attrs"].get("db.query.text"): s for s in got}
        sel = by_text.get("SELECT v FROM kv WHERE k = ?;")
        check(sel, f"{what}: no span for the SELECT: {sorted(t or '' for t in by_text)}")
        eq(sel["kind"], kind, f"{what} span kind")
        eq(sel["name"], "SELECT kv", f"{what} span name")
        eq(sel["attrs"]["db.namespace"], "postgres", f"{what} db.namespace")
        eq(sel["attrs"]["db.collection.name"], "kv", f"{what} db.collection.name")
        dup = by_text.get("INSERT INTO kv VALUES (?, ?);")
        failed = [s for s in got if s["attrs"].get("db.response.status_code") == "23505"]
        check(failed, f"{what}: no span with db.response.status_code 23505")
        eq(failed[0]["status"].get("code"), 2, f"{what} status of the unique violation")
        check(dup, f"{what}: no sanitised INSERT span")
        syntax = [s for s in got if s["attrs"].get("db.response.status_code") == "42601"]
        check(syntax and syntax[0]["status"].get("code") == 2, f"{what}: the syntax error is no span error")
        for s in got:
            check(no_literal(s["attrs"].get("db.query.text", ""), ("secret",)), f"{what}: a literal: {s['attrs']}")


SHOP = r'''
import http.server, socketserver, sys, psycopg2
pg_port = int(sys.argv[2])

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        # One connection per request, on the thread that serves it.
        c = psycopg2.connect(host="127.0.0.1", port=pg_port, user="postgres", dbname="postgres")
        c.autocommit = True  # no BEGIN first: one statement per request
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM pg_class WHERE relname <> %s", ("secret",))
        body = f"{cur.fetchone()[0]}\n".encode()
        c.close()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


@case(timeout=120)
def http_service_querying_postgres_is_one_trace_per_request(ctx):
    """An uninstrumented python3 HTTP service (thread per request) querying PostgreSQL for each
    request: curl -> shop server span -> its database client span -> the postgres backend's
    server span, one trace per request."""
    pg_port = start_postgres(ctx)
    port = free_port()
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", SHOP, str(port), str(pg_port)],
                     env={**os.environ, "OTEL_SERVICE_NAME": "shop"}, stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    out_path = ctx.path("spans.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out_path, "--trace-wait", "0.3",
                            "--export-interval", "0.1"], label="run")
    weft.wait_capturing()
    total = 8
    args = []
    for n in range(total):
        args += ["-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/item/{n}"]
    r = subprocess.run(["curl", *args], capture_output=True, timeout=60)
    eq(r.returncode, 0, f"curl exit status ({r.stderr.decode(errors='replace')})")

    def traces():
        by_trace = {}
        for s in otlp_spans(out_path):
            by_trace.setdefault(s["traceId"], []).append(s)
        return [t for t in by_trace.values() if any(s["service"] == "shop" and s["kind"] == 2 for s in t)]

    def shape(t):
        def who(s):
            if s["attrs"].get("db.system.name") == "postgresql":
                return ("db", s["kind"])
            return (s["service"], s["kind"])
        roots = [s for s in t if "parentSpanId" not in s]
        if len(roots) != 1:
            return [("roots", len(roots))]
        chain, s = [who(roots[0])], roots[0]
        while True:
            kids = [c for c in t if c.get("parentSpanId") == s["spanId"]]
            if len(kids) != 1:
                return chain + ([("children", len(kids))] if kids else [])
            s = kids[0]
            chain.append(who(s))
    want = [("curl", 3), ("shop", 2), ("db", 3), ("db", 2)]
    try:
        wait_until(lambda: sum(1 for t in traces() if shape(t) == want) >= total, 30,
                   f"{total} traces of curl -> shop -> database client -> database server")
    except TestFailure as e:
        raise TestFailure(f"{e}; shapes: {[shape(t) for t in traces()][:5]}")
    finally:
        weft.stop()
    for t in traces():
        for s in t:
            check("secret" not in s["attrs"].get("db.query.text", ""), f"a literal in {s['attrs']}")


@case(timeout=120)
def psql_over_tls_is_read_from_the_tls_libraries_plaintext(ctx):
    """SSLRequest answered 'S': the statements travel in TLS; libpq's and the postgres backend's
    OpenSSL give weft their plaintext, which is parsed as if the connection were clear."""
    port = start_postgres(ctx, ssl=True)
    weft = start_exchanges(ctx, port)
    statements = ["SELECT 1", "SELECT relname FROM pg_class WHERE relname = 'secret'", "SELEC 2"]
    pid, out, err = psql(ctx, port, statements, sslmode="require")
    check("syntax error" in err, f"psql over TLS did not run the statements: {err}")
    try:
        xs = wait_for(weft, "psql's exchanges over TLS on both ends",
                      lambda xs: len(pg_of(xs, "client", pid=pid)) >= 3 and
                      len(server_view(xs, pg_of(xs, "client", pid=pid))) >= 3, timeout=20)
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(pg_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    plaintext, not_parsed = exchanges_tls_counts(weft)
    check(plaintext >= 2 and not_parsed > 0,
          f"connections read as TLS plaintext ({plaintext}), ciphertext bytes not parsed ({not_parsed})")
    client = pg_of(xs, "client", pid=pid)
    for what, got in (("client (psql)", client), ("server (postgres)", server_view(xs, client))):
        eq([(x["operation"], x["sqlstate"]) for x in got], [("SELECT", None), ("SELECT", None), ("", "42601")],
           f"{what} exchanges over TLS:\n    {listing(got)}\n  ")
        eq(got[1]["query_text"], "SELECT relname FROM pg_class WHERE relname = ?;", f"{what} sanitised text")
        eq({x["database"] for x in got}, {"postgres"}, f"{what} database (the startup message, in TLS)")
