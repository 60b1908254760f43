"""Kernel TCP facts (docs/network.md): a server in a network namespace behind a veth, faults made
with nftables inside that namespace, the kernel's own counters as truth."""
import atexit
import json
import os
import subprocess
import sys
import time

import harness
from harness import case, check, eq, free_port, start_weft, wait_until
from peers import curl
from suite_tracing import otlp_spans

HOST_IP, NS_IP = "10.214.9.1", "10.214.9.2"
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
    """nftables drops a tenth of the server's data packets where they arrive (the veth's end in
    this namespace: a drop on the sender's own output hook is no loss, TCP sends it again as if
    new): the retransmissions weft reports per connection add up to the server namespace's
    RetransSegs delta, and each connection's equal the kernel's tcp_sock.total_retrans at close;
    `weft run`'s weft_tcp_retransmits_total for those connections' peer equals the same delta."""
    net = lab()
    net.nft(ctx, "netdev", "weftloss", f"""
table netdev weftloss {{
  chain ingress {{
    type filter hook ingress device {net.host_if} priority 0;
    ip saddr {NS_IP} tcp sport {net.port} meta length > 200 numgen random mod 10 == 0 drop
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
