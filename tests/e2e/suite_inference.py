"""Thread-per-request inference against runtimes that break its premise (issue 9): event loops
(Node, asyncio, an nginx worker) serve many requests on one thread and make calls outside any
request; Go moves goroutines between threads. And against the servers it is for (a Python
threading server, a Java thread pool, Apache's event MPM with mod_proxy), where every call must
stay linked.

Each case drives at least 100 requests through real services and compares the parent weft
gives every client span with the truth carried in the paths: a call made for request n has
n in its path, a call made outside any request (a timer, a background thread, an upstream call
for a TLS request whose plaintext weft never sees) has no parent at all. It prints

    inference NAME: W wrong, K kept, L left out of N calls made for requests; ...

and asserts W == 0 (a wrong parent is worse than none), and K == N where the link is provable
(thread per request). Services live in tests/e2e/inference/.
"""
import glob
import http.client
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from harness import (TestFailure, case, check, children_of, eq, free_port, read_comm, run,
                     stop_process, wait_listening, wait_until)
from peers import CURL, apache_conf, curl, nginx_conf, read_line, start_apache, start_nginx
# Spans carry their resource's process.pid: an nginx worker's environment is overwritten by
# its process title, so weft names it after its executable and the tests tell it apart by pid.
from suite_tracing import otlp_spans, run_weft

HERE = os.path.dirname(os.path.abspath(__file__))
INFERENCE_DIR = os.path.join(HERE, "inference")
BACKEND = os.path.join(INFERENCE_DIR, "backend.py")
# Go's build cache outlives a test run (a cold build of net/http takes ~1 min on 2 cores).
GO_CACHE = "/tmp/weft-e2e-go-cache"


# ---------------------------------------------------------------------------------------------
# Services and load


def service_env(name):
    """weft names a process's spans after the OTEL_SERVICE_NAME in its environment."""
    return {**os.environ, "OTEL_SERVICE_NAME": name}


def start_backend(ctx, name="inf-backend", announce=False, slow=0.5):
    port = free_port()
    argv = [sys.executable, "-u", BACKEND, str(port), "--slow", str(slow)]
    if announce:
        argv.append("--announce")
    proc = ctx.spawn(argv, env=service_env(name), stdout=subprocess.PIPE if announce else subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    return port, proc


def get_all(port, paths, concurrency, timeout=60.0):
    """GETs every path on 127.0.0.1:port from `concurrency` threads, each with one keep-alive
    connection; fails unless every answer is a 200."""
    work = queue.Queue()
    for p in paths:
        work.put(p)
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            while True:
                try:
                    path = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        errors.append(f"{path}: status {response.status}")
                except (OSError, http.client.HTTPException) as e:
                    errors.append(f"{path}: {e!r}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    check(not any(t.is_alive() for t in threads), f"{len(paths)} requests did not finish within {timeout}s")
    eq(errors[:5], [], "failed requests")


# ---------------------------------------------------------------------------------------------
# Measuring links against the truth


def links_summary(weft):
    """weft's own link counters from its summary line, for the report (absent: empty)."""
    for line in weft.stderr_lines:
        if "links:" in line:
            counts = {k: v for k, v in re.findall(r"([a-z-]+)=(\d+)", line)
                      if k in ("inferred", "ambiguous", "concurrent-requests", "thread-hopping",
                               "opaque-server-traffic", "calls-outside-requests", "event-loop-runtime")
                      and (v != "0" or k == "inferred")}
            if counts:
                return " (weft: " + " ".join(f"{k}={v}" for k, v in counts.items()) + ")"
    return ""


def span_path(s):
    path = s["attrs"].get("url.path")
    return path if path is not None else s["name"]


def measure(name, spans, service, truth, weft=None):
    """Classifies the client spans of `service` (a service name, or a predicate on a span).
    truth(path) says what a call is: ("request",
    path of the server span it was made for), ("outside", None) for a call made for no request
    this service serves, or None (not one of the test's calls). Prints the scenario's line and
    returns the counts."""
    by_id = {s["spanId"]: s for s in spans}
    mine = service if callable(service) else (lambda s: s["service"] == service)
    r = {"wrong": [], "kept": 0, "left_out": 0, "calls": 0, "outside": 0, "request_paths": [],
         "outside_paths": []}
    for s in spans:
        if s["kind"] != 3 or not mine(s):
            continue
        path = span_path(s)
        what = truth(path)
        if what is None:
            continue
        kind, expected = what
        parent_id = s.get("parentSpanId") or ""
        parent = by_id.get(parent_id)
        if parent is None:
            got = f"a parent not exported ({parent_id})" if parent_id else None
        else:
            kinds = {1: "internal", 2: "server", 3: "client"}
            got = f"{parent['service']} {kinds.get(parent['kind'], parent['kind'])} {span_path(parent)}"
        if kind == "outside":
            r["outside"] += 1
            r["outside_paths"].append(path)
            if got is not None:
                r["wrong"].append(f"{path} (made outside any request) under {got}")
            continue
        r["calls"] += 1
        r["request_paths"].append(path)
        if got is None:
            r["left_out"] += 1
        elif parent is not None and mine(parent) and parent["kind"] == 2 \
                and span_path(parent) == expected:
            r["kept"] += 1
        else:
            r["wrong"].append(f"{path} (made for {expected}) under {got}")
    line = (f"    inference {name}: {len(r['wrong'])} wrong, {r['kept']} kept, {r['left_out']} left out of "
            f"{r['calls']} calls made for requests")
    if r["outside"]:
        outside_wrong = sum(1 for w in r["wrong"] if "outside any request" in w)
        line += f"; {outside_wrong} of {r['outside']} calls made outside requests given a parent"
    if weft is not None:
        line += links_summary(weft)
    print(line, flush=True)
    r["services"] = sorted({(s["service"], s["pid"]) for s in spans})[:12]
    return r


def expect(r, request_paths, all_kept=False, min_outside=0):
    """The assertions every case shares: no wrong parent; every call the test caused has its
    span (so the counts mean something); all kept where thread-per-request proves the link."""
    check(not r["wrong"], f"{len(r['wrong'])} client spans under the wrong parent, e.g.:\n    " +
          "\n    ".join(r["wrong"][:8]))
    missing = sorted(set(request_paths) - set(r["request_paths"]))
    check(not missing, f"weft exported no client span for {len(missing)} of the {len(request_paths)} calls made "
                       f"for requests, e.g. {missing[:5]}; services seen: {r['services']}")
    check(r["outside"] >= min_outside, f"only {r['outside']} client spans of calls made outside requests, "
                                       f"expected at least {min_outside}")
    if all_kept:
        check(r["kept"] == r["calls"], f"thread per request: every call must hang under its request; "
                                       f"{r['left_out']} of {r['calls']} left out")


def collect(weft, out):
    weft.stop(timeout=15)
    weft.expect_clean_exit()
    return otlp_spans(out)


def path_truth(request_prefix, server_prefix, outside_prefix=None):
    """Truth from paths: a call to request_prefix + rest was made for the server request
    server_prefix + rest; a call to outside_prefix... was made for no request."""
    def truth(path):
        if path.startswith(request_prefix):
            return "request", server_prefix + path[len(request_prefix):]
        if outside_prefix and path.startswith(outside_prefix):
            return "outside", None
        return None
    return truth


# ---------------------------------------------------------------------------------------------
# 1. Node: a timer's calls while requests are in flight


@case(timeout=90)
def inference_node_timer(ctx):
    """A Node service whose setInterval calls the backend every 30 ms while slow requests
    (300-500 ms, then a call for the request) are served on the same thread: first one at a
    time (timer calls land inside a lone request), then ten at once."""
    check(shutil.which("node"), "node is not installed (scripts/setup.sh installs nodejs)")
    backend, _ = start_backend(ctx)
    # weft first: node's agent keeps its backend connections alive, and calls on a connection
    # opened before weft started get no span at all (it cannot tell which end is the client).
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    port = free_port()
    proc = ctx.spawn(["node", os.path.join(INFERENCE_DIR, "node_timer.js"), str(port), f"127.0.0.1:{backend}", "30"],
                     env=service_env("inf-node"), stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    sequential = [f"/slow/{n}" for n in range(20)]
    concurrent = [f"/slow/{n}" for n in range(20, 100)]
    get_all(port, sequential, concurrency=1)
    get_all(port, concurrent, concurrency=10)
    spans = collect(weft, out)
    r = measure("node_timer", spans, "inf-node", path_truth("/down/", "/slow/", "/timer/"), weft)
    expect(r, [p.replace("/slow/", "/down/") for p in sequential + concurrent], min_outside=100)


# ---------------------------------------------------------------------------------------------
# 2. nginx: upstream calls for TLS requests while a plaintext request is in flight


NGINX_PROXY_HTTP = """\
    keepalive_timeout 30s;
    upstream backend {{ server 127.0.0.1:{backend}; {upstream_keepalive} }}
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{ proxy_pass http://backend; {proxy_keepalive} }}
    }}
    server {{
        listen 127.0.0.1:{plain_port};
        location / {{ proxy_pass http://backend; {proxy_keepalive} }}
    }}
"""


def start_nginx_proxy(ctx, backend, tls_port, plain_port, upstream_keepalive):
    """nginx, one worker, proxying an HTTPS and a plaintext listener to the backend. Upstream
    calls: HTTP/1.0 on a new connection each (nginx's default), or with upstream_keepalive
    HTTP/1.1 on kept-alive connections that carry calls for both listeners in turn."""
    os.chmod(ctx.tmp, 0o755)  # the worker reads its temp paths; mkdtemp makes 0700
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-keyout", ctx.path("key.pem"), "-out", ctx.path("cert.pem")])
    eq(r.returncode, 0, f"openssl req exit status ({r.stderr.decode(errors='replace')[-300:]})")
    for f in ("key.pem", "cert.pem"):
        os.chmod(ctx.path(f), 0o644)
    return start_nginx(ctx, "nginx-proxy", nginx_conf(ctx.tmp, NGINX_PROXY_HTTP.format(
        tmp=ctx.tmp, backend=backend, tls_port=tls_port, plain_port=plain_port,
        upstream_keepalive="keepalive 4;" if upstream_keepalive else "",
        proxy_keepalive='proxy_http_version 1.1; proxy_set_header Connection "";' if upstream_keepalive else ""),
        worker_connections=256, main="env OTEL_SERVICE_NAME;\n"), (tls_port, plain_port), env=service_env("inf-nginx"))


def drive_tls_mix(ctx, backend_proc, tls_port, plain_port, rounds, per_round):
    """Per round, a slow plaintext request (/plain/slow/{i}) and, once the backend holds it,
    `per_round` HTTPS requests (/tls/fast/{..}) through the same nginx worker."""
    for i in range(rounds):
        slow = ctx.spawn([CURL, "--silent", "--show-error", "--max-time", "10", "-o", "/dev/null",
                          "-w", "%{http_code}", f"http://127.0.0.1:{plain_port}/plain/slow/{i}"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # The backend has the slow request: nginx has read it and is waiting for the answer.
        eq(read_line(backend_proc, timeout=10, what=f"the backend's 'got' line for round {i}"),
           f"got /plain/slow/{i}", "the slow request the backend received")
        urls = [f"https://127.0.0.1:{tls_port}/tls/fast/{i * per_round + k}" for k in range(per_round)]
        _, r = curl(ctx, ["-k"] + [a for u in urls for a in ("-o", "/dev/null", u)], timeout=20)
        eq(r.returncode, 0, f"HTTPS curl exit status ({r.stderr.decode(errors='replace').strip()})")
        try:
            status, err = slow.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"the slow plaintext request {i} did not finish within 10s")
        eq(status.decode(), "200", f"status of the slow plaintext request {i} ({err.decode(errors='replace')})")


def nginx_tls_mix(ctx, name, upstream_keepalive):
    """One nginx worker: while a slow plaintext request (/plain/slow/{i}, 0.5 s at the backend)
    is in flight, five HTTPS requests (/tls/fast/{..}) pass through the same worker. weft cannot
    read the HTTPS requests, so the worker's upstream calls for them belong to no server span it
    can see; the one for the plaintext request belongs to that request."""
    backend, backend_proc = start_backend(ctx, announce=True)
    tls_port, plain_port = free_port(), free_port()
    workers = start_nginx_proxy(ctx, backend, tls_port, plain_port, upstream_keepalive)
    eq(len(workers), 1, "nginx workers")
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    rounds, per_round = 25, 5
    drive_tls_mix(ctx, backend_proc, tls_port, plain_port, rounds, per_round)
    spans = collect(weft, out)
    r = measure(name, spans, lambda s: s["pid"] in workers, path_truth("/plain/", "/plain/", "/tls/"), weft)
    expect(r, [f"/plain/slow/{i}" for i in range(rounds)], min_outside=rounds * per_round)


@case(timeout=90)
def inference_nginx_tls_mix(ctx):
    nginx_tls_mix(ctx, "nginx_tls_mix", upstream_keepalive=False)


@case(timeout=90)
def inference_nginx_tls_mix_upstream_keepalive(ctx):
    """The same, with kept-alive upstream connections: one connection carries calls made for
    plaintext and for TLS requests in turn."""
    nginx_tls_mix(ctx, "nginx_tls_mix_upstream_keepalive", upstream_keepalive=True)


# ---------------------------------------------------------------------------------------------
# 3. Go: goroutines move between threads


def find_go():
    found = shutil.which("go")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/go-*/bin/go"),
                        key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/")[3])])
    check(candidates, "Go is not installed (scripts/setup.sh installs golang-go from bookworm-backports)")
    return candidates[-1]


def build_go(ctx):
    """Builds tests/e2e/inference/go offline (no dependencies) into the test's temp dir."""
    binary = ctx.path("inference-go")
    env = {**os.environ, "GOCACHE": os.path.join(GO_CACHE, "build"), "GOPATH": os.path.join(GO_CACHE, "path"),
           "GOFLAGS": "-mod=mod", "GOPROXY": "off", "GOTOOLCHAIN": "local", "GOTELEMETRY": "off",
           "CGO_ENABLED": "0"}
    r = run([find_go(), "build", "-o", binary, "."], timeout=240, cwd=os.path.join(INFERENCE_DIR, "go"), env=env)
    eq(r.returncode, 0, f"go build exit status ({r.stderr.decode(errors='replace')[-600:]})")
    return binary


@case(timeout=300)
def inference_go_chain(ctx):
    """A Go net/http front calling a Go back inside its handler, ten clients at once: the
    runtime reads a request on one thread and may write the call on another, which may be in
    the middle of another request."""
    binary = build_go(ctx)
    back, front = free_port(), free_port()
    proc = ctx.spawn([binary, "back", str(back)], env=service_env("inf-go-back"), stdout=subprocess.DEVNULL)
    wait_listening(back, proc=proc)
    proc = ctx.spawn([binary, "front", str(front), f"127.0.0.1:{back}"], env=service_env("inf-go-front"),
                     stdout=subprocess.DEVNULL)
    wait_listening(front, proc=proc)
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    paths = [f"/front/{n}" for n in range(400)]
    get_all(front, paths, concurrency=10)
    spans = collect(weft, out)
    r = measure("go_chain", spans, "inf-go-front", path_truth("/down/", "/front/"), weft)
    expect(r, [p.replace("/front/", "/down/") for p in paths])


# ---------------------------------------------------------------------------------------------
# 4. Python asyncio: one event loop, ten requests at once


@case(timeout=90)
def inference_python_asyncio(ctx):
    """An asyncio service (stdlib streams) serving ten requests at once, each awaiting its own
    call to the backend on the loop's one thread; then twenty one at a time."""
    backend, _ = start_backend(ctx)
    port = free_port()
    proc = ctx.spawn([sys.executable, os.path.join(INFERENCE_DIR, "asyncio_service.py"), str(port),
                      f"127.0.0.1:{backend}"], env=service_env("inf-asyncio"), stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    paths = [f"/req/{n}" for n in range(200)]
    get_all(port, paths[:180], concurrency=10)
    get_all(port, paths[180:], concurrency=1)  # and one at a time: a lone request on the loop
    spans = collect(weft, out)
    r = measure("python_asyncio", spans, "inf-asyncio", path_truth("/down/req/", "/req/"), weft)
    expect(r, [f"/down{p}" for p in paths])


# ---------------------------------------------------------------------------------------------
# 5. Java: a fixed thread pool, the case inference is for


@case(timeout=120)
def inference_java_threadpool(ctx):
    """com.sun.net.httpserver with a fixed pool of 8 threads, each request read, forwarded with
    HttpURLConnection and answered on one pool thread: every call must hang under its request."""
    java = shutil.which("java")
    check(java, "java is not installed (scripts/setup.sh installs openjdk-17-jdk-headless)")
    backend, _ = start_backend(ctx)
    port = free_port()
    log = open(ctx.path("java.out"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([java, os.path.join(INFERENCE_DIR, "Service.java"), str(port), f"127.0.0.1:{backend}"],
                     env=service_env("inf-java"), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, timeout=60, proc=proc)
    except TestFailure as e:
        with open(log.name, "rb") as f:
            raise TestFailure(f"{e}; java said: {f.read()[-800:].decode(errors='replace')}")
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    paths = [f"/req/{n}" for n in range(200)]
    get_all(port, paths, concurrency=8)
    spans = collect(weft, out)
    r = measure("java_threadpool", spans, "inf-java", path_truth("/down/req/", "/req/"), weft)
    expect(r, [f"/down{p}" for p in paths], all_kept=True)


# ---------------------------------------------------------------------------------------------
# 6. Python threading server with a background thread making its own calls


@case(timeout=90)
def inference_python_threaded_kept(ctx):
    """tests/e2e/chain_service.py (thread per request, keep-alive to the next tier) plus a
    background thread calling the backend every 20 ms: every call made for a request hangs
    under it, no background call has a parent."""
    backend, _ = start_backend(ctx)
    port = free_port()
    proc = ctx.spawn([sys.executable, os.path.join(INFERENCE_DIR, "threaded_service.py"), str(port),
                      f"127.0.0.1:{backend}", "0.02", "--keepalive"],
                     env=service_env("inf-threaded"), stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    paths = [f"/req/{n}" for n in range(200)]
    get_all(port, paths, concurrency=8)
    get_all(port, [f"/req/{n}" for n in range(200, 220)], concurrency=1)  # and one at a time
    spans = collect(weft, out)
    r = measure("python_threaded_kept", spans, "inf-threaded", path_truth("/hop/req/", "/req/", "/bg/"), weft)
    expect(r, [f"/hop/req/{n}" for n in range(220)], all_kept=True, min_outside=20)


# ---------------------------------------------------------------------------------------------
# 7. Apache httpd with the event MPM (Debian's default) proxying to the backend


APACHE_PROXY_CONF = """\
# Debian's mods-available/mpm_event.conf
StartServers 2
MinSpareThreads 25
MaxSpareThreads 75
ThreadLimit 64
ThreadsPerChild 25
MaxRequestWorkers 150
MaxConnectionsPerChild 0
KeepAlive On
ProxyPass / http://127.0.0.1:{backend}/
"""


def start_apache_proxy(ctx, backend, port):
    """Debian's apache2 in the foreground with its default MPM (event: a listener thread and a
    pool of worker threads per child process; a worker reads a request, makes mod_proxy's call
    and writes the answer), proxying everything to the backend. Returns the child pids."""
    conf = apache_conf(ctx.tmp, port, ["proxy", "proxy_http"], APACHE_PROXY_CONF.format(backend=backend))
    return start_apache(ctx, conf, port, env=service_env("inf-apache"))


@case(timeout=120)
def inference_apache_mod_proxy(ctx):
    """Apache (event MPM, Debian's default) with mod_proxy_http in front of the backend, ten
    clients at once on keep-alive connections. The event MPM hands a kept-alive connection's
    next request to whichever worker thread is free, and mod_proxy's pooled backend connections
    pass between threads too, but each request is read, proxied and answered on one worker
    thread, one request at a time: thread per request, so every upstream call must hang under
    its request. Apache keeps its environment, so weft names its spans after OTEL_SERVICE_NAME."""
    backend, _ = start_backend(ctx)
    port = free_port()
    start_apache_proxy(ctx, backend, port)
    out = ctx.path("traces.jsonl")
    weft = run_weft(ctx, out)
    paths = [f"/front/{n}" for n in range(300)]
    get_all(port, paths, concurrency=10)
    spans = collect(weft, out)
    r = measure("apache_mod_proxy", spans, "inf-apache", path_truth("/front/", "/front/"), weft)
    expect(r, paths, all_kept=True)
