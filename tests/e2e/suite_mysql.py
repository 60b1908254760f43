"""MySQL protocol: Debian's MariaDB server (mariadbd), the mariadb client, mysqlslap,
python3-pymysql and Perl's DBD::MariaDB on loopback; `weft exchanges --json` counts and reads the
MySQL exchanges of both ends (the client and mariadbd), `weft run` exports their spans.

Each test starts its own server (mariadb-install-db takes well under a second here): a data
directory in the test's temporary directory owned by the mysql user, its unix socket inside it,
TCP on 127.0.0.1 and a free port, root without a password; the server is ended (SIGTERM, then
SIGKILL) and the directory deleted even when the test fails. weft's output is filtered on that
port, so other traffic does not count.

Server-side prepared statements: the mariadb client, mysqlslap and pymysql send only COM_QUERY
(pymysql has no server-side prepare, and SQL PREPARE/EXECUTE are COM_QUERY too). Perl's
DBD::MariaDB (libdbd-mariadb-perl) with mariadb_server_prepare=1 sends COM_STMT_PREPARE,
COM_STMT_EXECUTE with binary rows and COM_STMT_CLOSE through libmariadb, the C connector most
programs link: it is the client used for them.
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

SYSTEM_PYTHON = "/usr/bin/python3"  # where python3-pymysql is installed
MARIADBD = "/usr/sbin/mariadbd"
CLIENT = "/usr/bin/mariadb"
SLAP = "/usr/bin/mysqlslap"


def start_mariadb(ctx, ssl=False):
    """A server of this test on a free loopback port with an empty database `shop`; returns the
    port."""
    for tool in (MARIADBD, CLIENT, SLAP, "/usr/bin/mariadb-install-db"):
        check(os.path.exists(tool), f"{tool} is not installed (Debian: mariadb-server, mariadb-client; "
                                    "scripts/setup.sh installs them)")
    os.chmod(ctx.tmp, 0o755)  # the mysql user reaches its directory inside
    data = ctx.path("data")
    os.mkdir(data, 0o700)
    shutil.chown(data, "mysql", "mysql")
    r = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=mysql",
                        "--skip-test-db", "--auth-root-authentication-method=normal"],
                       capture_output=True, timeout=60)
    eq(r.returncode, 0, f"mariadb-install-db exit status ({r.stderr.decode(errors='replace')[-800:]})")
    options = []
    if ssl:
        make_certificate(ctx)
        options = [f"--ssl-cert={ctx.path('cert.pem')}", f"--ssl-key={ctx.path('key.pem')}"]
    port = free_port()
    log = open(ctx.path("mariadbd.log"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([MARIADBD, "--no-defaults", f"--datadir={data}", f"--socket={data}/sock",
                      f"--port={port}", "--bind-address=127.0.0.1", "--user=mysql", "--skip-log-bin",
                      "--skip-name-resolve", "--innodb-buffer-pool-size=16M", "--max-connections=30",
                      f"--pid-file={data}/pid", *options], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, timeout=30, proc=proc)
    except TestFailure as e:
        log.flush()
        with open(ctx.path("mariadbd.log"), errors="replace") as f:
            raise TestFailure(f"{e}; mariadbd.log:\n{f.read()[-1500:]}")
    client(ctx, port, ["CREATE DATABASE shop"], database="")
    return port


def client(ctx, port, statements, database="shop", extra=(), timeout=30, check_exit=True):
    """One mariadb client process running `statements` in batch mode on one connection (each sent
    as its own COM_QUERY; --force goes on after errors); returns (pid, stdout, stderr)."""
    script = "".join(s + ";\n" for s in statements).encode()
    argv = [CLIENT, "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", "root", "--force", *extra]
    if database:
        argv += ["-D", database]
    proc = ctx.spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(script, timeout=timeout)
    if check_exit and proc.returncode not in (0, 1):
        raise TestFailure(f"mariadb exit status {proc.returncode}: {err.decode(errors='replace')}")
    return proc.pid, out.decode(errors="replace"), err.decode(errors="replace")


def my_of(xs, side=None, pid=None, comm=None, command=None):
    return [x for x in xs if x.get("protocol") == "mysql" and (side is None or x["side"] == side) and
            (pid is None or x["pid"] == pid) and (comm is None or x["comm"] == comm) and
            (command is None or x["command"] == command)]


def server_view(xs, client_exchanges):
    """mariadbd's exchanges of the client's connections."""
    ports = {x["local"]["port"] for x in client_exchanges}
    return [x for x in my_of(xs, "server", comm="mariadbd") if x["remote"]["port"] in ports]


def listing(xs):
    return "\n    ".join(f"{x['side']} {x['comm']}[{x['pid']}] {x['command']} {x['query_text'][:90]} -> "
                         f"{x['error_code'] or 'OK'}" for x in xs) or "(none)"


def start_exchanges(ctx, port):
    return start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")


def no_literal(text, literals):
    return not any(lit in text for lit in literals)


CLIENT_STATEMENTS = [
    "CREATE TABLE kv (k int PRIMARY KEY, v varchar(64))",
    "INSERT INTO kv VALUES (1, 'secret-one'), (2, \"secret-two\")",
    "SELECT v FROM kv WHERE k = 1",
    "UPDATE kv SET v = 'secret-three' WHERE k = 1",
    "SELEC 1",
    "INSERT INTO kv VALUES (1, 'secret-dup')",
    "SELECT `v` FROM `kv` WHERE k IN (0x10, b'1', X'02')",
    "DELETE FROM kv WHERE k = 1",
]


@case(timeout=120)
def mariadb_client_statements_are_exchanges_on_both_ends(ctx):
    port = start_mariadb(ctx)
    weft = start_exchanges(ctx, port)
    pid, out, err = client(ctx, port, CLIENT_STATEMENTS)
    check("1064" in err, f"mariadb did not report the syntax error: {err}")
    check("1062" in err, f"mariadb did not report the duplicate key: {err}")
    n = len(CLIENT_STATEMENTS)
    try:
        wait_for(weft, "the mariadb client's exchanges on both ends",
                 lambda xs: len(my_of(xs, "client", pid=pid, command="COM_QUERY")) >= n and
                 len(server_view(xs, my_of(xs, "client", pid=pid))) >= n, timeout=20)
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(my_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    client_xs = my_of(xs, "client", pid=pid)
    server_xs = server_view(xs, client_xs)
    for what, got in (("client (mariadb)", client_xs), ("server (mariadbd)", server_xs)):
        queries = [x for x in got if x["command"] == "COM_QUERY"]
        eq(len(queries), n, f"{what} COM_QUERY exchanges, one per statement:\n    {listing(got)}\n  ")
        eq([x["operation"] for x in queries],
           ["CREATE", "INSERT", "SELECT", "UPDATE", "", "INSERT", "SELECT", "DELETE"], f"{what} operations")
        eq([x["error_code"] for x in queries], [None, None, None, None, 1064, 1062, None, None],
           f"{what} error codes")
        eq([x["collection"] for x in queries], ["kv", "kv", "kv", "kv", "", "kv", "kv", "kv"], f"{what} tables")
        eq(queries[1]["query_text"], "INSERT INTO kv VALUES (?, ?), (?, ?)", f"{what} sanitised text")
        eq(queries[6]["query_text"], "SELECT `v` FROM `kv` WHERE k IN (?, ?, ?)", f"{what} sanitised text")
        eq((queries[2]["rows"], queries[2]["columns"]), (1, 1), f"{what} rows and columns of the SELECT")
        eq(queries[1]["affected_rows"], 2, f"{what} affected rows of the INSERT")
        eq({x["system"] for x in got}, {"mariadb"}, f"{what} db.system.name (the greeting says MariaDB)")
        eq({x["database"] for x in queries}, {"shop"}, f"{what} database (from the HandshakeResponse)")
        for x in got:
            check(no_literal(x["query_text"], ("secret", "'", "0x10")), f"{what}: a literal in {x['query_text']}")
            check(x["request"]["start_ns"] <= x["request"]["end_ns"] <= x["response"]["start_ns"] <=
                  x["response"]["end_ns"], f"{what}: timings out of order in {x}")
    # Nothing else the client sent draws an answer weft did not pair.
    unpaired = [x for x in client_xs if x["command"] not in ("COM_QUERY", "COM_INIT_DB")]
    eq(unpaired, [], "client exchanges other than the statements")


# DBD::MariaDB with server-side prepared statements: PREPARE once, EXECUTE five times (binary
# rows), a statement that fails at EXECUTE, CLOSE. The placeholders' values never reach a span.
PERL_PREPARED = r'''
use strict; use DBI;
my $port = $ARGV[0];
my $dbh = DBI->connect("DBI:MariaDB:database=shop;host=127.0.0.1;port=$port;mariadb_server_prepare=1",
                       "root", "", {RaiseError => 0, PrintError => 0, AutoCommit => 1}) or die $DBI::errstr;
$dbh->do("CREATE TABLE items (id int PRIMARY KEY, name varchar(32))") or die $dbh->errstr;
my $ins = $dbh->prepare("INSERT INTO items (id, name) VALUES (?, ?)") or die $dbh->errstr;
$ins->execute($_, "secret-$_") or die $ins->errstr for 1 .. 5;
$ins->execute(1, "secret-dup") and die "duplicate accepted";
print "dup ", $ins->err, "\n";
$ins->finish; undef $ins;
my $sel = $dbh->prepare("SELECT name FROM items WHERE id <= ?") or die $dbh->errstr;
for my $n (2, 4) { $sel->execute($n) or die $sel->errstr; my $r = $sel->fetchall_arrayref; print "rows ", scalar(@$r), "\n"; }
undef $sel;
$dbh->disconnect;
print "done\n";
'''


@case(timeout=120)
def prepared_statements_from_libmariadb_are_named_by_their_prepare(ctx):
    port = start_mariadb(ctx)
    script = ctx.path("prepared.pl")
    with open(script, "w") as f:
        f.write(PERL_PREPARED)
    weft = start_exchanges(ctx, port)
    r = subprocess.run(["perl", script, str(port)], capture_output=True, timeout=30)
    out = r.stdout.decode(errors="replace")
    eq(r.returncode, 0, f"perl DBD::MariaDB exit status ({r.stderr.decode(errors='replace')[-600:]})")
    eq(out.split("\n"), ["dup 1062", "rows 2", "rows 4", "done", ""], "what the Perl client saw")
    # DBI's do() prepares and executes too (its statement closed, unanswered); finish() after the
    # failed EXECUTE resets the statement.
    want = (["COM_STMT_PREPARE", "COM_STMT_EXECUTE", "COM_STMT_PREPARE"] + ["COM_STMT_EXECUTE"] * 6 +
            ["COM_STMT_RESET", "COM_STMT_PREPARE"] + ["COM_STMT_EXECUTE"] * 2)

    def stmt(xs, side):
        return [x for x in my_of(xs, side, comm="perl" if side == "client" else "mariadbd")
                if x["command"].startswith("COM_STMT")]
    try:
        wait_for(weft, "the prepared statements on both ends",
                 lambda xs: len(stmt(xs, "client")) >= len(want) and len(stmt(xs, "server")) >= len(want))
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(my_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    for side in ("client", "server"):
        got = stmt(xs, side)
        eq([x["command"] for x in got], want, f"{side} commands (CLOSE is answered by nothing):\n    {listing(got)}\n  ")
        ins, executes, sel, selects = got[2], got[3:9], got[10], got[11:13]
        check(ins["statement_id"] != sel["statement_id"], f"{side}: both statements have id {ins['statement_id']}")
        eq([x["statement_id"] for x in executes + [got[9]]], [ins["statement_id"]] * 7,
           f"{side} statement ids of the INSERTs and the RESET")
        eq([x["statement_id"] for x in selects], [sel["statement_id"]] * 2, f"{side} statement ids of the SELECTs")
        for x in got[1:2] + executes + selects:
            check(x["prepared"] and not x["statement_unknown"], f"{side}: an EXECUTE without its text: {x}")
        eq({x["query_text"] for x in executes}, {"INSERT INTO items (id, name) VALUES (?, ?)"}, f"{side} text")
        eq([x["operation"] for x in executes], ["INSERT"] * 6, f"{side} operations of the EXECUTEs")
        eq([x["error_code"] for x in executes], [None] * 5 + [1062], f"{side} error codes")
        eq([x["rows"] for x in selects], [2, 4], f"{side} binary rows counted")
        eq([x["operation"] for x in (got[0], ins, sel)], ["PREPARE"] * 3, f"{side} PREPARE operation")
        eq(got[9]["operation"], "STMT_RESET", f"{side} RESET operation")
        for x in got:
            check("secret" not in x["query_text"], f"{side}: a value in {x['query_text']}")


PYMYSQL = r'''
import sys, pymysql
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", database="shop", autocommit=True)
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
except pymysql.err.IntegrityError:
    pass
cur.execute("DELETE FROM items WHERE id = %s", (41,))
print("done", flush=True)
sys.stdin.readline()
'''


@case(timeout=120)
def pymysql_connection_opened_before_weft_is_traced_from_its_next_statement(ctx):
    check(os.path.exists(SYSTEM_PYTHON), "no /usr/bin/python3")
    port = start_mariadb(ctx)
    err = open(ctx.path("client.stderr"), "wb")
    ctx.on_cleanup(err.close)
    proc = ctx.spawn([SYSTEM_PYTHON, "-u", "-c", PYMYSQL, str(port)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=err, stop_signal=signal.SIGKILL)
    proc.err_path = err.name
    eq(read_line(proc, 20, "connected"), "connected", "pymysql client")
    weft = start_exchanges(ctx, port)
    tell(proc, "go")
    eq(read_line(proc, 20, "done"), "done", "pymysql client")
    want = ["CREATE", "INSERT", "SELECT", "INSERT", "DELETE"]
    try:
        wait_for(weft, "the pre-connected client's exchanges",
                 lambda xs: len(my_of(xs, "client", pid=proc.pid)) >= len(want) and
                 len(server_view(xs, my_of(xs, "client", pid=proc.pid))) >= len(want))
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(my_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    client_xs = my_of(xs, "client", pid=proc.pid)
    server_xs = server_view(xs, client_xs)
    for what, got, system in (("client (pymysql)", client_xs, "mysql"), ("server (mariadbd)", server_xs, "mariadb")):
        eq([x["operation"] for x in got], want, f"{what} operations:\n    {listing(got)}\n  ")
        eq([x["error_code"] for x in got], [None, None, None, 1062, None], f"{what} error codes")
        eq(got[1]["query_text"], "INSERT INTO items VALUES (?, ?)", f"{what} sanitised text")
        # The handshake was before weft: the database is not known, not guessed; the system is
        # known where mariadbd serves (its name), not by the client (docs/protocols.md).
        eq({x["database"] for x in got}, {None}, f"{what} database of a connection opened before weft")
        eq({x["system"] for x in got}, {system}, f"{what} db.system.name without the greeting")
        for x in got:
            check(no_literal(x["query_text"], ("secret", "41")), f"{what}: a literal in {x['query_text']}")
    tell(proc, "bye")


MULTI = r'''
import sys, pymysql
from pymysql.constants import CLIENT
c = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="root", database="shop", autocommit=True,
                    client_flag=CLIENT.MULTI_STATEMENTS, local_infile=True)
cur = c.cursor()
cur.execute("CREATE TABLE items (id int PRIMARY KEY, name varchar(32))")
cur.execute("LOAD DATA LOCAL INFILE %s INTO TABLE items FIELDS TERMINATED BY ','", (sys.argv[2],))
cur.execute("SELECT name FROM items WHERE id < 3; UPDATE items SET name = 'secret-x' WHERE id > 1; SELECT id FROM items")
n = 1
while cur.nextset():
    n += 1
print("results", n, flush=True)
'''


@case(timeout=120)
def pymysql_multi_statements_and_local_infile(ctx):
    """One COM_QUERY holding three statements is one exchange counting its three results;
    LOAD DATA LOCAL INFILE's file is counted, never kept."""
    port = start_mariadb(ctx)
    client(ctx, port, ["SET GLOBAL local_infile = 1"])
    data = "".join(f"{i},secret-{i}\n" for i in range(1, 6))
    with open(ctx.path("items.csv"), "w") as f:
        f.write(data)
    weft = start_exchanges(ctx, port)
    r = subprocess.run([SYSTEM_PYTHON, "-c", MULTI, str(port), ctx.path("items.csv")], capture_output=True,
                       timeout=30)
    eq(r.returncode, 0, f"pymysql exit status ({r.stderr.decode(errors='replace')[-600:]})")
    eq(r.stdout.decode().strip(), "results 3", "result sets pymysql read")
    try:
        xs = wait_for(weft, "the three statements on both ends",
                      lambda xs: len(my_of(xs, "client", comm="python3")) >= 3 and
                      len(server_view(xs, my_of(xs, "client", comm="python3"))) >= 3)
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    client_xs = my_of(xs, "client", comm="python3")
    for what, got in (("client (pymysql)", client_xs), ("server (mariadbd)", server_view(xs, client_xs))):
        eq([x["operation"] for x in got], ["CREATE", "LOAD", "BATCH"], f"{what} operations:\n    {listing(got)}\n  ")
        load, batch = got[1], got[2]
        eq((load["local_infile"], load["local_infile_bytes"], load["affected_rows"]), (True, len(data), 5),
           f"{what} LOCAL INFILE (file bytes counted)")
        eq((batch["results"], batch["rows"], batch["affected_rows"]), (3, 2 + 5, 4),
           f"{what} results, rows and affected rows of the three statements")
        eq(batch["query_text"], "SELECT name FROM items WHERE id < ?; UPDATE items SET name = ? WHERE id > ?; "
           "SELECT id FROM items", f"{what} sanitised text")
        for x in got:
            check("secret" not in x["query_text"], f"{what}: a literal in {x['query_text']}")


def global_status(ctx, port, name):
    _, out, _ = client(ctx, port, [f"SHOW GLOBAL STATUS LIKE '{name}'"], extra=["-N", "-B"])
    return int(out.split()[1])


@case(timeout=120)
def mysqlslap_query_count_is_exact(ctx):
    port = start_mariadb(ctx)
    client(ctx, port, ["CREATE TABLE t (id int PRIMARY KEY, v int)",
                       "INSERT INTO t VALUES (1, 10), (2, 20), (3, 30)"])
    total, concurrency = 200, 4
    weft = start_exchanges(ctx, port)
    before = global_status(ctx, port, "Com_select")
    r = subprocess.run([SLAP, "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "-u", "root",
                        "--create-schema=shop", "--query=SELECT v FROM t WHERE id = 2",
                        f"--concurrency={concurrency}", f"--number-of-queries={total}", "--iterations=1",
                        "--no-drop"], capture_output=True, timeout=60)
    eq(r.returncode, 0, f"mysqlslap exit status ({r.stderr.decode(errors='replace')[-600:]})")
    # The server's own count (less the SHOW that reads it) is the ground truth.
    ran = global_status(ctx, port, "Com_select") - before

    def selects(xs, side):
        return [x for x in my_of(xs, side, comm="mysqlslap" if side == "client" else "mariadbd")
                if x["query_text"] == "SELECT v FROM t WHERE id = ?"]
    try:
        wait_for(weft, f"{ran} mysqlslap SELECTs on both ends",
                 lambda xs: len(selects(xs, "client")) >= ran and len(selects(xs, "server")) >= ran, timeout=30)
    except TestFailure as e:
        xs = exchanges_json(weft)
        raise TestFailure(f"{e}; got {len(selects(xs, 'client'))} client, {len(selects(xs, 'server'))} server")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    check(ran >= total, f"the server ran {ran} SELECTs, fewer than mysqlslap's {total}")
    for side in ("client", "server"):
        got = selects(xs, side)
        eq(len(got), ran, f"{side} SELECT exchanges (the server counted {ran})")
        check(all(x["rows"] == 1 and x["error_code"] is None for x in got), f"{side}: a SELECT without its row")


def spans_of(path, port):
    return [s for s in otlp_spans(path) if s["attrs"].get("db.system.name") == "mariadb" and
            s["attrs"].get("server.port") in (port, str(port))]


@case(timeout=120)
def mariadb_spans_client_and_server_stitched(ctx):
    port = start_mariadb(ctx)
    out_path = ctx.path("spans.jsonl")
    metrics_port = free_port()
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out_path, "--trace-wait", "0.3",
                            "--export-interval", "0.1", "--metrics-address", f"127.0.0.1:{metrics_port}"],
                      label="run")
    weft.wait_capturing()
    pid, _, err = client(ctx, port, CLIENT_STATEMENTS)
    n = len(CLIENT_STATEMENTS)
    try:
        wait_until(lambda: len([s for s in spans_of(out_path, port) if s["pid"] == pid]) >= n and
                   len([s for s in spans_of(out_path, port) if s["kind"] == 2]) >= n, 30,
                   "the mariadb client spans and the mariadbd server spans")
        text = wait_until(lambda: (lambda t: t if 'db_system_name="mariadb"' in t else None)(scrape(metrics_port)),
                          10, "MariaDB series of db_client_operation_duration_seconds on /metrics")
    finally:
        weft.stop()
    series = [line for line in text.splitlines() if 'db_system_name="mariadb"' in line and "_count{" in line]
    check(any(line.startswith("db_client_operation_duration_seconds_count{") and 'db_operation_name="SELECT"' in line
              and 'db_collection_name="kv"' in line for line in series),
          "no db.client.operation.duration series for SELECT kv:\n" + "\n".join(series))
    check(any(line.startswith("weft_db_server_operation_duration_seconds_count{") and
              'db_response_status_code="1062"' in line for line in series),
          "no server-side series for the duplicate key:\n" + "\n".join(series))
    spans = spans_of(out_path, port)
    client_spans = [s for s in spans if s["pid"] == pid and s["attrs"].get("weft.mysql.command") == "COM_QUERY"]
    server_spans = {s["spanId"]: s for s in spans if s["kind"] == 2}
    eq(len(client_spans), n, "client COM_QUERY spans")
    for s in client_spans:
        eq(s["kind"], 3, "client span kind")
        child = [c for c in server_spans.values() if c.get("parentSpanId") == s["spanId"]]
        check(len(child) == 1, f"the client span {s['name']} has {len(child)} server spans under it")
        eq(child[0]["traceId"], s["traceId"], "server span's trace")
        eq(child[0]["attrs"].get("db.query.text"), s["attrs"].get("db.query.text"), "server span's text")
    by_text = {s["attrs"].get("db.query.text"): s for s in client_spans}
    sel = by_text.get("SELECT v FROM kv WHERE k = ?")
    check(sel, f"no span for the SELECT: {sorted(t or '' for t in by_text)}")
    eq(sel["name"], "SELECT kv", "span name")
    eq(sel["attrs"]["db.namespace"], "shop", "db.namespace")
    eq(sel["attrs"]["db.collection.name"], "kv", "db.collection.name")
    for code in ("1064", "1062"):
        failed = [s for s in client_spans if s["attrs"].get("db.response.status_code") == code]
        check(failed and failed[0]["status"].get("code") == 2, f"the {code} error is no span error")
    for s in spans:
        check(no_literal(s["attrs"].get("db.query.text", ""), ("secret",)), f"a literal: {s['attrs']}")


SHOP = r'''
import http.server, socketserver, sys, pymysql
db_port = int(sys.argv[2])

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        # One connection per request, on the thread that serves it.
        c = pymysql.connect(host="127.0.0.1", port=db_port, user="root", database="shop", autocommit=True)
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name <> %s", ("secret",))
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
def http_service_querying_mariadb_is_one_trace_per_request(ctx):
    """An uninstrumented python3 HTTP service (thread per request) querying MariaDB through pymysql
    for each request: curl -> shop server span -> its database client span -> mariadbd's server
    span, one trace per request. (tests/e2e/chain_service.py calls HTTP tiers only; the service
    is written here as suite_postgres.py's is.)"""
    db_port = start_mariadb(ctx)
    port = free_port()
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", SHOP, str(port), str(db_port)],
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
            if s["attrs"].get("db.system.name") in ("mysql", "mariadb"):
                return ("db", s["kind"], s["attrs"].get("weft.mysql.command"))
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
    want = [("curl", 3), ("shop", 2), ("db", 3, "COM_QUERY"), ("db", 2, "COM_QUERY")]
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
def mariadb_over_tls_is_read_from_the_tls_libraries_plaintext(ctx):
    """An SSL request in the handshake: the rest travels in TLS; the client's and mariadbd's
    OpenSSL give weft their plaintext, which is parsed from the HandshakeResponse on."""
    port = start_mariadb(ctx, ssl=True)
    weft = start_exchanges(ctx, port)
    statements = ["SELECT 1", "SELECT table_name FROM information_schema.tables WHERE table_name = 'secret'",
                  "SELEC 2"]
    pid, out, err = client(ctx, port, statements, extra=["--ssl", "--skip-ssl-verify-server-cert"])
    check("1064" in err, f"mariadb over TLS did not run the statements: {err}")
    try:
        wait_for(weft, "the mariadb client's exchanges over TLS on both ends",
                 lambda xs: len(my_of(xs, "client", pid=pid, command="COM_QUERY")) >= 3 and
                 len(server_view(xs, my_of(xs, "client", pid=pid))) >= 3, timeout=20)
    except TestFailure as e:
        raise TestFailure(f"{e}; exchanges:\n    {listing(my_of(exchanges_json(weft)))}")
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    plaintext, not_parsed = exchanges_tls_counts(weft)
    check(plaintext >= 2 and not_parsed > 0,
          f"connections read as TLS plaintext ({plaintext}), ciphertext bytes not parsed ({not_parsed})")
    client_xs = my_of(xs, "client", pid=pid)
    for what, got in (("client (mariadb)", client_xs), ("server (mariadbd)", server_view(xs, client_xs))):
        got = [x for x in got if x["command"] == "COM_QUERY"]
        eq([(x["operation"], x["error_code"]) for x in got], [("SELECT", None), ("SELECT", None), ("", 1064)],
           f"{what} exchanges over TLS:\n    {listing(got)}\n  ")
        eq(got[1]["query_text"], "SELECT table_name FROM information_schema.tables WHERE table_name = ?",
           f"{what} sanitised text")
        eq({x["database"] for x in got}, {"shop"}, f"{what} database (the HandshakeResponse, in TLS)")
