"""HTTP traffic between real servers (python3 http.server, nginx) and curl."""
import os
import re
import time

from harness import (TestFailure, case, check, check_contiguous, check_schema, describe, eq, free_port,
                     free_port_both, of_kind, one, payload, short, start_weft, stream_payload, syscalls,
                     tuple_of)
from peers import HttpServer, Nginx, curl


def make_site(ctx, name, size, text=True):
    """A directory with one file of `size` random bytes (hex text if `text`); returns (root, body)."""
    root = ctx.path("www")
    os.makedirs(root, exist_ok=True)
    body = os.urandom(size // 2 + 1).hex().encode()[:size] if text else os.urandom(size)
    with open(os.path.join(root, name), "wb") as f:
        f.write(body)
    return root, body


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def split_requests(stream):
    """HTTP requests without bodies, as sent one after the other."""
    requests = []
    while stream:
        end = stream.find(b"\r\n\r\n")
        check(end >= 0, f"incomplete request in the captured bytes: {stream[:200]!r}")
        requests.append(stream[:end + 4])
        stream = stream[end + 4:]
    return requests


def split_responses(stream):
    """(header bytes, body bytes) of HTTP/1.1 responses with Content-Length."""
    responses = []
    while stream:
        end = stream.find(b"\r\n\r\n")
        check(end >= 0, f"incomplete response header in the captured bytes: {stream[:200]!r}")
        head = stream[:end + 4]
        m = re.search(rb"\r\ncontent-length: *(\d+)\r\n", head, re.I)
        check(m, f"response without Content-Length: {head!r}")
        length = int(m.group(1))
        body = stream[end + 4:end + 4 + length]
        eq(len(body), length, "captured body length of a response")
        responses.append((head, body))
        stream = stream[end + 4 + length:]
    return responses


def check_sides(events, client_pid, client_comm, server_pids, server_comm, port, address="127.0.0.1"):
    """The connect/accept pair of one connection and the per-side identity of every event.
    Returns (client cookie, server cookie, connect event, accept event)."""
    connect = one(of_kind(events, "connect"), "connect event")
    accept = one(of_kind(events, "accept"), "accept event")
    eq(connect["result"], 0, "connect result")
    eq(connect["error"], "", "connect error text")
    eq(connect["pid"], client_pid, "connect pid (the client's)")
    eq(connect["comm"], client_comm, "connect comm")
    eq(connect["role"], "client", "connect role")
    eq(connect["remote"], {"address": address, "port": port}, "connect remote endpoint")
    eq(connect["local"]["address"], address, "connect local address")
    check(connect["fd"] >= 0, f"connect event without the client's fd: {short(connect)}")
    check(accept["pid"] in server_pids, f"accept pid {accept['pid']} is not the server's {server_pids}")
    eq(accept["comm"], server_comm, "accept comm")
    eq(accept["role"], "server", "accept role")
    eq(accept["local"], {"address": address, "port": port}, "accept local endpoint")
    check(accept["fd"] >= 0, f"accept event without the accepted fd: {short(accept)}")
    check(accept["queued_ns"] >= 0, "accept queued_ns")
    c, s = connect["cookie"], accept["cookie"]
    check(c != s, f"the two ends of a loopback connection share cookie {c}")
    ct, st = tuple_of(connect), tuple_of(accept)
    eq(ct[0], st[1], "client local endpoint vs server remote endpoint")
    eq(ct[1], st[0], "client remote endpoint vs server local endpoint")
    for e in events:
        if e["cookie"] == c:
            side, pid_ok, comm, role, tup, fd = "client", e["pid"] == client_pid, client_comm, "client", ct, connect["fd"]
        elif e["cookie"] == s:
            side, pid_ok, comm, role, tup, fd = "server", e["pid"] in server_pids, server_comm, "server", st, accept["fd"]
        else:
            raise TestFailure(f"event of another connection (filter leak?): {short(e)}")
        check(pid_ok, f"{side} event with the wrong pid: {short(e)}")
        eq(e["comm"], comm, f"comm of a {side} {e['kind']} event")
        eq(e["role"], role, f"role of a {side} {e['kind']} event")
        eq(tuple_of(e), tup, f"tuple of a {side} {e['kind']} event")
        eq(e["fd"], fd, f"fd of a {side} {e['kind']} event")
        eq(e["family"], "ipv6" if ":" in address else "ipv4", f"family of a {side} event")
    return c, s, connect, accept


def check_closes(events, c, s, c_sent, c_received):
    """One close event per end, byte totals agreeing with the streams."""
    cc = one(of_kind(events, "close", cookie=c), "close event for the client socket")
    sc = one(of_kind(events, "close", cookie=s), "close event for the server socket")
    eq(cc["bytes_sent"], c_sent, "client close bytes_sent")
    eq(cc["bytes_received"], c_received, "client close bytes_received")
    eq(sc["bytes_sent"], c_received, "server close bytes_sent")
    eq(sc["bytes_received"], c_sent, "server close bytes_received")
    for e in (cc, sc):
        check(e["closed_by"] in ("local", "peer"), f"close without closed_by: {short(e)}")
        check(e["duration_ns"] > 0, f"close without a duration: {short(e)}")
    check(not (cc["closed_by"] == "peer" and sc["closed_by"] == "peer"),
          "both ends say the peer closed first")
    return cc, sc


def check_no_losses(summary):
    for k in ("ringbuf_full", "map_full", "read_failed", "no_cookie", "gaps", "overlaps", "malformed"):
        eq(summary[k], 0, f"summary {k}")


@case(timeout=60)
def http_server_and_curl(ctx):
    """python3 http.server + curl: exact request and response bytes on both ends, identities,
    tuples, roles, positions, connect/accept/close."""
    port = free_port()
    name = f"page-{os.urandom(4).hex()}.txt"
    root, body = make_site(ctx, name, 1500)
    srv = HttpServer(ctx, root, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    url = f"http://127.0.0.1:{port}/{name}"
    pid, res = curl(ctx, ["-D", ctx.path("headers"), "-o", ctx.path("body"), url])
    eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
    eq(read_file(ctx.path("body")), body, "body curl received")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    check(events, "no events at all for the connection")

    c, s, connect, accept = check_sides(events, pid, "curl", [srv.pid], srv.comm, port)
    for e in events:
        if e["cookie"] == s:
            eq(e["exe"], srv.exe, "exe of a server event")
    sent = check_contiguous(events, c, "send", what="client")
    received = check_contiguous(events, c, "recv", what="client")
    eq(check_contiguous(events, s, "recv", what="server"), sent, "bytes the server received vs the client sent")
    eq(check_contiguous(events, s, "send", what="server"), received, "bytes the server sent vs the client received")

    request = stream_payload(events, c, "send")
    eq(stream_payload(events, s, "recv"), request, "request bytes as the server read them")
    reqs = split_requests(request)
    eq(len(reqs), 1, "requests in the client's send stream")
    lines = request.split(b"\r\n")
    eq(lines[0], f"GET /{name} HTTP/1.1".encode(), "request line")
    check(f"Host: 127.0.0.1:{port}".encode() in lines[1:], f"no Host header in {request!r}")
    check(any(l.startswith(b"User-Agent: curl/") for l in lines), f"no curl User-Agent in {request!r}")

    response = stream_payload(events, c, "recv")
    eq(stream_payload(events, s, "send"), response, "response bytes as the server wrote them")
    headers = read_file(ctx.path("headers"))
    check(response.startswith(b"HTTP/1.0 200 OK\r\n"), f"status line: {response[:40]!r}")
    eq(response, headers + body, "response bytes (curl's received headers + body)")

    # Within each process, things happen in program order: connect before the request and the
    # response after it; accept before the read and the read before the response is written.
    # (Across the two processes the order of nearly simultaneous events is not defined.)
    firsts = {(e["cookie"], e["direction"]): e["mono_ns"] for e in reversed(events) if e["kind"] == "data"}
    check(connect["mono_ns"] <= firsts[(c, "send")] <= firsts[(c, "recv")],
          "client events out of order (connect, send, recv)")
    check(accept["mono_ns"] <= firsts[(s, "recv")] <= firsts[(s, "send")],
          "server events out of order (accept, recv, send)")

    check_closes(events, c, s, len(request), len(response))
    summary = weft.summary()
    eq(summary["data"], len(of_kind(events, "data")), "summary data count")
    eq((summary["connect"], summary["accept"], summary["close"]), (1, 1, 2), "summary connect/accept/close")
    eq(summary["bytes_moved"], 2 * (len(request) + len(response)), "summary bytes moved")
    check_no_losses(summary)


@case(timeout=60)
def nginx_keepalive(ctx):
    """curl fetching one URL 4 times over one kept-alive connection to nginx."""
    repeats = 4
    port = free_port_both()
    name = "keep.txt"
    root, body = make_site(ctx, name, 700)
    nginx = Nginx(ctx, root, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    url = f"http://127.0.0.1:{port}/{name}"
    pid, res = curl(ctx, [url] * repeats)
    eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
    eq(res.stdout, body * repeats, "bodies curl printed")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)

    c, s, connect, accept = check_sides(events, pid, "curl", nginx.workers, "nginx", port)
    sends = syscalls(events, c, "send")
    eq(len(sends), repeats, "send syscalls by curl (one per request)")
    expected_pos, pos = [], 0
    for first, chunks in sends:
        expected_pos.append(pos)
        pos += first["bytes"]
    eq([first["stream_pos"] for first, _ in sends], expected_pos, "stream_pos of curl's sends")
    recvs = syscalls(events, s, "recv")
    eq([first["stream_pos"] for first, _ in recvs], expected_pos, "stream_pos of nginx's reads")
    eq([first["bytes"] for first, _ in recvs], [first["bytes"] for first, _ in sends],
       "bytes of nginx's reads vs curl's sends")

    request_stream = stream_payload(events, c, "send")
    eq(stream_payload(events, s, "recv"), request_stream, "request bytes as nginx read them")
    requests = split_requests(request_stream)
    eq(len(requests), repeats, "requests parsed from the captured bytes")
    for r in requests:
        check(r.startswith(f"GET /{name} HTTP/1.1\r\n".encode()), f"request line of {r[:60]!r}")
        check(f"\r\nHost: 127.0.0.1:{port}\r\n".encode() in r, f"Host header in {r!r}")
    for (first, _), r in zip(sends, requests):
        eq(first["bytes"], len(r), "a send syscall carries exactly one request")

    response_stream = stream_payload(events, c, "recv")
    eq(stream_payload(events, s, "send"), response_stream, "response bytes as nginx wrote them")
    check_contiguous(events, c, "recv", what="client")
    check_contiguous(events, s, "send", what="server")
    responses = split_responses(response_stream)
    eq(len(responses), repeats, "responses parsed from the captured bytes")
    for head, got in responses:
        check(head.startswith(b"HTTP/1.1 200 OK\r\n"), f"status line {head[:30]!r}")
        eq(got, body, "response body")
    check_closes(events, c, s, len(request_stream), len(response_stream))
    check_no_losses(weft.summary())


def check_large_response(ctx, sendfile, cap, chunk):
    size = 5 * 1024 * 1024
    port = free_port_both()
    name = "big.bin"
    root, body = make_site(ctx, name, size, text=False)
    nginx = Nginx(ctx, root, port, sendfile=sendfile)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--capture-bytes", str(cap),
                            "--chunk-bytes", str(chunk), "--ringbuf-bytes", str(32 << 20)])
    pid, res = curl(ctx, ["-D", ctx.path("headers"), "-o", ctx.path("got"), "-w", "%{size_header}",
                          f"http://127.0.0.1:{port}/{name}"])
    eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
    check(read_file(ctx.path("got")) == body, "curl did not receive the file intact")
    headers = read_file(ctx.path("headers"))
    eq(int(res.stdout), len(headers), "curl's size_header vs the headers it saved")
    total = len(headers) + size
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    summary = weft.summary()
    check_no_losses(summary)
    c, s, _, _ = check_sides(events, pid, "curl", nginx.workers, "nginx", port)
    expected_stream = headers + body

    for cookie, direction, who in ((c, "recv", "client"), (s, "send", "server")):
        firsts = [first for first, _ in syscalls(events, cookie, direction)]
        moved = sum(e["bytes"] for e in events
                    if e["kind"] == "data" and e["cookie"] == cookie and e["direction"] == direction
                    and e["chunk_offset"] == 0)
        eq(moved, total, f"sum of bytes over {who} {direction} events (chunk_offset 0) = 5 MiB + headers")
        eq(check_contiguous(events, cookie, direction, what=who), total, f"{who} {direction} stream length")
        for first, chunks in syscalls(events, cookie, direction):
            got = b"".join(payload(x) for x in chunks)
            where = f"{who} {direction} {first['syscall']} at {first['stream_pos']} ({first['bytes']} bytes)"
            for x in chunks:
                check(x["captured"] <= chunk, f"{where}: chunk of {x['captured']} bytes > --chunk-bytes {chunk}")
            check(len(got) <= cap, f"{where}: captured {len(got)} bytes > --capture-bytes {cap}")
            if first["syscall"] in ("sendfile", "splice", "unknown"):
                eq(len(got), 0, f"{where}: bytes captured from a syscall with no user buffer")
            else:
                eq(len(got), min(first["bytes"], cap), f"{where}: captured bytes")
            eq(first["truncated"], len(got) < first["bytes"], f"{where}: truncated flag")
            start = first["stream_pos"]
            check(got == expected_stream[start:start + len(got)],
                  f"{where}: captured bytes differ from the bytes at that position of the response")
        if sendfile and who == "server":
            check(any(e["syscall"] == "sendfile" for e in firsts),
                  f"nginx with sendfile on: no sendfile data events ({sorted({e['syscall'] for e in firsts})})")
    request = stream_payload(events, c, "send")
    check(request.startswith(f"GET /{name} HTTP/1.1\r\n".encode()), f"request line {request[:50]!r}")
    eq(stream_payload(events, s, "recv"), request, "request as nginx read it")
    eq(check_contiguous(events, c, "send", what="client"), len(request), "client send stream")
    eq(check_contiguous(events, s, "recv", what="server"), len(request), "server recv stream")
    check_closes(events, c, s, len(request), total)
    eq(summary["bytes_moved"], 2 * (total + len(request)), "summary bytes moved")


@case(timeout=90)
def nginx_5mib_response(ctx):
    """A 5 MiB file from nginx (write/writev): exact byte counts on both ends, captured prefix
    per syscall bounded by --capture-bytes and split by --chunk-bytes, payloads at the right
    positions, close totals."""
    check_large_response(ctx, sendfile=False, cap=10000, chunk=3000)


@case(timeout=90)
def nginx_5mib_sendfile(ctx):
    """The same 5 MiB with sendfile on: the body moves with no user buffer, so weft counts the
    bytes without capturing them; totals still exact."""
    check_large_response(ctx, sendfile=True, cap=4096, chunk=4096)


@case(timeout=60)
def ipv6_loopback(ctx):
    """curl -g http://[::1]:PORT/ to http.server on ::1: family ipv6, addresses ::1 everywhere."""
    port = free_port_both()
    name = "six.txt"
    root, body = make_site(ctx, name, 300)
    srv = HttpServer(ctx, root, port, addr="::1")
    weft = start_weft(ctx, ["events", "--json", "--port", str(port)])
    pid, res = curl(ctx, ["-g", f"http://[::1]:{port}/{name}"])
    eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
    eq(res.stdout, body, "body")
    weft.stop()
    weft.expect_clean_exit()
    events = weft.events()
    check_schema(events)
    c, s, _, _ = check_sides(events, pid, "curl", [srv.pid], srv.comm, port, address="::1")
    for e in events:
        eq(e["family"], "ipv6", f"family of {e['kind']}")
        eq((e["local"]["address"], e["remote"]["address"]), ("::1", "::1"), f"addresses of {short(e)}")
    request = stream_payload(events, c, "send")
    check(request.startswith(f"GET /{name} HTTP/1.1\r\n".encode()), f"request line {request[:50]!r}")
    check(f"\r\nHost: [::1]:{port}\r\n".encode() in request, f"Host header in {request!r}")
    eq(stream_payload(events, s, "recv"), request, "request as the server read it")
    response = stream_payload(events, c, "recv")
    check(response.endswith(body), "response does not end with the body")
    eq(stream_payload(events, s, "send"), response, "response as the server wrote it")
    for cookie, direction, n in ((c, "send", len(request)), (s, "recv", len(request)),
                                 (s, "send", len(response)), (c, "recv", len(response))):
        eq(check_contiguous(events, cookie, direction), n, f"{direction} stream length")
    check_closes(events, c, s, len(request), len(response))


@case(timeout=60)
def filters_pid_and_comm(ctx):
    """--pid and --comm keep only that process's events (two weft instances at once)."""
    port = free_port()
    root, body = make_site(ctx, "f.txt", 100)
    srv = HttpServer(ctx, root, port)
    by_pid = start_weft(ctx, ["events", "--json", "--pid", str(srv.pid)], label="by-pid")
    by_comm = start_weft(ctx, ["events", "--json", "--comm", "curl", "--port", str(port)], label="by-comm")
    pid, res = curl(ctx, [f"http://127.0.0.1:{port}/f.txt"])
    eq(res.returncode, 0, "curl exit code")
    for w in (by_pid, by_comm):
        w.stop()
        w.expect_clean_exit()
    pe, ce = by_pid.events(), by_comm.events()
    check_schema(pe + ce)
    check(pe and all(e["pid"] == srv.pid for e in pe), f"--pid {srv.pid} output:\n    {describe(pe)}")
    # Besides the kernel's TCP facts (`tcp` records, docs/network.md).
    eq(sorted({e["kind"] for e in pe} - {"tcp"}), ["accept", "close", "data"], "event kinds for the server pid")
    check(ce and all(e["comm"] == "curl" and e["pid"] == pid for e in ce), f"--comm curl output:\n    {describe(ce)}")
    eq(sorted({e["kind"] for e in ce} - {"tcp"}), ["close", "connect", "data"], "event kinds for curl")


@case(timeout=60)
def accept_modes(ctx):
    """The accept event by default (seen at the server's first I/O: at_first_io true, the
    handler thread) and with --exact-accept (seen at accept(): at_first_io false, the accepting
    thread), from two weft instances watching the same connection."""
    port = free_port()
    root, body = make_site(ctx, "a.txt", 100)
    srv = HttpServer(ctx, root, port)
    default = start_weft(ctx, ["events", "--json", "--port", str(port)], label="default")
    exact = start_weft(ctx, ["events", "--json", "--port", str(port), "--exact-accept"], label="exact")
    pid, res = curl(ctx, [f"http://127.0.0.1:{port}/a.txt"])
    eq(res.returncode, 0, "curl exit code")
    for w in (default, exact):
        w.stop()
        w.expect_clean_exit()
    de, ee = default.events(), exact.events()
    check_schema(de + ee)
    da = one(of_kind(de, "accept"), "accept event (default)")
    ea = one(of_kind(ee, "accept"), "accept event (--exact-accept)")
    eq(da["cookie"], ea["cookie"], "cookie of the accepted socket in both modes")
    eq(da.get("at_first_io"), True, "at_first_io by default")
    eq(ea.get("at_first_io"), False, "at_first_io with --exact-accept")
    for a, events, mode in ((da, de, "default"), (ea, ee, "--exact-accept")):
        eq((a["pid"], a["comm"], a["role"]), (srv.pid, srv.comm, "server"), f"accept pid/comm/role ({mode})")
        first_io = [e for e in events if e["kind"] == "data" and e["cookie"] == a["cookie"]][0]
        eq(a["fd"], first_io["fd"], f"accept fd vs the server's first read ({mode})")
        check(a["mono_ns"] <= first_io["mono_ns"], f"accept after the server's first read ({mode})")
        check(a["queued_ns"] >= 0, f"queued_ns ({mode})")
    first_io = [e for e in de if e["kind"] == "data" and e["cookie"] == da["cookie"]][0]
    eq(da["tid"], first_io["tid"], "default accept tid: the thread of the first I/O")
    eq(ea["tid"], srv.pid, "--exact-accept tid: http.server accepts in its main thread")
    check(ea["queued_ns"] <= da["queued_ns"], "queued until accept() is longer than queued until first I/O")
