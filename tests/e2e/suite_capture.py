"""Capture correctness against the real kernel: MSG_PEEK reads, weft inside a pid namespace,
a metrics listener on every address next to unrelated servers on its port in another network
namespace, and the ring buffer drained at exit (issue 10)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import harness
from harness import (TestFailure, case, check, check_contiguous, children_of, eq, free_port, of_kind, start_weft,
                     stream_payload, wait_listening, wait_until)
from peers import curl
from suite_exchanges import check_exchange, parse_exchanges, start_exchanges
from suite_otlp import Receiver, accepted, attr_map, check_no_self_spans, flat_spans
from suite_tracing import otlp_spans

HERE = os.path.dirname(os.path.abspath(__file__))

# One keep-alive connection at a time; every request is peeked at before it is read.
PEEK_SERVER = r'''
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
while True:
    conn, _ = srv.accept()
    buf = b""
    while True:
        peek = conn.recv(4, socket.MSG_PEEK)
        if not peek:
            break
        while b"\r\n\r\n" not in buf:
            more = conn.recv(65536)
            if not more:
                break
            buf += more
        if b"\r\n\r\n" not in buf:
            break
        buf = buf[buf.index(b"\r\n\r\n") + 4:]
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    conn.close()
'''

# Reads everything a connection sends; answers "done" after `total` bytes.
SINK_SERVER = r'''
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
total = int(sys.argv[2])
while True:
    conn, _ = srv.accept()
    got = 0
    while got < total:
        more = conn.recv(65536)
        if not more:
            break
        got += len(more)
    conn.sendall(b"done")
    conn.recv(1)
    conn.close()
'''


def spawn_script(ctx, source, *args):
    return ctx.spawn([sys.executable, "-c", source] + [str(a) for a in args], stdout=subprocess.DEVNULL)


def read_exactly(sock, n, timeout=10.0):
    sock.settimeout(timeout)
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        check(more, f"connection closed after {len(data)} of {n} bytes")
        data += more
    return data


@case(timeout=60)
def capture_msg_peek_not_consumed(ctx):
    """A server that recv(MSG_PEEK)s each request before reading it: the peeked bytes are not
    a read. Its receive stream holds each request once, at exact positions, and `weft
    exchanges` pairs exactly the three requests on both sides."""
    port = free_port()
    server = spawn_script(ctx, PEEK_SERVER, port)
    wait_listening(port, proc=server)
    events = start_weft(ctx, ["events", "--json", "--port", str(port)], label="events")
    exchanges = start_exchanges(ctx, port, "exchanges")
    requests = [f"GET /peek/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in range(3)]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for r in requests:
            s.sendall(r)
            read_exactly(s, len(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
        client_port = s.getsockname()[1]
    exchanges.stop()
    exchanges.expect_clean_exit()
    xs = parse_exchanges(exchanges.stdout_bytes())
    for x in xs:
        check_exchange(x)
    events.stop()
    events.expect_clean_exit()
    evs = events.events()
    accepted_conn = [e for e in of_kind(evs, "data") if e["role"] == "server" and e["remote"]["port"] == client_port]
    check(accepted_conn, f"no server-side data events for the connection from port {client_port}")
    cookie = accepted_conn[0]["cookie"]
    want = b"".join(requests)
    check_contiguous(evs, cookie, "recv", what="the peeking server's receive stream")
    eq(stream_payload(evs, cookie, "recv"), want, "the peeking server's receive stream (each request once)")
    recv_bytes = sum(e["bytes"] for e in of_kind(evs, "data", cookie=cookie, direction="recv"))
    eq(recv_bytes, len(want), "bytes the server read (peeks not counted)")
    servers = [x for x in xs if x["side"] == "server"]
    eq([(x["target"], x["request"]["stream_pos"]) for x in servers],
       [(f"/peek/{n}", sum(map(len, requests[:n]))) for n in range(3)],
       "server exchanges (target, request stream position)")
    clients = [x for x in xs if x["side"] == "client"]
    eq([(x["target"], x["status"]) for x in clients], [(f"/peek/{n}", 200) for n in range(3)],
       "client exchanges (target, status)")


def burst(port, writes, size):
    """`writes` separate small writes on one connection; returns when the server has all of them."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for n in range(writes):
        s.sendall(bytes([65 + n % 26]) * size)
    eq(read_exactly(s, 4), b"done", "the sink server's answer")
    return s


def check_burst(weft, client_sock, writes, size):
    evs = weft.events()
    port = client_sock.getsockname()[1]
    sends = [e for e in of_kind(evs, "data", direction="send") if e["local"]["port"] == port]
    eq((len(sends), sum(e["bytes"] for e in sends)), (writes, writes * size),
       "the burst's writes printed (records, bytes)")
    server_recv = [e for e in of_kind(evs, "data", direction="recv") if e["remote"]["port"] == port]
    eq(sum(e["bytes"] for e in server_recv), writes * size, "bytes the sink server read, as printed")


@case(timeout=60)
def capture_drain_on_sigint(ctx):
    """SIGINT right after a burst: every record of the burst is printed (they were in the ring
    buffer, written without a wakeup, when the signal cut the poll short)."""
    writes, size = 200, 16
    port = free_port()
    server = spawn_script(ctx, SINK_SERVER, port, writes * size)
    wait_listening(port, proc=server)
    for attempt in range(3):
        weft = start_weft(ctx, ["events", "--json", "--port", str(port)], label=f"events-{attempt}")
        time.sleep(0.2)
        sock = burst(port, writes, size)
        weft.stop(signal.SIGINT)
        weft.expect_clean_exit()
        check_burst(weft, sock, writes, size)
        sock.close()


@case(timeout=60)
def capture_drain_at_duration(ctx):
    """`weft events --duration 2` with a burst that ends right before it does: every record of
    the burst is printed."""
    writes, size = 200, 16
    port = free_port()
    server = spawn_script(ctx, SINK_SERVER, port, writes * size)
    wait_listening(port, proc=server)
    weft = start_weft(ctx, ["events", "--json", "--duration", "2", "--port", str(port)])
    started = time.monotonic()
    time.sleep(max(0.0, 1.9 - (time.monotonic() - started)))
    sock = burst(port, writes, size)
    eq(weft.wait_exit(10), 0, "weft's exit status at the end of --duration")
    check_burst(weft, sock, writes, size)
    sock.close()


@case(timeout=120)
def capture_pid_namespace_no_self_spans(ctx):
    """weft started in a new pid namespace (`unshare --pid --fork --mount-proc`), exporting OTLP
    while traffic flows: its own exports are no span (self-exclusion by the kernel's pid, not
    the namespace's)."""
    receiver = Receiver(ctx)
    metrics_port = free_port()
    www = ctx.path("www")
    os.makedirs(www)
    with open(os.path.join(www, "page.txt"), "w") as f:
        f.write("page\n")
    port = free_port()
    server = ctx.spawn([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", www],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, proc=server)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    weft = NamespacedWeft(ctx, ["run", "--otlp-endpoint", receiver.http_url, "--trace-wait", "0.3",
                                "--export-interval", "0.2", "--metrics-address", f"127.0.0.1:{metrics_port}"], env)
    weft.wait_capturing()
    for n in range(5):
        _, r = curl(ctx, ["-o", "/dev/null", f"http://127.0.0.1:{port}/page.txt"])
        eq(r.returncode, 0, "curl exit status")
        time.sleep(0.3)  # one export per request: weft's exports and the traffic interleave
    wait_until(lambda: any(attr_map(s.get("attributes")).get("server.port", {}).get("intValue") in (port, str(port))
                           for s, _, _, _ in flat_spans(accepted(receiver.records()))),
               20, "spans of the traffic at the receiver")
    time.sleep(1.5)  # exports of exports, if weft traced itself, arrive one export later
    weft.stop_inner()
    records = receiver.records()
    check(accepted(records), "the receiver accepted no trace export")
    check_no_self_spans(records, weft, [receiver], metrics_port)


class NamespacedWeft(harness.Weft):
    """weft under `unshare --pid --fork --mount-proc`, stopped by signalling weft itself (the
    host pid of unshare's child). --kill-child: if the test ends unshare, weft ends too."""

    def __init__(self, ctx, weft_args, env, label="unshare-run"):
        self.ctx = ctx
        self.args = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGINT", harness.WEFT] + list(weft_args)
        self.out_path = ctx.path(f"{label}.stdout")
        self._out = open(self.out_path, "wb")
        self.stderr_lines = []
        self._capturing = threading.Event()
        self._lock = threading.Lock()
        self.proc = ctx.spawn(self.args, stop_signal=signal.SIGTERM, stdout=self._out, stderr=subprocess.PIPE, env=env)
        ctx.on_cleanup(self._out.close)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.returncode = None
        self.stop_seconds = None

    def stop_inner(self, timeout=15.0):
        kids = children_of(self.proc.pid)
        check(kids, "unshare has no child process (weft)")
        os.kill(kids[0], signal.SIGINT)
        self.wait_exit(timeout)
        self.expect_clean_exit()


def make_netns(ctx, host_ip, ns_ip):
    """A network namespace joined to this one by a veth pair (/24); removed at cleanup."""
    name = f"weftcap{os.getpid() % 100000}"
    host_if, ns_if = f"wch{os.getpid() % 100000}", f"wcn{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
    steps = [["ip", "netns", "add", name],
             ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
             ["ip", "link", "set", ns_if, "netns", name],
             ["ip", "addr", "add", f"{host_ip}/24", "dev", host_if],
             ["ip", "link", "set", host_if, "up"],
             ["ip", "netns", "exec", name, "ip", "addr", "add", f"{ns_ip}/24", "dev", ns_if],
             ["ip", "netns", "exec", name, "ip", "link", "set", ns_if, "up"],
             ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]]

    def remove():
        subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", host_if], stderr=subprocess.DEVNULL)
    ctx.on_cleanup(remove)
    for argv in steps:
        r = harness.run(argv)
        eq(r.returncode, 0, f"{' '.join(argv)}: {r.stderr.decode(errors='replace').strip()}")
    return name


@case(timeout=120)
def capture_any_address_listener_other_netns(ctx):
    """weft's metrics listener on 0.0.0.0:P hides only connections to weft: an unrelated HTTP
    server on port P in another network namespace, reached from this one, is traced (client and
    server spans); a scrape of weft's own /metrics is not."""
    port = free_port()
    host_ip, ns_ip = "10.213.7.1", "10.213.7.2"
    ns = make_netns(ctx, host_ip, ns_ip)
    www = ctx.path("www")
    os.makedirs(www)
    with open(os.path.join(www, "page.txt"), "w") as f:
        f.write("page\n")
    server = ctx.spawn(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server", str(port), "--bind", ns_ip,
                        "--directory", www], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def server_up():
        check(server.poll() is None, f"the namespaced http.server exited with {server.returncode}")
        try:
            socket.create_connection((ns_ip, port), timeout=1).close()  # before weft starts: not seen
            return True
        except OSError:
            return False
    wait_until(server_up, 10, f"http.server on {ns_ip}:{port} in {ns}")
    out = ctx.path("spans.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "0.3",
                            "--metrics-address", f"0.0.0.0:{port}"], label="run")
    for _ in range(3):
        _, r = curl(ctx, ["-o", "/dev/null", f"http://{ns_ip}:{port}/page.txt"])
        eq(r.returncode, 0, f"curl to {ns_ip}:{port} ({r.stderr.decode(errors='replace').strip()})")
    _, r = curl(ctx, [f"http://127.0.0.1:{port}/metrics"])
    eq(r.returncode, 0, "scraping weft's /metrics")
    check(b"# TYPE" in r.stdout, f"weft's /metrics answered {r.stdout[:100]!r}")
    time.sleep(1.5)  # the spans wait --trace-wait for late evidence, then leave
    weft.stop()
    weft.expect_clean_exit()
    spans = otlp_spans(out)
    pages = [(s["kind"], s["attrs"].get("server.port")) for s in spans if s["attrs"].get("url.path") == "/page.txt"]
    eq(sorted(pages), sorted([(2, str(port))] * 3 + [(3, str(port))] * 3),
       "spans of the requests to the other namespace's server (kind, server.port)")
    scrapes = [s["name"] for s in spans if s["attrs"].get("url.path") == "/metrics"]
    eq(scrapes, [], "spans of the scrape of weft's own /metrics")


def verdict_run(ctx, bench, verdict, writes, size, *extra):
    """tests/bench/verdict_bench.cpp gives both ends of one connection `verdict` after its first
    byte; the client then makes `writes` writes. Returns the bench's JSON report."""
    port = free_port()
    server = spawn_script(ctx, SINK_SERVER, port, 1 + writes * size)
    wait_listening(port, proc=server)
    err = open(ctx.path(f"bench-{verdict}.stderr"), "wb+")
    ctx.on_cleanup(err.close)
    proc = ctx.spawn([bench, "--port", str(port), "--verdict", verdict, *extra], stop_signal=signal.SIGINT,
                     stdout=subprocess.PIPE, stderr=err)
    wait_until(lambda: proc.poll() is not None or b"ready" in open(err.name, "rb").read(), 20, "the bench's 'ready'")
    check(proc.poll() is None, f"the verdict bench exited: {open(err.name, 'rb').read()[-300:]!r}")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"x")
        time.sleep(0.4)  # the bench sees the first records and sets both ends' verdicts
        for n in range(writes):
            s.sendall(b"v" * size)
        eq(read_exactly(s, 4), b"done", "the sink server's answer")
    time.sleep(0.3)  # both ends reach TCP_CLOSE
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=10)
    eq(proc.returncode, 0, "the verdict bench's exit status")
    import json
    return json.loads(out)


@case(timeout=60)
def capture_verdicts_honoured(ctx):
    """Verdicts written by KernelCapture::set_verdict: IGNORE emits no data record but the
    positions still advance (the close events' byte totals are exact); COUNTS emits each
    syscall's record with no payload, flagged truncated; a skip verdict reports the syscalls
    wholly before its position without payload (flagged skipped) and copies the rest."""
    build = os.path.dirname(os.path.abspath(harness.WEFT))
    bench = os.path.join(build, "tests", "weft_verdict_bench")
    check(os.access(bench, os.X_OK), f"{bench} is missing (built with weft: target weft_verdict_bench)")
    writes, size = 50, 32
    total = 1 + writes * size + len(b"done")  # each way, as both ends' close events count it
    ignore = verdict_run(ctx, bench, "ignore", writes, size)
    eq((ignore["connections"], ignore["data_after_verdict"], ignore["verdict_failures"]), (2, 0, 0),
       f"IGNORE: connections, data records after the verdict, failures ({ignore})")
    eq((ignore["closes"], ignore["close_bytes"]), (2, 2 * total),
       f"IGNORE: close events and their byte totals (sent + received, each end) ({ignore})")
    counts = verdict_run(ctx, bench, "counts", writes, size)
    check(counts["data_after_verdict"] >= writes, f"COUNTS: a record per write expected ({counts})")
    eq((counts["captured_after_verdict"], counts["untruncated_after_verdict"]), (0, 0),
       f"COUNTS: payload bytes and records not flagged truncated after the verdict ({counts})")
    eq(counts["close_bytes"], 2 * total, f"COUNTS: close byte totals ({counts})")
    until = 1 + writes // 2 * size  # the first half of the writes, after the first byte
    skip = verdict_run(ctx, bench, "skip", writes, size, "--skip-until", str(until))
    check(skip["skipped"] >= writes // 2, f"SKIP: the client's first {writes // 2} writes flagged skipped ({skip})")
    eq((skip["skipped_beyond"], skip["copied_within"], skip["verdict_failures"]), (0, 0, 0),
       f"SKIP: skipped records reaching past the position, copied ones before it, failures ({skip})")
    check(skip["captured_after_verdict"] >= writes // 2 * size,
          f"SKIP: the bytes after the position are copied ({skip})")
    eq(skip["close_bytes"], 2 * total, f"SKIP: close byte totals ({skip})")


@case(timeout=60)
def capture_io_uring_worker_recv_has_no_fd(ctx):
    """A receive an io_uring worker thread makes (IOSQE_ASYNC) runs the socket hook outside any
    syscall of the process: it is reported with syscall unknown and fd -1, never as read(fd=0);
    it is the process's own worker, so the pid stays. (Kernel-thread receives, NFS or in-kernel
    TLS, cannot be produced on this machine; their decoding is unit-tested.)"""
    check(shutil.which("cc"), "no C compiler (Debian package gcc) to build the io_uring client")
    binary = ctx.path("uring_recv")
    r = harness.run(["cc", "-O1", "-o", binary, os.path.join(HERE, "uring_recv.c")])
    eq(r.returncode, 0, f"building uring_recv.c: {r.stderr.decode(errors='replace')[-300:]}")
    port = free_port()
    message = b"hello from the server"
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    ctx.on_cleanup(srv.close)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    client = ctx.spawn([binary, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    srv.settimeout(10)
    conn, _ = srv.accept()
    conn.sendall(message)
    out, err = client.communicate(timeout=10)
    conn.close()
    eq((client.returncode, out.strip()), (0, str(len(message)).encode()),
       f"uring_recv's exit status and bytes received (stderr {err!r})")
    weft.stop()
    weft.expect_clean_exit()
    recvs = [e for e in of_kind(weft.events(), "data", direction="recv") if e["remote"]["port"] == port]
    eq([(e["pid"], e["syscall"], e["fd"], e["bytes"], e["kernel_thread"]) for e in recvs],
       [(client.pid, "unknown", -1, len(message), False)],
       "the io_uring worker's receive (pid, syscall, fd, bytes, kernel_thread)")
