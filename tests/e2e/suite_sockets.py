"""Sockets driven syscall by syscall from this process against a scripted peer: every syscall
shape weft reads, connections open before weft started, sequence numbers, failed connects."""
import errno
import os
import select
import socket
import threading
import time

from harness import (case, check, check_contiguous, check_schema, describe, eq, free_port, of_kind,
                     one, payload, read_comm, short, start_weft, stream_payload, syscalls)
from peers import SocketPeer, curl


def wait_readable(sock, timeout=5.0):
    ready, _, _ = select.select([sock], [], [], timeout)
    check(ready, f"no data arrived on the client socket within {timeout}s")


def endpoint(addr):
    return {"address": addr[0], "port": addr[1]}


def connect(port, addr="127.0.0.1"):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect((addr, port))
    sock.settimeout(None)  # blocking again: the tests call os.read/readv on the fd directly
    return sock


def events_of(events, cookie, kind=None):
    return [e for e in events if e["cookie"] == cookie and (kind is None or e["kind"] == kind)]


def syscall_at(events, cookie, direction, pos, what):
    """The one syscall of this stream that starts at `pos`: (first event, chunks)."""
    found = [(f, ch) for f, ch in syscalls(events, cookie, direction) if f["stream_pos"] == pos]
    check(len(found) == 1, f"{what}: expected one {direction} syscall at stream position {pos}, found "
                           f"{len(found)}; the stream has:\n    {describe(events_of(events, cookie, 'data'))}")
    return found[0]


@case(timeout=60)
def socket_syscall_shapes(ctx):
    """write/sendto/sendmsg/writev and read/recvfrom/recvmsg/readv, including multi-buffer and
    empty iovecs, payloads split into --chunk-bytes chunks across iovec boundaries, and a
    syscall larger than --capture-bytes."""
    chunk, cap = 1000, 4096
    port = free_port()
    peer = SocketPeer(ctx, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--chunk-bytes", str(chunk),
                            "--capture-bytes", str(cap)])
    me, my_tid, my_comm = os.getpid(), threading.get_native_id(), read_comm(os.getpid())
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    fd, sock_local = sock.fileno(), sock.getsockname()
    server_fd = peer.do("accept")
    rnd = os.urandom

    # (client syscall, server syscall, bytes): client -> server first.
    up = []

    def c2s(client_call, server_cmd, data, send):
        peer.start(*server_cmd)
        send()
        got = peer.result(f"the server's {server_cmd[0]}")
        eq(got, data, f"bytes the server's {server_cmd[0]} returned")
        up.append((client_call, server_cmd[0], data))

    m1 = rnd(1800)
    c2s("write", ("read", 1800), m1, lambda: os.write(fd, m1))
    m2 = rnd(2200)
    c2s("sendto", ("recv", 4000), m2, lambda: sock.send(m2))
    m3 = [rnd(700), b"", rnd(1300), rnd(900)]
    c2s("sendmsg", ("recvmsg", 7, 5000), b"".join(m3), lambda: sock.sendmsg(m3))
    m4 = [rnd(1500), rnd(1600)]
    c2s("writev", ("readv", 5, 4000), b"".join(m4), lambda: os.writev(fd, m4))
    m6 = rnd(60000)
    c2s("sendto", ("recvall", 60000), m6, lambda: sock.sendall(m6))

    # server -> client
    down = []

    def s2c(server_cmd, client_call, receive):
        data = peer.do(*server_cmd)
        wait_readable(sock)
        got = receive()
        eq(got, data, f"bytes the client's {client_call} returned")
        down.append((server_cmd[0], client_call, data))

    def recvmsg_into(sizes):
        bufs = [bytearray(n) for n in sizes]
        n = sock.recvmsg_into(bufs)[0]
        return b"".join(bufs)[:n]

    def readv(sizes):
        bufs = [bytearray(n) for n in sizes]
        n = os.readv(fd, bufs)
        return b"".join(bufs)[:n]

    s2c(("write", rnd(1200)), "read", lambda: os.read(fd, 1200))
    s2c(("send", rnd(2100)), "recvfrom", lambda: sock.recv(4096))
    s2c(("sendmsg", rnd(1000), rnd(1000), rnd(500)), "recvmsg", lambda: recvmsg_into([3, 4000]))
    s2c(("writev", rnd(600), rnd(2000)), "readv", lambda: readv([10, 5000]))

    sock.close()
    eq(peer.do("eof"), b"EOF", "server saw the client's close")
    peer.do("close")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)

    connect_ev = one(of_kind(events, "connect"), "connect event")
    accept_ev = one(of_kind(events, "accept"), "accept event")
    c, s = connect_ev["cookie"], accept_ev["cookie"]
    eq((connect_ev["pid"], connect_ev["tid"], connect_ev["fd"], connect_ev["comm"]), (me, my_tid, fd, my_comm),
       "connect pid/tid/fd/comm")
    eq((accept_ev["pid"], accept_ev["tid"], accept_ev["fd"]), (peer.pid, peer.pid, server_fd), "accept pid/tid/fd")
    client_tuple = (endpoint(sock_local), endpoint(("127.0.0.1", port)))
    server_tuple = (client_tuple[1], client_tuple[0])
    for e in events:
        check(e["cookie"] in (c, s), f"event of another socket: {short(e)}")
        if e["cookie"] == c:
            eq((e["pid"], e["tid"], e["fd"], e["role"], e["comm"]), (me, my_tid, fd, "client", my_comm),
               f"client {e['kind']} identity")
            eq((e["local"], e["remote"]), client_tuple, f"client {e['kind']} tuple")
        else:
            eq((e["pid"], e["tid"], e["fd"], e["role"], e["comm"]), (peer.pid, peer.pid, server_fd, "server",
                                                                    peer.comm), f"server {e['kind']} identity")
            eq((e["local"], e["remote"]), server_tuple, f"server {e['kind']} tuple")
        eq(e["family"], "ipv4", f"family of {e['kind']}")

    def check_syscall(cookie, direction, pos, name, data, who):
        first, chunks = syscall_at(events, cookie, direction, pos, f"{who} {name}")
        where = f"{who} {name} at {pos}"
        eq(first["syscall"], name, f"{where}: syscall")
        eq(first["bytes"], len(data), f"{where}: bytes")
        got = b"".join(payload(x) for x in chunks)
        check(len(got) <= cap, f"{where}: captured {len(got)} > {cap}")
        check(got == data[:len(got)], f"{where}: captured bytes are not the prefix of what moved "
                                      f"(first difference at {next((i for i in range(len(got)) if got[i] != data[i]), -1)})")
        eq(first["truncated"], len(got) < len(data), f"{where}: truncated flag ({len(got)} of {len(data)} captured)")
        for i, x in enumerate(chunks):
            eq(x["chunk_offset"], i * chunk, f"{where}: chunk_offset of chunk {i}")
            eq(x["captured"], min(chunk, len(got) - i * chunk), f"{where}: size of chunk {i}")
            eq(x["syscall"], name, f"{where}: syscall of chunk {i}")
        return got

    pos = 0
    for client_call, server_call, data in up:
        if server_call == "recvall":  # the server may need several reads: check the stream instead
            check_syscall(c, "send", pos, client_call, data, "client")
        else:
            check_syscall(c, "send", pos, client_call, data, "client")
            got = check_syscall(s, "recv", pos, {"recv": "recvfrom"}.get(server_call, server_call), data, "server")
            eq(got, data, f"server {server_call} at {pos}: captured in full")
        pos += len(data)
    eq(check_contiguous(events, c, "send", what="client"), pos, "client send stream length")
    eq(check_contiguous(events, s, "recv", what="server"), pos, "server recv stream length")
    pos = 0
    for server_call, client_call, data in down:
        eq(check_syscall(s, "send", pos, {"send": "sendto"}.get(server_call, server_call), data, "server"), data,
           f"server {server_call}: captured in full")
        eq(check_syscall(c, "recv", pos, client_call, data, "client"), data, f"client {client_call}: captured in full")
        pos += len(data)
    eq(check_contiguous(events, s, "send", what="server"), pos, "server send stream length")
    eq(check_contiguous(events, c, "recv", what="client"), pos, "client recv stream length")

    cc = one(of_kind(events, "close", cookie=c), "client close")
    sc = one(of_kind(events, "close", cookie=s), "server close")
    up_bytes, down_bytes = sum(len(d) for _, _, d in up), pos
    eq((cc["bytes_sent"], cc["bytes_received"], cc["closed_by"]), (up_bytes, down_bytes, "local"),
       "client close sent/received/closed_by")
    eq((sc["bytes_sent"], sc["bytes_received"], sc["closed_by"]), (down_bytes, up_bytes, "peer"),
       "server close sent/received/closed_by")
    summary = weft.summary()
    check(summary["capture_limited"] >= 1, f"summary counts no syscall cut at the capture limit: {summary}")
    eq(summary["ringbuf_full"] + summary["read_failed"] + summary["gaps"], 0, "losses and gaps")


@case(timeout=60)
def tcp_seq_matches_both_ends(ctx):
    """tcp_seq is the TCP sequence number of the event's first byte: tcp_seq - stream_pos is
    one constant per direction, the same on the sending and the receiving end. The client
    reads the response in one recv() that also meets the server's FIN."""
    port = free_port()
    peer = SocketPeer(ctx, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    peer.do("accept")
    request = b"PING " + os.urandom(8).hex().encode() + b"\r\n"
    peer.start("recv", 1000)
    sock.sendall(request)
    eq(peer.result(), request, "request")
    part1, part2 = os.urandom(300), os.urandom(500)
    peer.do("send", part1)
    peer.do("send", part2)
    peer.do("close")
    time.sleep(0.3)  # response and FIN both queued at the client
    got = sock.recv(65536)
    if len(got) < len(part1 + part2):
        wait_readable(sock)
        got += sock.recv(65536)
    eq(got, part1 + part2, "response")
    wait_readable(sock)
    eq(sock.recv(100), b"", "EOF after the response")
    sock.close()
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    c = one(of_kind(events, "connect"), "connect")["cookie"]
    s = one(of_kind(events, "accept"), "accept")["cookie"]

    def bases(cookie, direction):
        return {(e["tcp_seq"] - e["stream_pos"]) % (1 << 32): e
                for e in events if e["kind"] == "data" and e["cookie"] == cookie and e["direction"] == direction}

    for sender, receiver, what in ((c, s, "request (client -> server)"), (s, c, "response (server -> client)")):
        sb, rb = bases(sender, "send"), bases(receiver, "recv")
        check(len(sb) == 1, f"{what}: tcp_seq - stream_pos varies on the sending side: "
                            + "; ".join(f"seq={e['tcp_seq']} pos={e['stream_pos']}" for e in sb.values()))
        check(len(rb) == 1, f"{what}: tcp_seq - stream_pos varies on the receiving side: "
                            + "; ".join(f"seq={e['tcp_seq']} pos={e['stream_pos']} bytes={e['bytes']}"
                                        for e in rb.values()))
        send_base, recv_base = next(iter(sb)), next(iter(rb))
        r = next(iter(rb.values()))
        check(send_base == recv_base,
              f"{what}: the receiver's tcp_seq is off by {(recv_base - send_base) % (1 << 32)}: the bytes at "
              f"stream_pos {r['stream_pos']} have tcp_seq {(send_base + r['stream_pos']) % (1 << 32)} on the "
              f"sending end but tcp_seq {r['tcp_seq']} in the receiver's {r['syscall']} of {r['bytes']} bytes")


@case(timeout=60)
def existing_connection(ctx):
    """A connection opened before weft started: one `existing` event per end with the right
    pid/fd/tuple/role, then data events for the same cookies, positions counted from weft's
    start, and close totals. A second weft with --no-existing reports no `existing` events.
    The traffic starts 0.3 s after weft says it is capturing."""
    check_existing(ctx, pause=0.3)


@case(timeout=60)
def existing_connection_traffic_at_once(ctx):
    """The same, with the traffic (and the close) right after weft prints 'capturing', as a
    script waiting for that line does: the connection was open when weft said it was capturing,
    so it must still be reported as existing, with roles on its data events."""
    check_existing(ctx, pause=0)


def check_existing(ctx, pause):
    port = free_port()
    peer = SocketPeer(ctx, port)
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    server_fd = peer.do("accept")
    before = os.urandom(100)
    peer.start("recv", 1000)
    sock.sendall(before)  # traffic before weft: not seen, and not counted in positions
    eq(peer.result(), before, "bytes before weft")
    me, my_comm = os.getpid(), read_comm(os.getpid())
    client_local, client_fd = sock.getsockname(), sock.fileno()

    quiet = start_weft(ctx, ["events", "--json", "--port", str(port), "--no-existing"], label="no-existing")
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    if pause:
        time.sleep(pause)
    # The request, response and close, `pause` seconds after "capturing".
    request = b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n"
    peer.start("recv", 1000)
    sock.sendall(request)
    eq(peer.result(), request, "request")
    response = peer.do("send", b"HTTP/1.1 204 No Content\r\n\r\n")
    wait_readable(sock)
    eq(sock.recv(1000), response, "response")
    sock.close()
    eq(peer.do("eof"), b"EOF", "EOF at the server")
    peer.do("close")
    for w in (weft, quiet):
        w.stop()
        w.expect_clean_exit()
    events = weft.events()
    check_schema(events)

    existing = of_kind(events, "existing")
    check(len(existing) == 2, f"expected 2 existing events (one per end of the connection that was open when "
                              f"weft printed 'capturing', traffic {pause * 1000:.0f} ms later), got "
                              f"{len(existing)}; all events:\n    {describe(events)}")
    ce = one([e for e in existing if e["role"] == "client"], "existing event with role client")
    se = one([e for e in existing if e["role"] == "server"], "existing event with role server")
    eq((ce["pid"], ce["fd"], ce["comm"]), (me, client_fd, my_comm),
       "client existing pid/fd/comm")
    eq((ce["local"], ce["remote"]), (endpoint(client_local), endpoint(("127.0.0.1", port))), "client existing tuple")
    eq((se["pid"], se["fd"], se["comm"]), (peer.pid, server_fd, peer.comm), "server existing pid/fd/comm")
    eq((se["local"], se["remote"]), (endpoint(("127.0.0.1", port)), endpoint(client_local)), "server existing tuple")
    for e in existing:
        eq(e["family"], "ipv4", "existing family")
    c, s = ce["cookie"], se["cookie"]
    check(c != s, "both ends share a cookie")
    eq(of_kind(events, "connect") + of_kind(events, "accept"), [], "connect/accept events for an existing connection")

    for cookie, direction, data, who in ((c, "send", request, "client"), (s, "recv", request, "server"),
                                         (s, "send", response, "server"), (c, "recv", response, "client")):
        eq(check_contiguous(events, cookie, direction, start=0, what=who), len(data),
           f"{who} {direction} bytes since weft started (positions from 0)")
        eq(stream_payload(events, cookie, direction), data, f"{who} {direction} payload")
        first = syscalls(events, cookie, direction)[0][0]
        eq(first["role"], who, f"role of the {who}'s first {direction} data event, {pause * 1000:.0f} ms after "
                               f"'capturing' (the existing-connection scan had not seeded the kernel yet?)")
    for e in events:
        check(e["cookie"] in (c, s), f"event for another socket: {short(e)}")
        ref = ce if e["cookie"] == c else se
        eq((e["pid"], e["comm"], e["fd"], e["family"], e["local"], e["remote"]),
           (ref["pid"], ref["comm"], ref["fd"], "ipv4", ref["local"], ref["remote"]),
           f"pid/comm/fd/family/tuple of a {ref['role']} {e['kind']} event")
    cc = one(of_kind(events, "close", cookie=c), "client close")
    sc = one(of_kind(events, "close", cookie=s), "server close")
    eq((cc["pid"], cc["role"], cc["bytes_sent"], cc["bytes_received"], cc["closed_by"]),
       (me, "client", len(request), len(response), "local"), "client close pid/role/sent/received/closed_by")
    eq((sc["pid"], sc["role"], sc["bytes_sent"], sc["bytes_received"], sc["closed_by"]),
       (peer.pid, "server", len(response), len(request), "peer"), "server close pid/role/sent/received/closed_by")

    q = quiet.events()
    check_schema(q)
    eq(of_kind(q, "existing"), [], "existing events with --no-existing")
    eq(quiet.summary()["existing"], 0, "summary existing count with --no-existing")
    check({e["cookie"] for e in of_kind(q, "data")} == {c, s},
          f"--no-existing run does not show the data of both ends:\n    {describe(q)}")


@case(timeout=60)
def close_of_connection_seen_mid_stream(ctx):
    """With --no-existing, a connection opened before weft is first seen through its data: the
    data events name the owner (pid, comm, fd), and so must its close event (the owner of the
    socket, docs/events.md), not pid 0 with an empty comm."""
    port = free_port()
    peer = SocketPeer(ctx, port)
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    server_fd = peer.do("accept")
    me, my_comm, client_fd = os.getpid(), read_comm(os.getpid()), sock.fileno()
    weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--no-existing"])
    time.sleep(0.3)
    peer.start("recv", 100)
    sock.sendall(b"ping")
    eq(peer.result(), b"ping", "request")
    peer.do("send", b"pong")
    wait_readable(sock)
    eq(sock.recv(100), b"pong", "response")
    sock.close()
    eq(peer.do("eof"), b"EOF", "EOF at the server")
    peer.do("close")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    owners = {}
    for e in of_kind(events, "data"):
        owners.setdefault(e["cookie"], (e["pid"], e["comm"], e["fd"]))
    eq(sorted(owners.values()), sorted([(me, my_comm, client_fd), (peer.pid, peer.comm, server_fd)]),
       "owners (pid, comm, fd) named by the data events")
    for cookie, owner in owners.items():
        close = one(of_kind(events, "close", cookie=cookie), f"close event of cookie {cookie}")
        eq((close["pid"], close["comm"], close["fd"]), owner, f"close event owner (pid, comm, fd) of cookie {cookie}")
        eq((close["bytes_sent"] + close["bytes_received"]), 8, "close byte totals since weft started")


@case(timeout=60)
def failed_connect(ctx):
    """Connecting to a closed port (curl, and a plain connect() from this process): a connect
    event with result -111 / ECONNREFUSED, and no data, accept or close events."""
    port = free_port()
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    pid, res = curl(ctx, [f"http://127.0.0.1:{port}/"])
    eq(res.returncode, 7, f"curl exit code for a refused connection (stderr {res.stderr!r})")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ctx.on_cleanup(sock.close)
    err = sock.connect_ex(("127.0.0.1", port))
    eq(err, errno.ECONNREFUSED, "connect_ex result")
    fd = sock.fileno()
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    # Nothing listens on the port, so another process's outgoing connection could, rarely, get
    # it as its local port: look only at curl and this process.
    events = [e for e in events if e["pid"] in (pid, os.getpid())]
    # The kernel's TCP facts (docs/network.md) say why: each socket received a reset while in
    # SYN_SENT (2), then closed.
    for p in (pid, os.getpid()):
        tcp = [(e["tcp"]["what"], e["tcp"]["state"]) for e in events if e["kind"] == "tcp" and e["pid"] == p]
        eq(tcp, [("reset_received", 2), ("closed", 2)], f"TCP records of pid {p}")
    events = [e for e in events if e["kind"] != "tcp"]
    eq(sorted({e["kind"] for e in events}), ["connect"], f"event kinds; got:\n    {describe(events)}")
    eq(len(events), 2, f"connect events (curl + python); got:\n    {describe(events)}")
    by_pid = {e["pid"]: e for e in events}
    check(set(by_pid) == {pid, os.getpid()}, f"connect event pids {sorted(by_pid)} vs curl {pid} and "
                                             f"this process {os.getpid()}")
    for who, e in (("curl", by_pid[pid]), ("python", by_pid[os.getpid()])):
        eq(e["result"], -111, f"{who} connect result")
        eq(e["error"], "ECONNREFUSED", f"{who} connect error")
        eq(e["role"], "client", f"{who} role")
        eq(e["remote"], endpoint(("127.0.0.1", port)), f"{who} remote endpoint")
        eq(e["local"]["address"], "127.0.0.1", f"{who} local address")
        check(e["local"]["port"] > 0, f"{who} connect event without the local port: {short(e)}")
        check(e["fd"] >= 0, f"{who} connect event without the fd: {short(e)}")
    eq(by_pid[pid]["comm"], "curl", "curl comm")
    eq(by_pid[os.getpid()]["fd"], fd, "python connect fd")
    check(weft.summary()["connect"] >= 2, "summary connect count")


@case(timeout=60)
def writev_many_iovecs(ctx):
    """A writev of 200 iovecs of 10 bytes: weft may stop walking the iovecs early, but what it
    captured is the prefix of the bytes, and an event that carries less than the syscall moved
    says so (truncated)."""
    port = free_port()
    peer = SocketPeer(ctx, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    peer.do("accept")
    parts = [os.urandom(10) for _ in range(200)]
    data = b"".join(parts)
    peer.start("recvall", len(data))
    eq(os.writev(sock.fileno(), parts), len(data), "writev result")
    eq(peer.result(), data, "bytes the server received")
    sock.close()
    peer.do("eof")
    peer.do("close")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    c = one(of_kind(events, "connect"), "connect")["cookie"]
    first, chunks = one(syscalls(events, c, "send"), "writev syscall")
    eq((first["syscall"], first["bytes"]), ("writev", len(data)), "syscall and bytes")
    got = b"".join(payload(x) for x in chunks)
    check(got == data[:len(got)], "captured bytes are not the prefix of the iovecs' bytes")
    check(len(got) > 0, "nothing captured from the writev")
    for x in chunks:
        eq(x["truncated"], len(got) < len(data),
           f"truncated flag of a writev event that captured {len(got)} of {len(data)} bytes")
    if len(got) < len(data):
        check(weft.summary()["capture_limited"] >= 1, "summary counts no syscall cut at the capture limit")


@case(timeout=60)
def ipv4_mapped_on_ipv6_socket(ctx):
    """An IPv6 server socket bound to ::ffff:127.0.0.1 accepting an IPv4 client: the server's
    events say family ipv6 with dotted IPv4 addresses; the client's say ipv4."""
    port = free_port()
    peer = SocketPeer(ctx, port, addr="::ffff:127.0.0.1")
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    sock = connect(port)
    ctx.on_cleanup(sock.close)
    peer.do("accept")
    peer.start("recv", 100)
    sock.sendall(b"hello")
    eq(peer.result(), b"hello", "bytes at the server")
    peer.do("send", b"world")
    wait_readable(sock)
    eq(sock.recv(100), b"world", "bytes at the client")
    local = sock.getsockname()
    sock.close()
    peer.do("eof")
    peer.do("close")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    c = one(of_kind(events, "connect"), "connect")["cookie"]
    s = one(of_kind(events, "accept"), "accept")["cookie"]
    for e in events:
        if e["cookie"] == c:
            eq((e["family"], e["local"], e["remote"]), ("ipv4", endpoint(local), endpoint(("127.0.0.1", port))),
               f"client {e['kind']} family and tuple")
        else:
            eq(e["cookie"], s, "cookie")
            eq((e["family"], e["local"], e["remote"]), ("ipv6", endpoint(("127.0.0.1", port)), endpoint(local)),
               f"server {e['kind']} family and tuple (v4-mapped shown dotted)")
    eq(stream_payload(events, s, "recv"), b"hello", "server recv payload")
    eq(stream_payload(events, c, "recv"), b"world", "client recv payload")
