"""Kernel TCP facts (docs/network.md): a server in a network namespace behind a veth, faults made
with nftables inside that namespace, the kernel's own counters as truth."""
import atexit
import json
import os
import re
import subprocess
import sys
import time

import harness
from harness import case, check, eq, free_port, start_weft, wait_until
from peers import curl
from suite_tracing import otlp_spans



def free_subnet():
    """A 10.214.N.0/24 no interface of this namespace has: several runs on one machine (other
    sessions' suites) each get their own, starting from one derived from the pid."""
    used = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True).stdout
    for i in range(200):
        n = 16 + (os.getpid() + i) % 200
        if f" 10.214.{n}." not in used:
            return f"10.214.{n}.1", f"10.214.{n}.2"
    raise RuntimeError("no free 10.214.N.0/24 subnet")


HOST_IP, NS_IP = free_subnet()
BIG_FILE_BYTES = 1 << 20


class NetLab:
    """One namespace with a python3 http.server, shared by every case of this suite; removed at
    exit (the cases remove their own nftables tables)."""

    def __init__(self, host_ip=HOST_IP, ns_ip=NS_IP, suffix=""):
        """A lab on its own addresses (and `suffix` in its names) can run beside this suite's."""
        tag = f"{os.getpid() % 100000}{suffix}"
        self.host_ip, self.ns_ip = host_ip, ns_ip
        self.ns, self.host_if, self.ns_if = f"weftnet{tag}", f"wnh{tag}", f"wnn{tag}"
        self.port = free_port()
        self.server = None
        atexit.register(self.close)
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        for argv in (["ip", "netns", "add", self.ns],
                     ["ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if],
                     ["ip", "link", "set", self.ns_if, "netns", self.ns],
                     ["ip", "addr", "add", f"{host_ip}/24", "dev", self.host_if],
                     ["ip", "link", "set", self.host_if, "up"],
                     self.in_ns("ip", "addr", "add", f"{ns_ip}/24", "dev", self.ns_if),
                     self.in_ns("ip", "link", "set", self.ns_if, "up"),
                     self.in_ns("ip", "link", "set", "lo", "up")):
            r = harness.run(argv)
            eq(r.returncode, 0, f"{' '.join(argv)}: {r.stderr.decode(errors='replace').strip()}")
        self.www = f"/tmp/weft-e2e-net-{tag}"
        os.makedirs(self.www, exist_ok=True)
        with open(os.path.join(self.www, "small.txt"), "w") as f:
            f.write("small\n")
        with open(os.path.join(self.www, "big.bin"), "wb") as f:
            f.write(os.urandom(BIG_FILE_BYTES))
        self.server = subprocess.Popen(self.in_ns(sys.executable, "-m", "http.server", str(self.port), "--bind",
                                                  ns_ip, "--directory", self.www),
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        wait_until(lambda: f":{self.port} " in self.in_ns_out("ss", "-Htln"), 10,
                   f"http.server listening on {ns_ip}:{self.port} in {self.ns}")

    def in_ns(self, *argv):
        return ["ip", "netns", "exec", self.ns] + list(argv)

    def in_ns_out(self, *argv):
        r = harness.run(self.in_ns(*argv))
        eq(r.returncode, 0, f"{' '.join(argv)} in {self.ns}: {r.stderr.decode(errors='replace').strip()}")
        return r.stdout.decode()

    def nft(self, ctx, family, table, script, in_ns=True):
        """Loads an nftables table, into the namespace or (a netdev table bound to this lab's
        veth end) into this one; deleted when the case ends."""
        wrap = self.in_ns if in_ns else (lambda *argv: list(argv))
        ctx.on_cleanup(lambda: subprocess.run(wrap("nft", "delete", "table", family, table),
                                              stderr=subprocess.DEVNULL))
        r = subprocess.run(wrap("nft", "-f", "-"), input=script.encode(), capture_output=True, timeout=10)
        eq(r.returncode, 0, f"nft -f: {r.stderr.decode(errors='replace').strip()}")

    def retrans_segs(self):
        """The namespace's RetransSegs (/proc/net/snmp, Tcp line)."""
        lines = [line.split() for line in self.in_ns_out("cat", "/proc/net/snmp").splitlines()
                 if line.startswith("Tcp:")]
        return int(lines[1][lines[0].index("RetransSegs")])

    def server_connections(self):
        """Server sockets not yet closed (TIME_WAIT is closed for TCP's counters)."""
        out = self.in_ns_out("ss", "-Htn", "state", "connected", "exclude", "time-wait",
                             "sport", f"= :{self.port}")
        return [line for line in out.splitlines() if line.strip()]

    def close(self):
        if self.server and self.server.poll() is None:
            harness.stop_process(self.server)
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.host_if], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", self.www])


_LAB = []


def lab():
    if not _LAB:
        _LAB.append(NetLab())
    return _LAB[0]


def tcp_events(events, what, **match):
    return [e for e in events if e["kind"] == "tcp" and e["tcp"]["what"] == what
            and all(e[k] == v for k, v in match.items())]


@case(timeout=90)
def net_first_syn_dropped(ctx):
    """nftables drops the first SYN of every connection to the server: weft reports a connect of
    at least 0.9 s (the kernel's initial RTO is 1 s) with one SYN retransmission, and the client
    span carries both (weft.tcp.connect.duration, weft.tcp.connect.syn_retransmits)."""
    net = lab()
    net.nft(ctx, "inet", "weftsyn", f"""
table inet weftsyn {{
  set seen {{ type ipv4_addr . inet_service; flags dynamic; timeout 60s; }}
  chain input {{
    type filter hook input priority 0;
    tcp dport {net.port} tcp flags & (syn|ack) == syn ip saddr . tcp sport @seen accept
    tcp dport {net.port} tcp flags & (syn|ack) == syn update @seen {{ ip saddr . tcp sport }} drop
  }}
}}""")
    out = ctx.path("spans.jsonl")
    events_weft = start_weft(ctx, ["events", "--json", "--port", str(net.port)], label="events")
    metrics_port = free_port()
    run_weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "0.2",
                                "--metrics-address", f"127.0.0.1:{metrics_port}"], label="run")
    _, r = curl(ctx, ["-o", "/dev/null", f"http://{NS_IP}:{net.port}/small.txt"])
    eq(r.returncode, 0, f"curl ({r.stderr.decode(errors='replace').strip()})")
    wait_until(lambda: any(e["kind"] == "close" for e in events_weft.events()), 10, "the connection's close")
    connects = {}

    def connect_histogram():
        _, r = curl(ctx, [f"http://127.0.0.1:{metrics_port}/metrics"])
        eq(r.returncode, 0, "scraping weft's /metrics")
        for line in r.stdout.decode().splitlines():
            if line.startswith("weft_tcp_connect_duration_seconds") and f'server_address="{NS_IP}"' in line:
                connects[line.rsplit(" ", 1)[0]] = float(line.rsplit(" ", 1)[1])
        return connects
    wait_until(connect_histogram, 5, f"weft_tcp_connect_duration_seconds series for {NS_IP}")
    events_weft.stop()
    run_weft.stop()
    events_weft.expect_clean_exit()
    run_weft.expect_clean_exit()

    events = events_weft.events()
    connect = harness.one([e for e in events if e["kind"] == "connect" and e["remote"]["port"] == net.port],
                          "connect event to the server")
    eq(connect["result"], 0, "connect result")
    check(connect["duration_ns"] >= 900_000_000, f"connect took {connect['duration_ns']} ns, expected >= 0.9 s")
    syn = tcp_events(events, "retransmit", cookie=connect["cookie"])
    eq([e["tcp"]["state"] for e in syn], [2], "retransmissions of the client socket (TCP state SYN_SENT = 2)")
    est = harness.one(tcp_events(events, "established", cookie=connect["cookie"]), "established record")
    eq(est["tcp"]["total_retrans"], 1, "tcp_sock.total_retrans at ESTABLISHED")
    check(est["tcp"]["srtt_us"] > 0, f"no RTT sample at ESTABLISHED: {est['tcp']}")

    clients = [s for s in otlp_spans(out) if s["kind"] == 3 and s["attrs"].get("url.path") == "/small.txt"
               and s["attrs"].get("server.port") == str(net.port)]
    span = harness.one(clients, "client span of the request")
    duration = float(span["attrs"].get("weft.tcp.connect.duration", 0))
    check(duration >= 0.9, f"weft.tcp.connect.duration={duration}, expected >= 0.9; attrs: {span['attrs']}")
    eq(span["attrs"].get("weft.tcp.connect.syn_retransmits"), "1", "weft.tcp.connect.syn_retransmits")
    count = [v for k, v in connects.items() if k.startswith("weft_tcp_connect_duration_seconds_count")]
    below = [v for k, v in connects.items() if 'le="0.5"' in k]
    above = [v for k, v in connects.items() if 'le="2.5"' in k]
    eq((count, below, above), ([1.0], [0.0], [1.0]),
       f"connect histogram (count, bucket le=0.5, bucket le=2.5) for {NS_IP}: {connects}")


def connection_retransmits(events, port):
    """Per server connection: segments weft saw sent again, and the kernel's total at close."""
    per = {}
    for e in events:
        if e["kind"] != "tcp" or e["local"]["port"] != port:
            continue
        seen = per.setdefault(e["cookie"], {"segments": 0, "closed_total": None})
        if e["tcp"]["what"] == "retransmit":
            seen["segments"] += e["tcp"]["segs"]
        elif e["tcp"]["what"] == "closed":
            seen["closed_total"] = e["tcp"]["total_retrans"]
    return per


def scrape(ctx, port, label):
    """Per metric name, the sum of the /metrics samples whose labels hold `label` (le buckets
    left out)."""
    _, r = curl(ctx, [f"http://127.0.0.1:{port}/metrics"])
    eq(r.returncode, 0, "scraping weft's /metrics")
    found = {}
    for line in r.stdout.decode().splitlines():
        if line.startswith("#") or label not in line or "_bucket{" in line:
            continue
        name, value = line.split("{", 1)[0], float(line.rsplit(" ", 1)[1])
        found[name] = found.get(name, 0) + value
    return found


@case(timeout=120)
def net_data_retransmits_match_kernel(ctx):
    """nftables drops every fifth of the server's data packets (a counter, not chance: every run
    loses some) where they arrive (the veth's end in
    this namespace: a drop on the sender's own output hook is no loss, TCP sends it again as if
    new): the retransmissions weft reports per connection add up to the server namespace's
    RetransSegs delta, and each connection's equal the kernel's tcp_sock.total_retrans at close;
    `weft run`'s weft_tcp_retransmits_total for those connections' peer equals the same delta."""
    net = lab()
    net.nft(ctx, "netdev", "weftloss", f"""
table netdev weftloss {{
  chain ingress {{
    type filter hook ingress device {net.host_if} priority 0;
    ip saddr {NS_IP} tcp sport {net.port} meta length > 200 numgen inc mod 5 == 0 drop
  }}
}}""", in_ns=False)
    weft = start_weft(ctx, ["events", "--json", "--port", str(net.port)], label="events")
    metrics_port = free_port()
    run_weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", ctx.path("spans.jsonl"),
                                "--metrics-address", f"127.0.0.1:{metrics_port}"], label="run")
    before = net.retrans_segs()
    for _ in range(4):
        _, r = curl(ctx, ["-o", "/dev/null", f"http://{NS_IP}:{net.port}/big.bin"], timeout=60)
        eq(r.returncode, 0, f"curl ({r.stderr.decode(errors='replace').strip()})")
    wait_until(lambda: not net.server_connections(), 30, "the server's connections to close")
    after = net.retrans_segs()
    wait_until(lambda: sum(e["kind"] == "close" and e["local"]["port"] == net.port for e in weft.events()) >= 4,
               10, "weft's close events of the server's four connections")
    weft.stop()
    weft.expect_clean_exit()
    per = connection_retransmits(weft.events(), net.port)
    eq(len(per), 4, f"server connections with TCP records: {per}")
    total = sum(c["segments"] for c in per.values())
    check(after - before > 0, "no retransmission happened: the drop rule did not work")
    eq(total, after - before, f"segments weft saw retransmitted vs the namespace's RetransSegs delta ({per})")

    # The same count as a metric: the server's connections are those whose peer is the host end.
    def server_metrics():
        found = scrape(ctx, metrics_port, f'network_peer_address="{HOST_IP}"')
        return found if found.get("weft_tcp_rtt_seconds_count") == 4 else None
    found = wait_until(server_metrics, 10, f"weft_tcp_rtt_seconds_count 4 for peer {HOST_IP}", interval=0.2)
    run_weft.stop()
    run_weft.expect_clean_exit()
    eq(found.get("weft_tcp_retransmits_total"), after - before,
       f"weft_tcp_retransmits_total for peer {HOST_IP} vs the namespace's RetransSegs delta ({found})")
    for cookie, c in per.items():
        eq(c["segments"], c["closed_total"], f"connection {cookie}: retransmitted segments vs total_retrans at close")


SLOW_SERVER = r"""
import socket, sys, time
port, ip, pause, where = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((ip, port))
srv.listen(8)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    if where == "before-read":
        time.sleep(pause)  # the request waits in the receive queue
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(4096)
        if not chunk:
            break
        head += chunk
    if where == "before-write":
        time.sleep(pause)  # the application works: nothing waits in the queue
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
    conn.close()
"""


def slow_server_span(ctx, net, where, pause):
    """The server span of one curl request to a server in the namespace that sleeps `pause`
    seconds `where` ("before-read" or "before-write")."""
    port = free_port()
    server = ctx.spawn(net.in_ns(sys.executable, "-c", SLOW_SERVER, str(port), NS_IP, str(pause), where),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(server.stdout.readline().strip() == b"ready", "the slow server did not start")
    out = ctx.path(f"spans-{where}.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "0.2",
                            "--receive-queue-wait"], label=f"run-{where}")
    _, r = curl(ctx, ["-o", "/dev/null", f"http://{NS_IP}:{port}/slow"])
    eq(r.returncode, 0, f"curl ({r.stderr.decode(errors='replace').strip()})")

    def server_spans():
        return [s for s in otlp_spans(out) if s["kind"] == 2 and s["attrs"].get("url.path") == "/slow"]
    wait_until(lambda: server_spans(), 10, "the server span of the request")
    weft.stop()
    weft.expect_clean_exit()
    return harness.one(server_spans(), "server span")


@case(timeout=60)
def net_receive_queue_wait(ctx):
    """A server that sleeps 0.5 s before reading: its span's weft.tcp.receive_queue.wait is about
    the sleep; one that sleeps before writing instead shows (almost) none: the time is the
    application's."""
    net = lab()
    waited = slow_server_span(ctx, net, "before-read", 0.5)
    wait = float(waited["attrs"].get("weft.tcp.receive_queue.wait", -1))
    check(0.45 <= wait <= 0.7, f"sleep before read: weft.tcp.receive_queue.wait={wait}, expected ~0.5; "
                               f"attrs: {waited['attrs']}")
    worked = slow_server_span(ctx, net, "before-write", 0.5)
    wait = float(worked["attrs"].get("weft.tcp.receive_queue.wait", -1))
    check(0 <= wait < 0.05, f"sleep before write: weft.tcp.receive_queue.wait={wait}, expected ~0; "
                            f"attrs: {worked['attrs']}")
    duration = (int(worked["endTimeUnixNano"]) - int(worked["startTimeUnixNano"])) / 1e9
    check(duration >= 0.45, f"the span of the server that sleeps before writing lasts {duration} s")


KEEPALIVE_SERVER = r"""
import array, fcntl, socket, sys, termios, time
port, ip, first_pause = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])

def outq(conn):  # bytes sent but not acknowledged (or not sent yet)
    n = array.array("i", [0])
    fcntl.ioctl(conn.fileno(), termios.TIOCOUTQ, n)
    return n[0]

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((ip, port))
srv.listen(8)
print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf, served = b"", 0
    while True:
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                break
            buf += chunk
        if b"\r\n\r\n" not in buf:
            break
        head, buf = buf.split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1]
        if served == 0:
            time.sleep(first_pause)  # the first response is slow: the second request waits
        body = b"x" * int(path.rsplit(b"/", 1)[1])  # /bytes/N: N bytes
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        served += 1
        # One response in flight at a time: each is acknowledged before the next is written.
        deadline = time.monotonic() + 5
        while outq(conn) and time.monotonic() < deadline:
            time.sleep(0.001)
    conn.close()
"""

PIPELINED_CLIENT = r"""
import socket, sys
ip, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.create_connection((ip, port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # each request its own segment
for i, path in enumerate(paths):
    pad = "x" * (400 if i else 0)  # only the second request is long (the drop rule's mark)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}\r\nX-Pad: {pad}\r\n\r\n".encode())
buf, done = b"", 0
while done < len(paths):
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("the server closed early")
    buf += chunk
    while b"\r\n\r\n" in buf:
        head, rest = buf.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        if len(rest) < length:
            break
        buf, done = rest[length:], done + 1
s.close()
print("ok", flush=True)
"""


@case(timeout=90)
def net_retransmits_by_sequence(ctx):
    """Two pipelined requests on one keep-alive connection; the server answers the first after
    0.5 s. nftables drops the first transmission of the second request (client -> server) and
    of the second response (server -> client): both are sent again while the first exchange is
    in flight or after its response was written. By sequence range, only the second client span
    carries the client's retransmission and only the second server span (held until its ACK
    with --ack-wait) the server's, although the client's fell inside the first exchange's time;
    the second server span's weft.tcp.last_ack.wait covers the retransmission."""
    net = lab()
    port = free_port()
    server = ctx.spawn(net.in_ns(sys.executable, "-c", KEEPALIVE_SERVER, str(port), NS_IP, "0.5"),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(server.stdout.readline().strip() == b"ready", "the keep-alive server did not start")
    # Packets over 300 bytes: only the second request and the second response; the first of
    # each per connection is dropped where it arrives (a loss on the way, not a local one).
    net.nft(ctx, "inet", "weftseqin", f"""
table inet weftseqin {{
  set seen {{ type inet_service; flags dynamic; timeout 60s; }}
  chain input {{
    type filter hook input priority 0;
    tcp dport {port} meta length > 300 tcp sport @seen accept
    tcp dport {port} meta length > 300 update @seen {{ tcp sport }} drop
  }}
}}""")
    net.nft(ctx, "netdev", "weftseqout", f"""
table netdev weftseqout {{
  set seen {{ type inet_service; flags dynamic; timeout 60s; }}
  chain ingress {{
    type filter hook ingress device {net.host_if} priority 0;
    ip saddr {NS_IP} tcp sport {port} meta length > 300 tcp dport @seen accept
    ip saddr {NS_IP} tcp sport {port} meta length > 300 update @seen {{ tcp dport }} drop
  }}
}}""", in_ns=False)
    out = ctx.path("spans.jsonl")
    events_weft = start_weft(ctx, ["events", "--json", "--port", str(port)], label="events")
    run_weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "2",
                                "--ack-wait"], label="run")
    client = subprocess.run([sys.executable, "-c", PIPELINED_CLIENT, NS_IP, str(port), f"/{port}/bytes/3",
                             f"/{port}/bytes/600"],
                            capture_output=True, timeout=30)
    eq(client.returncode, 0, f"pipelined client: {client.stderr.decode(errors='replace').strip()}")

    def spans(kind):
        return sorted([s for s in otlp_spans(out) if s["kind"] == kind
                       and s["attrs"].get("url.path", "").startswith(f"/{port}/bytes/")],
                      key=lambda s: int(s["startTimeUnixNano"]))
    wait_until(lambda: len(spans(2)) == 2 and len(spans(3)) == 2, 15, "two server and two client spans")
    events_weft.stop()
    run_weft.stop()
    events_weft.expect_clean_exit()
    run_weft.expect_clean_exit()

    events = events_weft.events()
    retrans = {role: [e for e in events if e["kind"] == "tcp" and e["tcp"]["what"] == "retransmit"
                      and e["role"] == role] for role in ("client", "server")}
    for role, found in retrans.items():
        check(found, f"no {role} retransmission: the drop rules did not work ({len(events)} events)")
    sends = {role: [e for e in events if e["kind"] == "data" and e["direction"] == "send" and e["role"] == role]
             for role in ("client", "server")}
    for kind, role in ((3, "client"), (2, "server")):
        first, second = spans(kind)
        eq(first["attrs"].get("weft.tcp.retransmits"), None,
           f"{role} span of the first exchange carries a retransmission: {first['attrs']}")
        eq(second["attrs"].get("weft.tcp.retransmits"), str(sum(e["tcp"]["segs"] for e in retrans[role])),
           f"{role} span of the second exchange: its retransmitted segments; attrs {second['attrs']}")
        # The event names a sequence number inside the second message's bytes (the second send).
        second_send = sends[role][1]
        seqs = [int(next(a["value"]["intValue"] for a in ev["attributes"] if a["key"] == "weft.tcp.seq"))
                for ev in second.get("events", []) if ev["name"] == "tcp.retransmit"]
        check(seqs and all((s - second_send["tcp_seq"]) % 2**32 < second_send["bytes"] for s in seqs),
              f"{role} retransmit events {seqs} vs the second message at seq {second_send['tcp_seq']}")
    # Client: the retransmission happened while the first exchange was in flight (by time it
    # would have been the first's too).
    first_client = spans(3)[0]
    retrans_wall = [e["ts_ns"] for e in retrans["client"]]
    check(any(int(first_client["startTimeUnixNano"]) < t < int(first_client["endTimeUnixNano"]) for t in retrans_wall),
          f"the client's retransmission fell outside the first exchange ({retrans_wall} vs "
          f"{first_client['startTimeUnixNano']}..{first_client['endTimeUnixNano']}): the test proves nothing")
    first_server, second_server = spans(2)
    # Held until their ACKs, the server spans still found their client spans (same node).
    for server_span, client_span in zip(spans(2), spans(3)):
        eq((server_span["traceId"], server_span.get("parentSpanId")), (client_span["traceId"], client_span["spanId"]),
           f"parent of the server span of {server_span['attrs']['url.path']}")
    wait_first = float(first_server["attrs"].get("weft.tcp.last_ack.wait", -1))
    wait_second = float(second_server["attrs"].get("weft.tcp.last_ack.wait", -1))
    retrans_after = (retrans["server"][0]["ts_ns"] - int(second_server["endTimeUnixNano"])) / 1e9
    check(0 <= wait_first < 0.25, f"first response's last-ACK wait {wait_first}; attrs {first_server['attrs']}")
    check(wait_second >= retrans_after > 0,
          f"second response's last-ACK wait {wait_second} s, its retransmission {retrans_after} s after its write")
    summary = [line for line in run_weft.stderr_lines if "ack wait:" in line]
    acknowledged = re.search(r"(\d+) acknowledged", summary[0]) if summary else None
    check(acknowledged and int(acknowledged.group(1)) >= 2, f"ack wait summary: {summary}")


STALLING_CLIENT = r"""
import socket, sys
ip, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((ip, port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # a small window closes soon
s.sendall(f"GET {path} HTTP/1.1\r\nHost: {ip}\r\n\r\n".encode())
got = s.recv(1000)
print("stalled", flush=True)
sys.stdin.readline()  # stop reading until told: the receive buffer fills, the window closes
head, body = got.split(b"\r\n\r\n", 1)
length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
while len(body) < length:
    chunk = s.recv(1 << 20)
    if not chunk:
        sys.exit("the server closed early")
    body += chunk
s.close()
print("ok", flush=True)
"""


def netstat_counter(text, name):
    """A TcpExt counter of /proc/net/netstat."""
    lines = [line.split() for line in text.splitlines() if line.startswith("TcpExt:")]
    return int(lines[1][lines[0].index(name)])


@case(timeout=60)
def net_zero_window(ctx):
    """A client (in the namespace) that stops reading a 4 MiB response: its window closes.
    weft reports the zero windows the server saw advertised on that connection (tcp
    zero_window records), as many as the client's namespace counted advertising
    (TcpExt TCPToZeroWindowAdv), and the server span carries weft.tcp.zero_windows and a
    tcp.zero_window event inside the span."""
    net = lab()
    port = free_port()
    server = ctx.spawn([sys.executable, "-c", KEEPALIVE_SERVER, str(port), HOST_IP, "0"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(server.stdout.readline().strip() == b"ready", "the keep-alive server did not start")
    out = ctx.path("spans.jsonl")
    events_weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--ack-wait"], label="events")
    run_weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "2",
                                "--ack-wait"], label="run")
    before = netstat_counter(net.in_ns_out("cat", "/proc/net/netstat"), "TCPToZeroWindowAdv")
    path = f"/{port}/bytes/{4 << 20}"
    client = ctx.spawn(net.in_ns(sys.executable, "-c", STALLING_CLIENT, HOST_IP, str(port), path),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(client.stdout.readline().strip() == b"stalled", "the stalling client did not start")

    def zero_windows():
        return [e for e in events_weft.events() if e["kind"] == "tcp" and e["tcp"]["what"] == "zero_window"
                and e["local"]["port"] == port]
    wait_until(zero_windows, 10, "a zero_window record on the server's connection")
    client.stdin.write(b"go\n")
    client.stdin.flush()
    check(client.stdout.readline().strip() == b"ok", "the client did not read the whole response")
    after = netstat_counter(net.in_ns_out("cat", "/proc/net/netstat"), "TCPToZeroWindowAdv")

    def server_spans():
        return [s for s in otlp_spans(out) if s["kind"] == 2 and s["attrs"].get("url.path") == path]
    wait_until(server_spans, 10, "the server span")
    events_weft.stop()
    run_weft.stop()
    events_weft.expect_clean_exit()
    run_weft.expect_clean_exit()
    records = zero_windows()
    print(f"    zero windows: weft {len(records)}, TCPToZeroWindowAdv delta {after - before}")
    eq(len({e["cookie"] for e in records}), 1, "connections with zero windows")
    eq(len(records), after - before, "zero windows weft saw vs the client namespace's TCPToZeroWindowAdv delta")
    span = harness.one(server_spans(), "server span")
    eq(span["attrs"].get("weft.tcp.zero_windows"), str(len(records)), f"weft.tcp.zero_windows; attrs {span['attrs']}")
    times = [int(ev["timeUnixNano"]) for ev in span.get("events", []) if ev["name"] == "tcp.zero_window"]
    eq(len(times), len(records), "tcp.zero_window span events")
    check(all(int(span["startTimeUnixNano"]) <= t for t in times), f"zero-window events before the span: {times}")


STEPPED_CLIENT = r"""
import socket, sys
ip, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection((ip, port))
for line in sys.stdin:  # one path per line; the connection stays open until stdin closes
    s.sendall(f"GET {line.strip()} HTTP/1.1\r\nHost: {ip}\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = s.recv(1 << 20)
        if not chunk:
            sys.exit("the server closed early")
        body += chunk
    print("done", flush=True)
s.close()
"""

# Tolerance of weft.tcp.rtt against ss -ti's rtt read just after the transfer (docs/network.md).
RTT_TOLERANCE = 0.25


@case(timeout=60)
def net_tbf_queueing_rtt(ctx):
    """A TBF rate limit (20 Mbit/s, 100 ms of queue) on the server's side of the veth: a 2 MiB
    response fills the queue, and the RTT on its server span (weft.tcp.rtt, read at the ACK of
    its last byte with --ack-wait) rises from that of a small response before the limit to
    tens of milliseconds, within RTT_TOLERANCE of the server socket's rtt in `ss -ti`."""
    net = lab()
    port = free_port()
    server = ctx.spawn(net.in_ns(sys.executable, "-c", KEEPALIVE_SERVER, str(port), NS_IP, "0"),
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    check(server.stdout.readline().strip() == b"ready", "the keep-alive server did not start")
    out = ctx.path("spans.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "2",
                            "--ack-wait"], label="run")
    client = ctx.spawn([sys.executable, "-c", STEPPED_CLIENT, NS_IP, str(port)],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def get(path):
        client.stdin.write(path.encode() + b"\n")
        client.stdin.flush()
        check(client.stdout.readline().strip() == b"done", f"the client did not get {path}")
    small, big = f"/{port}/bytes/3", f"/{port}/bytes/{2 << 20}"
    get(small)
    ctx.on_cleanup(lambda: subprocess.run(net.in_ns("tc", "qdisc", "del", "dev", net.ns_if, "root"),
                                          stderr=subprocess.DEVNULL))
    net.in_ns_out("tc", "qdisc", "add", "dev", net.ns_if, "root", "tbf", "rate", "20mbit", "burst", "32kb",
                  "latency", "100ms")
    get(big)
    ss = net.in_ns_out("ss", "-Htin", "state", "established", "sport", f"= :{port}")
    rtt = re.search(r"\brtt:([\d.]+)/", ss)
    check(rtt, f"no rtt in ss -ti: {ss}")
    ss_rtt = float(rtt.group(1)) / 1000
    client.stdin.close()
    client.wait(timeout=10)

    def server_spans():
        return {s["attrs"]["url.path"]: s for s in otlp_spans(out) if s["kind"] == 2
                and s["attrs"].get("url.path") in (small, big)}
    wait_until(lambda: len(server_spans()) == 2, 10, "the two server spans")
    weft.stop()
    weft.expect_clean_exit()
    spans = server_spans()
    before = float(spans[small]["attrs"].get("weft.tcp.rtt", -1))
    queued = float(spans[big]["attrs"].get("weft.tcp.rtt", -1))
    print(f"    rtt before the limit {before * 1e3:.3f} ms; with it: weft {queued * 1e3:.3f} ms, "
          f"ss {ss_rtt * 1e3:.3f} ms")
    check(0 < before < 0.005, f"RTT before the rate limit {before} s; attrs {spans[small]['attrs']}")
    # How much TBF queues depends on the runner's timing (8.7 ms was seen on a loaded CI machine);
    # that it queued is relative to the unlimited RTT, how much is checked against ss below.
    check(queued > 0.001 and queued > 5 * before, f"RTT with the rate limit {queued} s (before: {before} s)")
    check(abs(queued - ss_rtt) <= RTT_TOLERANCE * ss_rtt, f"weft.tcp.rtt {queued} s vs ss -ti rtt {ss_rtt} s")
