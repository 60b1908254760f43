"""TLS plaintext from Go's crypto/tls: a Go net/http HTTPS server and Go HTTPS clients built by
the test with golang-go (tests/e2e/go_tls), real curl and nginx, on loopback. Checked: the server's and the clients'
HTTP exchanges inside TLS with the right method, path and status and url.scheme https; a Go
client and a Go server stitched into one trace (same-node: the TCP sequence numbers weft reads at
each call); 200 requests over 20 connections from 20 goroutines, each exchange once on its own
connection; and an executable built with -ldflags=-w (no DWARF) named by `weft doctor` with why,
its calls counted and never reported; a Go executable first run after weft started, hooked
from its exec within a second; a position-independent build, with a connection older than weft.
"""
import atexit
import os
import re
import shutil
import subprocess
from collections import defaultdict

from harness import case, check, eq, free_port, run, start_weft, wait_listening, wait_until
import harness
from peers import curl
from suite_inference import GO_CACHE, find_go
from suite_tls import exchange_listing, exchanges_json, http_of, start_nginx_tls, tls_call_counts
from suite_tracing import otlp_spans

GO_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "go_tls")
_built = {}  # build flags -> binary: each variant is built once per test run


def go_binary(*flags):
    """tests/e2e/go_tls built offline (no dependencies), once per run and variant."""
    if flags in _built and os.path.exists(_built[flags]):
        return _built[flags]
    out_dir = os.path.join(GO_CACHE, f"gotls-{os.getpid()}")
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
        atexit.register(shutil.rmtree, out_dir, True)  # the build cache stays, the binaries go
    binary = os.path.join(out_dir, "gotls" + "".join(re.sub(r"[^a-z]+", "-", f) for f in flags))
    env = {**os.environ, "GOCACHE": os.path.join(GO_CACHE, "build"), "GOPATH": os.path.join(GO_CACHE, "path"),
           "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off",
           "CGO_ENABLED": "0"}
    r = run([find_go(), "build", "-o", binary] + list(flags) + ["."], timeout=240, cwd=GO_SOURCE, env=env)
    eq(r.returncode, 0, f"go build exit status ({r.stderr.decode(errors='replace')[-600:]})")
    _built[flags] = binary
    return binary


def make_cert(ctx):
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-keyout", ctx.path("key.pem"), "-out", ctx.path("cert.pem")])
    eq(r.returncode, 0, f"openssl req exit status ({r.stderr.decode(errors='replace')[-300:]})")
    return ctx.path("cert.pem"), ctx.path("key.pem")


def start_go_server(ctx, binary):
    """The Go HTTPS server on a free loopback port; returns (port, process)."""
    cert, key = make_cert(ctx)
    port = free_port()
    log = open(ctx.path("go-server.log"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([binary, "server", str(port), cert, key], stdout=log, stderr=subprocess.STDOUT)
    wait_listening(port, proc=proc)
    return port, proc


def go_client(ctx, binary, args, timeout=60):
    """A Go client run to completion; returns (pid, stdout lines)."""
    proc = ctx.spawn([binary] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=timeout)
    eq(proc.returncode, 0, f"go client {args[0]} exit status ({err.decode(errors='replace')[-500:]})")
    return proc.pid, out.decode().split()


def https_curl(ctx, port, paths):
    pid, r = curl(ctx, ["-k", "--http1.1"] + [a for p in paths for a in ("-o", "/dev/null", f"https://127.0.0.1:{port}{p}")])
    eq(r.returncode, 0, f"curl exit status ({r.stderr.decode(errors='replace').strip()})")
    return pid


def summary_of(spans):
    return [(s["kind"], s["attrs"].get("http.request.method"), s["attrs"].get("url.path"),
             s["attrs"].get("http.response.status_code"), s["attrs"].get("url.scheme")) for s in spans]


PATHS = ["/go/a", "/missing", "/go/b"]
EXPECTED = [("GET", "/go/a", "200"), ("GET", "/missing", "404"), ("GET", "/go/b", "200")]


@case(timeout=300)
def go_tls_server_curl_and_client_nginx(ctx):
    """A Go HTTPS server hit by curl: three server spans with method, path, status and https,
    each the child of curl's client span; a Go client calling nginx over TLS: three client spans,
    each the parent of nginx's server span."""
    binary = go_binary()
    nginx_port, workers = start_nginx_tls(ctx)
    os.makedirs(ctx.path("www", "go"))  # nginx serves ctx.tmp/www: /go/a and /go/b, /missing is not there
    for name in ("a", "b"):
        with open(ctx.path("www", "go", name), "w") as f:
            f.write(f"nginx {name}\n")
    go_port, server = start_go_server(ctx, binary)  # before weft: hooked when weft starts
    out = ctx.path("traces.jsonl")
    start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    curl_pid = https_curl(ctx, go_port, PATHS)
    client_pid, statuses = go_client(ctx, binary, ["get"] + [f"https://127.0.0.1:{nginx_port}{p}" for p in PATHS])
    eq(statuses, ["200", "404", "200"], "statuses the Go client read from nginx")

    def spans(port):
        return sorted((s for s in otlp_spans(out) if s["attrs"].get("server.port") == str(port)),
                      key=lambda s: int(s["startTimeUnixNano"]))
    wait_until(lambda: len(spans(go_port)) >= 6 and len(spans(nginx_port)) >= 6, 20,
               "6 spans on each TLS port (client and server of three requests)")
    for port, client, server_pids, what in ((go_port, curl_pid, {server.pid}, "curl -> Go server"),
                                            (nginx_port, client_pid, set(workers), "Go client -> nginx")):
        got = spans(port)
        servers = [s for s in got if s["pid"] in server_pids]
        clients = [s for s in got if s["pid"] == client]
        eq(summary_of(servers), [(2,) + e + ("https",) for e in EXPECTED], f"{what}: server spans")
        eq(summary_of(clients), [(3,) + e + ("https",) for e in EXPECTED], f"{what}: client spans")
        for c, s in zip(clients, servers):
            eq(s.get("parentSpanId"), c["spanId"], f"{what}: the server span of {c['attrs']['url.path']} is "
                                                  "the child of its client span")
            eq(s["traceId"], c["traceId"], f"{what}: one trace per request")
        eq(len(got), 6, f"{what}: spans on the port")


@case(timeout=300)
def go_tls_client_to_go_server_stitched(ctx):
    """A Go client and a Go server on loopback: one trace per request, the server span the
    child of the client span (same-node evidence: the TCP sequence numbers read at each call,
    which weft has for Go's Write and for a Read that starts on an empty buffer)."""
    binary = go_binary()
    port, server = start_go_server(ctx, binary)
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    client_pid, statuses = go_client(ctx, binary, ["get"] + [f"https://127.0.0.1:{port}{p}" for p in PATHS])
    eq(statuses, ["200", "404", "200"], "statuses the Go client read")

    def spans():
        return sorted((s for s in otlp_spans(out) if s["attrs"].get("server.port") == str(port)),
                      key=lambda s: int(s["startTimeUnixNano"]))
    wait_until(lambda: len(spans()) >= 6, 20, "6 spans of the Go client's requests")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    clients = [s for s in got if s["pid"] == client_pid]
    servers = [s for s in got if s["pid"] == server.pid]
    eq(summary_of(clients), [(3,) + e + ("https",) for e in EXPECTED], "Go client spans")
    eq(summary_of(servers), [(2,) + e + ("https",) for e in EXPECTED], "Go server spans")
    for c, s in zip(clients, servers):
        eq(s.get("parentSpanId"), c["spanId"], f"parent of the Go server's {s['attrs']['url.path']}")
        eq(s["traceId"], c["traceId"], "one trace per request")
    summary = harness.parse_run_summary(weft.stderr_lines)
    check(summary.get("same-node", 0) >= 3, f"same-node links ({summary})")


@case(timeout=300)
def go_tls_executable_started_after_weft_traced_within_a_second(ctx):
    """A Go executable file no process ran when weft started (a fresh copy: another inode) is
    read and hooked from its process's exec: every request it makes from one second after its
    start on is traced."""
    port, server = start_go_server(ctx, go_binary())
    os.makedirs(ctx.path("fresh"))
    fresh = ctx.path("fresh", "gotls")
    shutil.copy(go_binary(), fresh)
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    pid, out = go_client(ctx, fresh, ["paced", f"https://127.0.0.1:{port}", "20", "100"])
    made = {f"/paced/{n}": float(at) for n, at, status in zip(out[0::3], out[1::3], out[2::3])}
    wanted = {t for t, at in made.items() if at >= 1.0}
    check(len(wanted) >= 5, f"requests made after the first second: {len(wanted)} ({made})")

    def traced():
        return {x["target"] for x in http_of(exchanges_json(weft), pid=pid, side="client")}
    try:
        wait_until(lambda: wanted <= traced(), 15, "the fresh executable's requests after its first second")
    finally:
        weft.stop()
    got = traced()
    first = min((made[t] for t in got), default=None)
    print(f"    first traced request of the fresh executable: {first} s after its start; "
          f"{len(got)} of {len(made)} requests traced")


LOAD_TARGET = re.compile(r"^/load/(\d+)/(\d+)$")


def check_sides(xs, pid, side, conns, per_conn):
    """Every request once on this side, and each connection carrying one goroutine's requests."""
    mine = [x for x in xs if x["pid"] == pid and x["side"] == side]
    targets = sorted(x["target"] for x in mine)
    want = sorted(f"/load/{i}/{n}" for i in range(conns) for n in range(per_conn))
    missing = sorted(set(want) - set(targets))
    dups = sorted({t for t in targets if targets.count(t) > 1})
    check(not missing and not dups and len(targets) == len(want),
          f"{side} exchanges of pid {pid}: {len(targets)} of {len(want)}; missing {missing[:10]}; "
          f"more than once {dups[:10]}")
    check(all(x["status"] == 200 and x["method"] == "GET" for x in mine), f"{side}: every exchange GET -> 200")
    by_conn = defaultdict(set)
    for x in mine:
        by_conn[x["cookie"]].add(LOAD_TARGET.match(x["target"]).group(1))
    mixed = {c: g for c, g in by_conn.items() if len(g) != 1}
    check(not mixed, f"{side}: connections carrying the requests of several goroutines (misattributed): {mixed}")
    eq(len(by_conn), conns, f"{side}: connections")


@case(timeout=300)
def go_tls_concurrent_goroutines_each_exchange_once(ctx):
    """20 goroutines, each on its own TLS connection, 10 requests each, against the Go server
    (whose goroutines park in the netpoller and resume on other threads): 200 client and 200
    server exchanges, each once, each on the connection its goroutine used."""
    binary = go_binary()
    port, server = start_go_server(ctx, binary)
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    conns, per_conn = 20, 10
    client_pid, lines = go_client(ctx, binary, ["load", f"https://127.0.0.1:{port}", str(conns), str(per_conn)])
    eq(lines, ["done"], "the load client finished")
    total = conns * per_conn

    def count(pid, side):
        return len(http_of(exchanges_json(weft), pid=pid, side=side))
    wait_until(lambda: count(client_pid, "client") >= total and count(server.pid, "server") >= total, 30,
               f"{total} client and {total} server exchanges")
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft))
    check_sides(xs, client_pid, "client", conns, per_conn)
    check_sides(xs, server.pid, "server", conns, per_conn)
    calls = tls_call_counts(weft)
    eq((calls["go_not_tcp"], calls["go_no_socket"], calls["go_untraceable"]), (0, 0, 0),
       f"Go calls weft could not tie to a socket ({calls})")


@case(timeout=300)
def go_tls_without_dwarf_named_and_counted(ctx):
    """A Go server built with -ldflags=-w has no DWARF, so weft cannot know where crypto/tls
    keeps its connection: `weft doctor` names the executable and why, its calls are counted
    (go_untraceable) and none of its exchanges is reported (curl's own end still is)."""
    binary = go_binary("-ldflags=-w")
    port, server = start_go_server(ctx, binary)
    r = run([harness.WEFT, "doctor"], timeout=60)
    text = r.stdout.decode(errors="replace")
    lines = [line for line in text.splitlines() if binary in line]
    check(lines, f"doctor names {binary}; it printed:\n{text}")
    check(lines[0].strip().startswith("NOT HOOKED") and "no DWARF" in lines[0] and "-ldflags=-w" in lines[0]
          and "1 process(es)" in lines[0], f"doctor's line for the -w build: {lines[0]}")
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    curl_pid = https_curl(ctx, port, PATHS)
    wait_until(lambda: len(http_of(exchanges_json(weft), pid=curl_pid)) >= 3, 20, "curl's 3 exchanges")
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft))
    eq([x for x in xs if x["pid"] == server.pid], [], "exchanges of the server built without DWARF")
    calls = tls_call_counts(weft)
    check(calls["go_untraceable"] >= 6, f"the server's 3 reads and 3 writes counted as go_untraceable ({calls})")


@case(timeout=300)
def go_tls_pie_and_connection_older_than_weft(ctx):
    """A position-independent Go server and client (-buildmode=pie: the itab is checked at its
    load address, which the probed address gives). A connection made before weft started is
    never reported at either end (weft cannot know how much plaintext went by: its positions
    would be wrong, and a call in flight at start would pair wrong messages), and counted as
    go_mid_stream; a connection made after the start is traced at both ends."""
    binary = go_binary("-buildmode=pie")
    port, server = start_go_server(ctx, binary)
    old = ctx.spawn([binary, "lines", f"https://127.0.0.1:{port}"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def ask(path, status):
        old.stdin.write(f"{path}\n".encode())
        old.stdin.flush()
        eq(old.stdout.readline().decode().strip(), status, f"status of {path} on the old connection")
    ask("/old/before", "200")
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    ask("/old/after", "200")
    ask("/missing", "404")
    new_pid, statuses = go_client(ctx, binary, ["get", f"https://127.0.0.1:{port}/new/a",
                                                f"https://127.0.0.1:{port}/missing"])
    eq(statuses, ["200", "404"], "statuses on the new connection")
    wait_until(lambda: len(http_of(exchanges_json(weft))) >= 4, 20, "4 exchanges of the new connection")
    ask("/old/last", "200")
    old.stdin.close()
    old.wait(timeout=20)
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft))
    eq(sorted((x["side"], x["pid"], x["target"], x["status"]) for x in xs),
       sorted([("client", new_pid, "/new/a", 200), ("client", new_pid, "/missing", 404),
               ("server", server.pid, "/new/a", 200), ("server", server.pid, "/missing", 404)]),
       f"exchanges (none of the old connection):\n    {exchange_listing(xs)}")
    calls = tls_call_counts(weft)
    check(calls["go_mid_stream"] >= 6, f"the old connection's calls counted as go_mid_stream ({calls})")
