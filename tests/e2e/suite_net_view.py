"""`weft net` (docs/network.md): the per-connection TCP view, checked against what its clients
sent and received, the kernel's RetransSegs and libbpf-tools' tcplife. A client in a network
namespace talks to a server outside it, over a veth pair; faults from nftables."""
import atexit
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import harness
from harness import case, check, eq, free_port, wait_until
from peers import curl
from suite_net import SLOW_SERVER, NetLab



def free_subnet():
    """A 10.214.N.0/24 (N from 216, above the range suite_net's labs take) no interface here has:
    this suite's lab, suite_net's and other sessions' runs of both can exist at once."""
    used = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    for i in range(39):
        n = 216 + (os.getpid() + i) % 39
        if f" 10.214.{n}." not in used:
            return f"10.214.{n}.1", f"10.214.{n}.2"
    raise RuntimeError("no free 10.214.N.0/24 subnet")


HOST_IP, NS_IP = free_subnet()
TCPLIFE = "/usr/sbin/tcplife"

# Reads `want` bytes per connection and answers with the number of bytes its first line asks.
SERVER = r"""
import socket, struct, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(16)
print("ready", flush=True)
def serve(conn):
    with conn:
        head = b""
        while b"\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                return
            head += chunk
        line, rest = head.split(b"\n", 1)
        send, answer = (int(x) for x in line.split())
        got = len(rest)
        while got < send:
            chunk = conn.recv(65536)
            if not chunk:
                return
            got += len(chunk)
        if answer < 0:  # an abortive close: the kernel sends a reset
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        conn.sendall(b"x" * answer)
        while conn.recv(65536):
            pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

# One connection: sends a header line and `send` bytes, reads `answer` bytes, prints its local
# port and what it moved, waits for a line on stdin, closes.
CLIENT = r"""
import socket, sys
host, port, send, answer = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
s = socket.create_connection((host, port))
head = f"{send} {answer}\n".encode()
s.sendall(head + b"y" * send)
got = 0
try:
    while got < answer or answer < 0:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += len(chunk)
except ConnectionResetError:
    pass
print(s.getsockname()[1], len(head) + send, got, flush=True)
sys.stdin.readline()
s.close()
"""

_LAB = []


def lab(ctx):
    if not _LAB:
        net = NetLab(HOST_IP, NS_IP, suffix="v")
        port = free_port()
        net.view_port = port
        net.view_server = subprocess.Popen([sys.executable, "-c", SERVER, HOST_IP, str(port)],
                                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL)
        atexit.register(harness.stop_process, net.view_server)  # before the lab goes (LIFO)
        check(net.view_server.stdout.readline().strip() == b"ready", "the byte server did not start")
        _LAB.append(net)
    return _LAB[0]


class Client:
    """One client connection from inside the namespace, held open until close()."""

    def __init__(self, ctx, net, send, answer):
        self.proc = ctx.spawn(net.in_ns(sys.executable, "-c", CLIENT, HOST_IP, str(net.view_port), str(send),
                                        str(answer)), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline().split()
        check(len(line) == 3, f"the client did not finish its exchange (printed {line})")
        self.port, self.sent, self.received = (int(x) for x in line)
        eq(self.received, max(answer, 0), "bytes the client received")

    def close(self):
        self.proc.stdin.write(b"\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=10)


class NetView:
    """One `weft net --json` run; its rounds read from its stdout."""

    def __init__(self, ctx, port, label="net", extra=()):
        self.weft = harness.start_weft(ctx, ["net", "--json", "--duration", "60", "--interval", "0.2",
                                             "--port", str(port)] + list(extra), label=label)

    def rows(self):
        rows = []
        for line in self.weft.stdout_bytes().decode("utf-8", "replace").splitlines():
            if line.strip():
                rows.append(json.loads(line))
        return rows

    def rows_of(self, local_port):
        return [r for r in self.rows() if r["local"]["port"] == local_port]

    def closed_row(self, local_port):
        closed = [r for r in self.rows_of(local_port) if r["state"] == "closed"]
        return closed[0] if closed else None

    def stop(self):
        self.weft.stop()
        self.weft.expect_clean_exit()


def ns_client_sockets(net):
    out = net.in_ns_out("ss", "-Htn", "state", "connected", "exclude", "time-wait",
                        "dport", f"= :{net.view_port}")
    return [line for line in out.splitlines() if line.strip()]


@case(timeout=120)
def net_view_connection_bytes_and_retransmits(ctx):
    """`weft net --json`: a client in a namespace shows as an open row with its pid, its peer and
    exactly the bytes it sent and received, then once as closed with the same figures; a client
    whose every fifth large data packet is dropped (a counter: veth sends few, large GSO
    packets, so a random tenth was sometimes none) shows retransmissions equal to the namespace's
    RetransSegs delta."""
    net = lab(ctx)
    view = NetView(ctx, net.view_port)
    client = Client(ctx, net, 20_000, 300_000)

    def open_row():
        rows = [r for r in view.rows_of(client.port) if r["state"] == "open"
                and r["bytes_sent"] == client.sent and r["bytes_received"] == client.received]
        return rows[-1] if rows else None
    row = wait_until(open_row, 10, f"an open row for the client's port {client.port} with its byte counts",
                     interval=0.1)
    eq(row["pid"], client.proc.pid, "pid of the client's row")
    eq((row["peer"]["address"], row["peer"]["port"]), (HOST_IP, net.view_port), "peer of the client's row")
    eq(row["role"], "client", "role")
    check(row["connect_s"] is not None and row["connect_error"] == "", f"connect not seen: {row}")
    check(row["rtt_s"] is not None and row["rtt_s"] > 0, f"no RTT: {row}")
    client.close()
    closed = wait_until(lambda: view.closed_row(client.port), 10, "the client's closed row", interval=0.1)
    eq((closed["bytes_sent"], closed["bytes_received"]), (client.sent, client.received),
       "bytes in the closed row")
    eq(closed["retransmits"], 0, "retransmissions without loss")

    net.nft(ctx, "netdev", "weftviewloss", f"""
table netdev weftviewloss {{
  chain ingress {{
    type filter hook ingress device {net.host_if} priority 0;
    ip saddr {NS_IP} tcp dport {net.view_port} meta length > 200 numgen inc mod 5 == 0 drop
  }}
}}""", in_ns=False)
    before = net.retrans_segs()
    lossy = Client(ctx, net, 1 << 20, 100)
    lossy.close()
    wait_until(lambda: not ns_client_sockets(net), 30, "the lossy client's socket to close")
    after = net.retrans_segs()
    closed = wait_until(lambda: view.closed_row(lossy.port), 10, "the lossy client's closed row", interval=0.1)
    view.stop()
    check(after - before > 0, "no retransmission happened: the drop rule did not work")
    eq(closed["retransmits"], after - before, f"the lossy connection's retransmissions vs RetransSegs ({closed})")
    eq(closed["bytes_sent"], lossy.sent, "bytes the lossy client sent")
    eq(sum(r["state"] == "closed" for r in view.rows_of(client.port)), 1,
       "rounds that show the first client closed (once, then it leaves)")


def scrape(port, label):
    """Per metric name, the sum of weft's /metrics samples whose labels hold `label`."""
    r = harness.run(["curl", "-sS", f"http://127.0.0.1:{port}/metrics"])
    eq(r.returncode, 0, "scraping weft's /metrics")
    found = {}
    for line in r.stdout.decode().splitlines():
        if not line.startswith("#") and label in line and "_bucket{" not in line:
            name = line.split("{", 1)[0]
            found[name] = found.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return found


@case(timeout=90)
def net_view_resets(ctx):
    """A server that closes abortively (SO_LINGER 0) after reading: its row shows one reset
    sent, the client's one received, and `weft run`'s weft_tcp_resets_total has one of each
    under the right peers. The kernel sends that reset after the socket reached CLOSE, where
    weft has already forgotten the connection: the reset is tied to it by its cookie."""
    net = lab(ctx)
    metrics_port = free_port()
    run = harness.start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", ctx.path("spans.jsonl"),
                                   "--metrics-address", f"127.0.0.1:{metrics_port}"], label="run")
    view = NetView(ctx, net.view_port)
    client = Client(ctx, net, 100, -1)
    client.close()
    client_row = wait_until(lambda: view.closed_row(client.port), 10, "the client's closed row", interval=0.1)
    eq((client_row["resets_received"], client_row["resets_sent"]), (1, 0), "client row: resets received, sent")

    def server_row():
        rows = [r for r in view.rows() if r["peer"]["port"] == client.port and r["state"] == "closed"]
        return rows[0] if rows else None
    row = wait_until(server_row, 10, "the server's closed row", interval=0.1)
    eq((row["resets_sent"], row["resets_received"]), (1, 0), f"server row: resets sent, received ({row})")
    eq(row["pid"], net.view_server.pid, "server row's pid")
    view.stop()
    sent = f'network_peer_address="{NS_IP}",network_io_direction="transmit"'
    received = f'network_peer_address="{HOST_IP}",network_io_direction="receive"'
    wait_until(lambda: scrape(metrics_port, sent).get("weft_tcp_resets_total") == 1
               and scrape(metrics_port, received).get("weft_tcp_resets_total") == 1, 10,
               "weft_tcp_resets_total: one sent to the client, one received from the server", interval=0.2)
    run.stop()
    run.expect_clean_exit()


def parse_tcplife(text, port):
    """tcplife's lines for connections to `port`: local port -> (tx bytes, rx bytes, ms)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 9 or not re.fullmatch(r"\d+", f[0]) or f[5] != str(port):
            continue
        out[int(f[3])] = (float(f[6]) * 1024, float(f[7]) * 1024, float(f[8]))
    return out


@case(timeout=120)
def net_view_agrees_with_tcplife(ctx):
    """Three connections with known byte counts, held open different times: per connection,
    `weft net`'s lifetime and the kernel's byte counts agree with libbpf-tools' tcplife (within
    the rounding of its KB and ms columns), and its application byte counts are the clients'."""
    check(os.path.exists(TCPLIFE), f"{TCPLIFE} missing: scripts/setup.sh installs libbpf-tools")
    net = lab(ctx)
    tcplife_out = ctx.path("tcplife.out")
    out = open(tcplife_out, "wb")
    ctx.on_cleanup(out.close)
    tcplife = ctx.spawn(["stdbuf", "-oL", TCPLIFE, "-w", "-D", str(net.view_port)], stop_signal=signal.SIGINT,
                        stdout=out, stderr=subprocess.STDOUT)
    wait_until(lambda: b"PID" in open(tcplife_out, "rb").read() or tcplife.poll() is not None, 15,
               "tcplife's header")
    check(tcplife.poll() is None, f"tcplife exited: {open(tcplife_out, 'rb').read()[-300:]!r}")
    view = NetView(ctx, net.view_port)
    clients = []
    for send, answer, hold in ((1_000, 50_000, 0.1), (70_000, 300, 0.4), (5_000, 5_000, 0.8)):
        c = Client(ctx, net, send, answer)
        # Held open until weft shows it open at least this long: the lifetimes differ.
        wait_until(lambda: any(r["state"] == "open" and r["age_s"] >= hold for r in view.rows_of(c.port)), 10,
                   f"client port {c.port} open for {hold}s", interval=0.05)
        c.close()
        clients.append(c)
    wait_until(lambda: all(view.closed_row(c.port) for c in clients), 10, "the clients' closed rows", interval=0.1)
    view.stop()
    wait_until(lambda: len(parse_tcplife(open(tcplife_out).read(), net.view_port)) >= 3, 10,
               "tcplife's lines for the three connections", interval=0.1)
    harness.stop_process(tcplife, signal.SIGINT)
    life = parse_tcplife(open(tcplife_out).read(), net.view_port)
    for c in clients:
        row = view.closed_row(c.port)
        check(c.port in life, f"tcplife has no line for port {c.port}: {life}")
        tx, rx, ms = life[c.port]
        eq((row["bytes_sent"], row["bytes_received"]), (c.sent, c.received), f"port {c.port}: application bytes")
        check(abs(row["tcp_bytes_acked"] - tx) <= 6 and abs(row["tcp_bytes_received"] - rx) <= 6,
              f"port {c.port}: kernel bytes acked/received {row['tcp_bytes_acked']}/{row['tcp_bytes_received']} "
              f"vs tcplife's {tx:.0f}/{rx:.0f}")
        check(abs(row["age_s"] * 1000 - ms) <= 0.5,
              f"port {c.port}: lifetime {row['age_s'] * 1000:.3f} ms vs tcplife's {ms} ms")


def read_pty(master, proc, timeout):
    """Everything written to a pseudo-terminal until its process exits (bounded)."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end closed
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


@case(timeout=60)
def net_view_output_modes(ctx):
    """An unknown --sort field is refused with the list of fields (exit 2); with stdout not a
    terminal each round is plain text (title, header, rows, no escape codes); on a terminal each
    round clears the screen and redraws in place."""
    r = harness.run([harness.WEFT, "net", "--sort", "latency"])
    eq(r.returncode, 2, "exit code of `weft net --sort latency`")
    check(b"weft: --sort: unknown field 'latency' (one of: retrans, rtt," in r.stderr,
          f"stderr of a bad --sort: {r.stderr!r}")

    net = lab(ctx)
    args = ["net", "--duration", "2", "--interval", "0.5", "--port", str(net.view_port)]
    plain = harness.start_weft(ctx, args, label="plain")  # stdout: a file
    client = Client(ctx, net, 10, 20)  # opened while weft watches: both ends are seen
    plain.wait_exit(15)
    plain.expect_clean_exit()
    text = plain.stdout_bytes().decode()
    check("\x1b" not in text, f"escape codes in plain output: {text[:300]!r}")
    rounds = re.findall(r"^weft net \S+: (\d+) connections, sorted by retrans$", text, re.M)
    check(len(rounds) >= 2, f"expected at least two rounds: {text[:500]!r}")
    check(re.search(r"^PID +COMM +ROLE +LOCAL +PEER +STATE +RTT", text, re.M), f"no header: {text[:300]!r}")
    check(re.search(rf"^{client.proc.pid} .* {NS_IP}:{client.port} +{HOST_IP}:{net.view_port} +open ", text, re.M),
          f"no open row for the client (pid {client.proc.pid}, port {client.port}): {text[:800]!r}")

    master, slave = pty.openpty()
    proc = ctx.spawn([harness.WEFT] + args, stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    ctx.on_cleanup(lambda: os.close(master))
    screen = read_pty(master, proc, 20).decode("utf-8", "replace")
    eq(proc.wait(timeout=5), 0, "weft net on a terminal exit code")
    check(screen.count("\x1b[H\x1b[2J") >= 2, f"no redraw on a terminal: {screen[:300]!r}")
    check(f"{NS_IP}:{client.port}" in screen, f"the client's row is not on the terminal: {screen[:500]!r}")
    client.close()


@case(timeout=60)
def net_view_receive_queue_wait(ctx):
    """With --receive-queue-wait, a server (in the namespace) that sleeps 0.5 s after accepting
    before it reads: its row shows one wait of about the sleep, from the request's arrival to
    the read that took it."""
    net = lab(ctx)
    port = free_port()
    server = ctx.spawn(net.in_ns(sys.executable, "-c", SLOW_SERVER, str(port), NS_IP, "0.5", "before-read"),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(server.stdout.readline().strip() == b"ready", "the slow server did not start")
    view = NetView(ctx, port, extra=["--receive-queue-wait"])
    _, r = curl(ctx, ["-o", "/dev/null", f"http://{NS_IP}:{port}/slow"])
    eq(r.returncode, 0, f"curl ({r.stderr.decode(errors='replace').strip()})")

    def server_row():
        rows = [r for r in view.rows() if r["local"]["port"] == port and r["state"] == "closed"]
        return rows[0] if rows else None
    row = wait_until(server_row, 10, "the slow server's closed row", interval=0.1)
    view.stop()
    eq(row["pid"], server.pid, "server row's pid")
    eq(row["receive_queue_waits"], 1, f"receive-queue waits ({row})")
    check(0.45 <= row["receive_queue_wait_max_s"] <= 0.7,
          f"receive-queue wait {row['receive_queue_wait_max_s']} s, expected ~0.5 ({row})")
