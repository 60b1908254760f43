"""`weft run` under abuse while real HTTP traffic (nginx, curl, wrk) flows on loopback: a ring
buffer too small for a burst, an OTLP backend that is down and comes up later, and a flood of
random bytes on many connections. Each time weft keeps running and exits 0, counts what it lost
or could not parse (summary lines and /metrics), and traces requests made during and after the
trouble: one server span and one client span per request, the client the server's parent.

Run alone: python3 tests/e2e/run.py --weft build/weft -k robustness_"""
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import TestFailure, case, check, eq, free_port, wait_until
from peers import Nginx, curl, python_peer, read_line, wrk_completed
from suite_metrics import samples, scrape, total
from suite_otlp import Receiver, accepted, attr_map, base_args, flat_spans, start_run
from suite_tracing import otlp_spans

MARKERS = 20  # requests whose spans are checked one by one, per phase

RUN_LOSSES = re.compile(r"^weft run: kernel losses: (.*); stream gaps=(\d+) ")
RUN_CONNECTIONS = re.compile(r"^weft run: connections: (\d+) tracked, (\d+) undetected, (\d+) detected after a "
                             r"miss, (\d+) evicted, (\d+) sequence mismatches; parse_errors=(\d+) unmatched=(\d+); "
                             r"tls: (\d+) connections read as plaintext, (\d+) ciphertext bytes not parsed; "
                             r"(\d+) body bytes left uncopied by (\d+) skip verdicts$")


class Site:
    """nginx (one worker) serving marker pages, a page for load, and a 16 KiB file whose
    responses fill a ring buffer quickly."""

    def __init__(self, ctx):
        self.root = ctx.path("www")
        os.makedirs(self.root)
        with open(os.path.join(self.root, "page.txt"), "w") as f:
            f.write("page\n")
        with open(os.path.join(self.root, "big.bin"), "wb") as f:
            f.write(os.urandom(16 << 10))
        self.port = free_port()
        self.nginx = Nginx(ctx, self.root, self.port)

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def markers(self, phase, count=MARKERS):
        """`count` pages with distinct paths, so each request's spans can be told apart."""
        paths = []
        for n in range(count):
            name = f"{phase}-{n}.txt"
            with open(os.path.join(self.root, name), "w") as f:
                f.write(f"{phase} {n}\n")
            paths.append("/" + name)
        return paths


def request_all(ctx, site, paths, rate=None):
    """One curl process fetching `paths` over one kept-alive connection; returns its pid."""
    args = ["--fail"] + (["--rate", rate] if rate else [])
    for p in paths:
        args += ["-o", "/dev/null", site.url(p)]
    pid, r = curl(ctx, args, timeout=60)
    eq(r.returncode, 0, f"curl exit status ({r.stderr.decode(errors='replace').strip()[:200]})")
    return pid


def start_wrk(ctx, url, seconds, connections):
    check(shutil.which("wrk"), "wrk is missing (Debian package wrk; scripts/setup.sh installs it)")
    return ctx.spawn(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url], stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, stop_signal=signal.SIGINT)


def start_curl_load(ctx, site, count, rate):
    """Steady traffic: one curl process fetching /page.txt `count` times at `rate` per second
    over kept-alive connections, in the background."""
    return ctx.spawn(["curl", "--silent", "--show-error", "--fail", "--rate", f"{rate}/s",
                      site.url(f"/page.txt?n=[1-{count}]")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def metric(metrics_port, name, **labels):
    return total(samples(scrape(metrics_port)), name, **labels)


def alive(weft):
    check(weft.proc.poll() is None, f"weft exited with {weft.proc.returncode}; stderr ends with {weft.stderr_tail()}")


def run_counters(weft):
    """The summary's span equation (checked by harness.parse_run_summary), kernel losses by
    cause, and the connection line."""
    out = harness.parse_run_summary(weft.stderr_lines)
    for line in weft.stderr_lines:
        m = RUN_LOSSES.match(line)
        if m:
            out.update({k: int(v) for k, v in (item.split("=") for item in m.group(1).split())})
            out["gaps"] = int(m.group(2))
        m = RUN_CONNECTIONS.match(line)
        if m:
            keys = ("tracked", "undetected", "redetected", "evicted", "mismatches", "parse_errors", "unmatched",
                    "tls_connections", "superseded_bytes")
            out.update(zip(keys, map(int, m.groups())))
    check("ringbuf_full" in out and "undetected" in out,
          f"weft run printed no kernel-loss or connection line; stderr ends with: {weft.stderr_tail(10)}")
    return out


def stop_weft(weft):
    weft.stop(timeout=20)
    weft.expect_clean_exit()
    return run_counters(weft)


# Spans as (path, kind, trace id, span id, parent span id, server.port), from either output.


def file_spans(path):
    return [(s["attrs"].get("url.path"), s["kind"], s["traceId"], s["spanId"], s.get("parentSpanId", ""),
             int(s["attrs"].get("server.port", 0))) for s in otlp_spans(path)]


def receiver_spans(records):
    out = []
    for s, _, _, _ in flat_spans(accepted(records)):
        a = attr_map(s.get("attributes"))
        out.append((a.get("url.path", {}).get("stringValue"), s.get("kind"), s.get("traceId"), s.get("spanId"),
                    s.get("parentSpanId", ""), int(a.get("server.port", {}).get("intValue", 0))))
    return out


def pairs(spans, paths, port):
    """For each path: (server spans, client spans) of requests to `port`."""
    found = {p: ([], []) for p in paths}
    for s in spans:
        if s[0] in found and s[5] == port and s[1] in (2, 3):
            found[s[0]][0 if s[1] == 2 else 1].append(s)
    return found


def all_traced(spans, paths, port):
    return all(len(srv) >= 1 and len(cli) >= 1 for srv, cli in pairs(spans, paths, port).values())


def check_traced(spans, paths, port, what):
    """Each request of `paths` gave exactly one server span (nginx) and one client span (curl),
    the client the server's parent in one trace."""
    bad = []
    for path, (srv, cli) in pairs(spans, paths, port).items():
        if len(srv) != 1 or len(cli) != 1:
            bad.append(f"{path}: {len(srv)} server and {len(cli)} client spans")
        elif (srv[0][2], srv[0][4]) != (cli[0][2], cli[0][3]):
            bad.append(f"{path}: the server span is not the client span's child (server {srv[0]}, client {cli[0]})")
    check(not bad, f"requests {what} not traced as one client and one server span each (expected 1 and 1): " +
          "; ".join(bad[:6]) + (f" (+{len(bad) - 6} more)" if len(bad) > 6 else ""))


def wait_traced(weft, spans_of, paths, port, what, timeout):
    def done():
        alive(weft)
        return all_traced(spans_of(), paths, port)
    try:
        wait_until(done, timeout, f"the spans of the requests {what}", interval=0.2)
    except TestFailure as e:
        missing = [p for p, (s, c) in pairs(spans_of(), paths, port).items() if not s or not c]
        raise TestFailure(f"{e}: {len(missing)} of {len(paths)} requests without both spans ({missing[:5]}); "
                          f"weft stderr ends with {weft.stderr_tail()}")


# ---------------------------------------------------------------------------------------------


@case(timeout=150)
def robustness_ringbuf_overflow_then_traced(ctx):
    """A 64 KiB ring buffer under wrk (32 connections fetching 16 KiB): records are lost and
    counted (ringbuf_full on /metrics while weft runs, and in the summary), the span counters
    still add up, and once the burst stops every request is traced again."""
    site = Site(ctx)
    out = ctx.path("spans.jsonl")
    args, metrics_port = base_args(ctx, "--exporter", "otlp-file", "--output", out, "--ringbuf-bytes", "65536")
    weft = start_run(ctx, args)
    burst_requests = bursts = 0

    def lost():
        return metric(metrics_port, "weft_events_lost_total", cause="ringbuf_full")
    # A loaded machine may slow the burst enough for weft to keep up: burst again (at most 4).
    while bursts < 4:
        burst_requests += wrk_completed(start_wrk(ctx, site.url("/big.bin"), 3, 32), timeout=30)
        bursts += 1
        alive(weft)
        try:
            wait_until(lost, 3, "ringbuf_full losses on /metrics", interval=0.2)
            break
        except TestFailure:
            continue
    lost_live = lost()
    check(lost_live > 0, f"no ringbuf_full loss on /metrics after {bursts} bursts of {burst_requests} requests")
    # weft traces the whole machine: other traffic may still overflow so small a ring. A batch
    # during which no record was lost must be traced in full; one that saw losses is retried.
    for attempt in range(3):
        lost_before = lost()
        paths = site.markers(f"after{attempt}")
        curl_pid = request_all(ctx, site, paths)
        try:
            wait_traced(weft, lambda: file_spans(out), paths, site.port, "after the burst", timeout=10)
            break
        except TestFailure:
            if lost() == lost_before or attempt == 2:
                raise
    counters = stop_weft(weft)
    spans = file_spans(out)
    check_traced(spans, paths, site.port, "after the burst")
    check(counters["ringbuf_full"] >= lost_live,
          f"summary ringbuf_full {counters['ringbuf_full']} below the {lost_live} /metrics showed earlier")
    eq(counters["exported"], len(spans), f"spans the summary calls exported vs spans in the file ({counters})")
    burst_servers = sum(1 for s in spans if s[0] == "/big.bin" and s[1] == 2)
    print(f"    {ctx.name}: {bursts} burst(s), {burst_requests} requests, {burst_servers} server spans of them; "
          f"ringbuf_full={counters['ringbuf_full']} gaps={counters['gaps']}; after the burst {len(paths)} of "
          f"{len(paths)} requests traced (curl pid {curl_pid}, batch {attempt + 1})")


@case(timeout=150)
def robustness_exporter_outage_under_traffic(ctx):
    """Nothing listens on the OTLP endpoint while curl keeps loading nginx: weft keeps running,
    counts failed attempts (on /metrics as it happens, and in the summary) and bounds its queue;
    the receiver comes up on that port mid-traffic and everything queued, plus requests made
    once it is back, is delivered."""
    site = Site(ctx)
    port = free_port()
    args, metrics_port = base_args(ctx, "--otlp-endpoint", f"http://127.0.0.1:{port}",
                                   "--export-queue-spans", "2000")
    weft = start_run(ctx, args)
    load = start_curl_load(ctx, site, 3000, 400)  # about 7.5 s of traffic, through the outage and after
    wait_until(lambda: metric(metrics_port, "weft_export_failures_total") > 0, 15,
               "failed export attempts on /metrics", interval=0.2)
    down = site.markers("down", 10)
    request_all(ctx, site, down)
    wait_until(lambda: metric(metrics_port, "weft_spans_dropped_total", reason="queue_full") > 0, 15,
               "spans dropped for a full queue while the backend is down", interval=0.2)
    check(load.poll() is None, "the load finished before the backend came up: the outage saw too little traffic")
    alive(weft)
    receiver = Receiver(ctx, http_port=port, grpc_port="off")
    up = time.monotonic()
    try:
        load.wait(timeout=30)
    except subprocess.TimeoutExpired:
        raise TestFailure("the curl load did not finish within 30 s")
    eq(load.returncode, 0, f"the curl load's exit status ({load.stderr.read().decode(errors='replace')[:200]})")
    back = site.markers("back")
    request_all(ctx, site, back)
    wait_traced(weft, lambda: receiver_spans(receiver.records()), back, site.port, "once the backend is back",
                timeout=20)
    delivered_after = time.monotonic() - up
    failures_live = metric(metrics_port, "weft_export_failures_total")
    counters = stop_weft(weft)
    receiver.stop()
    records = receiver.records()
    spans = receiver_spans(records)
    check_traced(spans, back, site.port, "once the backend is back")
    check(counters["failed_attempts"] >= failures_live > 0 and counters["retries"] > 0,
          f"failed attempts and retries in the summary ({counters}) vs {failures_live} on /metrics")
    check(counters["dropped_full"] > 0, f"no span dropped for a full queue in the summary: {counters}")
    eq(counters["exported"], len(spans), f"spans the summary calls exported vs spans the receiver accepted "
                                         f"({counters})")
    twice = [p for p, (s, c) in pairs(spans, down, site.port).items() if len(s) > 1 or len(c) > 1]
    eq(twice, [], "requests made during the outage delivered more than once")
    loaded = sum(1 for s in spans if s[0] == "/page.txt" and s[1] == 2)
    check(loaded > 0, "no span of the load reached the receiver")
    print(f"    {ctx.name}: {counters['failed_attempts']} failed attempts, {counters['retries']} retries, "
          f"{counters['dropped_full']} spans dropped for a full queue, {counters['exported']} exported "
          f"({loaded} server spans of the load); requests after recovery delivered {delivered_after:.1f} s "
          f"after the backend came up")


# Connections to a sink (and a tenth to nginx), each with 1-4 writes of random bytes, from
# `threads` threads for `seconds`; prints "started", then "done SINK NGINX" (connections made).
FLOOD = r'''
import os, random, socket, sys, threading, time
sink_port, nginx_port, seconds, threads = map(int, sys.argv[1:5])
counts = {"sink": 0, "nginx": 0}
lock = threading.Lock()
end = time.monotonic() + seconds
def one(n):
    target = "nginx" if n % 10 == 9 else "sink"
    s = socket.create_connection(("127.0.0.1", nginx_port if target == "nginx" else sink_port), timeout=5)
    try:
        for _ in range(random.randint(1, 4)):
            s.sendall(os.urandom(random.randint(1, 8192)))
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass  # nginx may reset a connection it answered 400
    finally:
        s.close()
    with lock:
        counts[target] += 1
def loop(k):
    n = k
    while time.monotonic() < end:
        one(n)
        n += threads
workers = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
for w in workers:
    w.start()
print("started", flush=True)
for w in workers:
    w.join()
print("done", counts["sink"], counts["nginx"], flush=True)
'''

# Accepts and reads every connection to EOF, answering nothing.
SINK = r'''
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(256)
print("listening", flush=True)
def drain(c):
    with c:
        while c.recv(65536):
            pass
while True:
    c, _ = ls.accept()
    threading.Thread(target=drain, args=(c,), daemon=True).start()
'''


@case(timeout=150)
def robustness_garbage_flood(ctx):
    """Random bytes on thousands of short connections (to a sink, and a tenth to nginx) while
    curl requests pages from nginx: weft keeps running, counts the garbage connections as
    undetected, makes no span of them, and traces every real request made during and after."""
    site = Site(ctx)
    sink_port = free_port()
    sink = python_peer(ctx, SINK, sink_port, label="sink")
    eq(read_line(sink, what="'listening'"), "listening", "the sink's first line")
    out = ctx.path("spans.jsonl")
    args, metrics_port = base_args(ctx, "--exporter", "otlp-file", "--output", out)
    weft = start_run(ctx, args)
    flood = python_peer(ctx, FLOOD, sink_port, site.port, 8, 8, label="flood")
    eq(read_line(flood, what="'started'"), "started", "the flood's first line")
    during = site.markers("during")
    request_all(ctx, site, during, rate="10/s")  # about 2 s, well inside the 8 s of flooding
    check(flood.poll() is None, "the flood ended before the requests made during it")
    line = read_line(flood, timeout=30, what="'done SINK NGINX'")
    m = re.fullmatch(r"done (\d+) (\d+)", line)
    check(m, f"the flood said {line!r}")
    to_sink, to_nginx = int(m.group(1)), int(m.group(2))
    alive(weft)
    after = site.markers("after")
    request_all(ctx, site, after)
    wait_traced(weft, lambda: file_spans(out), during + after, site.port, "during and after the flood", timeout=20)
    parse_errors_live = metric(metrics_port, "weft_parse_errors_total")
    counters = stop_weft(weft)
    spans = file_spans(out)
    check_traced(spans, during, site.port, "during the flood")
    check_traced(spans, after, site.port, "after the flood")
    eq([s for s in spans if s[5] == sink_port], [], "spans of the connections carrying random bytes to the sink")
    # Both ends of every connection to the sink carried bytes of no protocol.
    check(counters["undetected"] >= to_sink,
          f"{counters['undetected']} connections counted undetected, fewer than the {to_sink} to the sink")
    eq(counters["exported"], len(spans), f"spans the summary calls exported vs spans in the file ({counters})")
    print(f"    {ctx.name}: {to_sink} connections to the sink and {to_nginx} to nginx; undetected="
          f"{counters['undetected']} parse_errors={counters['parse_errors']} (/metrics {parse_errors_live}) "
          f"ringbuf_full={counters['ringbuf_full']}; {2 * len(during + after)} spans of real requests checked")
