"""`weft exchanges`: HTTP/1 requests paired with their responses from the bytes the kernel
moved, on both ends of each loopback connection (the client's exchange and the server's).

weft's summary counters count every connection weft saw on the machine (--port only chooses
which exchanges are printed). The tests compare them exactly only for a run in which weft
tracked no connection but the test's own: a scenario is tried up to three times for such a
quiet run; after that, the expected counts are lower bounds (other traffic can only add).
"""
import json
import os
import re
import socket
import subprocess
import time
from types import SimpleNamespace

import harness
from harness import (TestFailure, case, check, eq, free_port, free_port_both, run, start_weft, syscalls,
                     wait_listening)
from peers import PYTHON, HttpServer, Nginx, curl, python_peer, read_comm, read_line
from suite_traffic import make_site

TIMING_FIELDS = ("start_ns", "end_ns", "start_tid", "end_tid", "stream_pos", "tcp_seq", "bytes", "body_bytes",
                 "truncated")
EXCHANGE_FIELDS = ("protocol", "side", "time", "duration_ns", "method", "target", "version", "status", "request",
                   "response", "request_headers", "response_headers", "response_end_inferred", "pid", "comm", "exe",
                   "fd", "cookie", "family", "local", "remote")
KEPT_HEADERS = {"host", "user-agent", "content-type", "content-length", "transfer-encoding", "connection", "upgrade",
                "expect", "traceparent", "tracestate", "b3", "uber-trace-id"}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
# curl -w: one line per transfer.
CURL_SIZES = "%{http_code} %{size_request} %{size_header} %{size_download} %{num_connects}\\n"

SUMMARY_SHOWN = re.compile(r"^weft exchanges: (\d+) shown; connections: (\d+) tracked, (\d+) undetected "
                           r"\((\d+) bytes looked past\), (\d+) detected after a miss, (\d+) evicted, "
                           r"(\d+) idle-expired, (\d+) late bytes, (\d+) sequence mismatches, "
                           r"(\d+) TLS connections read as plaintext \((\d+) ciphertext bytes not parsed\), "
                           r"(\d+) body bytes left uncopied by (\d+) skip verdicts$")
SUMMARY_HTTP1 = re.compile(r"^weft exchanges: http1: (\d+) exchanges, (\d+) messages, parse_errors=(\d+) "
                           r"resyncs=(\d+) unmatched_requests=(\d+) unmatched_responses=(\d+) truncated=(\d+) "
                           r"skipped_bytes=(\d+) not_replies=(\d+) weak_rejected=(\d+)$")
# Every registered protocol prints the same counters.
SUMMARY_PROTOCOL = re.compile(r"^weft exchanges: [a-z0-9_]+: (\d+) exchanges, (\d+) messages, parse_errors=(\d+) "
                              r"resyncs=(\d+) unmatched_requests=(\d+) unmatched_responses=(\d+) truncated=(\d+) "
                              r"skipped_bytes=(\d+) not_replies=(\d+) weak_rejected=(\d+)$")
SUMMARY_LOSSES = re.compile(r"^weft exchanges: kernel losses: (.*); stream gaps=(\d+) \((\d+) bytes\) "
                            r"overlaps=(\d+) late=(\d+) malformed=(\d+); "
                            r"order window (\d+) ms$")
TEXT_LINE = re.compile(r"^(\d\d:\d\d:\d\d\.\d{6}) (client|server) (.+)\[(\d+)/(\d+)\] (\S+) (\S+) -> (\d+) "
                       r"(\d+\.\d{3})ms (\S+) (<-|->) (\S+)( \[headers truncated\])?( \[end inferred\])?$")


# ---------------------------------------------------------------------------------------------
# Reading `weft exchanges`


def parse_exchanges(raw):
    out = []
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            x = json.loads(line)
        except json.JSONDecodeError as err:
            raise TestFailure(f"line {n} of `weft exchanges --json` is not JSON ({err}): {line[:200]!r}")
        check(isinstance(x, dict) and "protocol" in x, f"line {n} is not an exchange object: {line[:200]!r}")
        out.append(x)
    return out


def parse_exchange_summary(lines):
    """The three summary lines of `weft exchanges` as one dict; raises if one is missing."""
    out = {}
    for line in lines:
        m = SUMMARY_SHOWN.match(line)
        if m:
            out.update(zip(("shown", "tracked", "undetected", "detect_bytes", "redetected", "evicted",
                            "idle_expired", "late_bytes", "sequence_mismatches", "tls_connections",
                            "superseded_bytes", "uncopied_bytes", "skip_verdicts"),
                           map(int, m.groups())))
        m = SUMMARY_HTTP1.match(line)
        if m:
            out.update(zip(("exchanges", "messages", "parse_errors", "resyncs", "unmatched_requests",
                            "unmatched_responses", "truncated", "skipped_bytes", "not_replies",
                            "weak_rejected"), map(int, m.groups())))
        m = SUMMARY_LOSSES.match(line)
        if m:
            for item in m.group(1).split():
                k, v = item.split("=")
                out["kernel_" + k] = int(v)
            out["gaps"] = int(m.group(2))
    check(all(k in out for k in ("shown", "exchanges", "kernel_ringbuf_full")),
          "weft exchanges did not print its three summary lines on stderr; stderr was:\n  " + "\n  ".join(lines))
    return out


def brief(x):
    return (f"{x['side']} {x['comm']}[{x['pid']}] cookie={x['cookie']} {x['method']} {x['target']} -> {x['status']} "
            f"req@{x['request']['stream_pos']}+{x['request']['bytes']} resp@{x['response']['stream_pos']}+"
            f"{x['response']['bytes']}")


def listing(xs):
    return "\n    ".join(brief(x) for x in xs) or "(none)"


def wall_iso(ns):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def check_exchange(x):
    """Fields, types and the rules every exchange follows."""
    what = brief(x) if all(k in x for k in ("side", "comm", "pid", "cookie", "method", "target", "status")) else x
    for field in EXCHANGE_FIELDS:
        check(field in x, f"exchange lacks field {field!r}: {what}")
    eq(x["protocol"], "http1", "protocol")
    check(x["side"] in ("client", "server"), f"bad side in {what}")
    check(x["family"] in ("ipv4", "ipv6"), f"bad family in {what}")
    check(x["version"] in ("1.0", "1.1"), f"bad version in {what}")
    for part in ("request", "response"):
        for field in TIMING_FIELDS:
            check(field in x[part], f"{part} lacks {field!r}: {what}")
        t = x[part]
        check(isinstance(t["truncated"], bool), f"{part}.truncated is not a bool: {what}")
        check(0 <= t["body_bytes"] <= t["bytes"], f"{part} body_bytes {t['body_bytes']} > bytes {t['bytes']}: {what}")
        check(t["start_tid"] > 0 and t["end_tid"] > 0, f"{part} without threads: {what}")
    q, r = x["request"], x["response"]
    check(q["start_ns"] <= q["end_ns"] <= r["start_ns"] <= r["end_ns"],
          f"timings out of order (request.start_ns <= request.end_ns <= response.start_ns <= response.end_ns): "
          f"{q['start_ns']}, {q['end_ns']}, {r['start_ns']}, {r['end_ns']}: {what}")
    eq(x["duration_ns"], r["end_ns"] - q["start_ns"], f"duration_ns of {what}")
    eq(x["time"], wall_iso(q["start_ns"]), f"time of {what} (request.start_ns as ISO 8601)")
    for part in ("request_headers", "response_headers"):
        for name in x[part]:
            check(name == name.lower(), f"{part} name {name!r} is not lowercase: {what}")
            check(name in KEPT_HEADERS or name.startswith("x-b3-"), f"{part} keeps {name!r}: {what}")
    check(isinstance(x["response_end_inferred"], bool), f"response_end_inferred is not a bool: {what}")


def finish(weft, json_out=True):
    """Stops one `weft exchanges` run: (exchanges, summary); the exchanges are the lines of
    the text output without --json."""
    weft.stop()
    weft.expect_clean_exit()
    if not json_out:
        return weft.stdout_bytes().decode().splitlines(), parse_exchange_summary(weft.stderr_lines)
    xs = parse_exchanges(weft.stdout_bytes())
    for x in xs:
        check_exchange(x)
    summary = parse_exchange_summary(weft.stderr_lines)
    eq(summary["shown"], len(xs), "summary 'shown' vs the exchanges printed")
    return xs, summary


def start_exchanges(ctx, port, label, *extra, json_out=True):
    return start_weft(ctx, ["exchanges"] + (["--json"] if json_out else []) + ["--port", str(port)] + list(extra),
                      label=label)


def quiet_run(own_ends, attempt, attempts=3):
    """Calls attempt(n) -> namespace with .summary until weft tracked exactly the test's own
    `own_ends` sockets (a quiet run). Returns (result, quiet)."""
    for n in range(attempts):
        result = attempt(n)
        tracked = result.summary["tracked"]
        check(tracked >= own_ends, f"weft tracked {tracked} sockets, fewer than the test's own {own_ends}")
        if tracked == own_ends:
            return result, True
    return result, False


def check_counters(summary, quiet, **expected):
    """Summary counters: exact in a quiet run, lower bounds otherwise."""
    for key, want in expected.items():
        if quiet:
            eq(summary[key], want, f"summary {key} (a run with only the test's connections)")
        else:
            check(summary[key] >= want, f"summary {key} is {summary[key]}, below the test's own {want}")


def side(xs, which, **match):
    return [x for x in xs if x["side"] == which and all(x[k] == v for k, v in match.items())]


def sequence(xs):
    return [(x["method"], x["target"], x["status"]) for x in xs]


def by_cookie(xs):
    out = {}
    for x in xs:
        out.setdefault(x["cookie"], []).append(x)
    return out


def tuple_of(x):
    return (x["local"]["address"], x["local"]["port"]), (x["remote"]["address"], x["remote"]["port"])


def server_of(xs, client_x):
    """The server-side exchanges of the connection `client_x` is on (mirrored tuple)."""
    local, remote = tuple_of(client_x)
    return [x for x in xs if x["side"] == "server" and tuple_of(x) == (remote, local)]


def check_connection(conn_xs, what):
    """One side of one connection, in output order: the same identity on every exchange, and
    requests and responses following each other in their streams (positions, tcp_seq)."""
    ref = conn_xs[0]
    for x in conn_xs:
        for k in ("pid", "comm", "fd", "cookie", "family", "local", "remote", "side"):
            eq(x[k], ref[k], f"{what}: {k} of {brief(x)}")
    eq((ref["request"]["stream_pos"], ref["response"]["stream_pos"]), (0, 0),
       f"{what}: stream positions of the first exchange")
    for a, b in zip(conn_xs, conn_xs[1:]):
        for part in ("request", "response"):
            eq(b[part]["stream_pos"], a[part]["stream_pos"] + a[part]["bytes"],
               f"{what}: {part} stream_pos of {brief(b)} (follows the previous {part})")
            eq(b[part]["tcp_seq"], (a[part]["tcp_seq"] + a[part]["bytes"]) % (1 << 32),
               f"{what}: {part} tcp_seq of {brief(b)} (follows the previous {part})")


def check_pair(c, s, what, skip=()):
    """The client's and the server's exchange of the same request: the same message, the
    same bytes on the wire, mirrored tuples, different sockets. `skip`: fields that may
    differ ("request.truncated", ...)."""
    eq((c["side"], s["side"]), ("client", "server"), f"{what}: sides")
    for k in ("method", "target", "version", "status", "request_headers", "response_headers",
              "response_end_inferred", "family"):
        if k not in skip:
            eq(s[k], c[k], f"{what}: server {k} vs client {k}")
    for part in ("request", "response"):
        for k in ("stream_pos", "tcp_seq", "bytes", "body_bytes", "truncated"):
            if f"{part}.{k}" not in skip:
                eq(s[part][k], c[part][k], f"{what}: server {part}.{k} vs client {part}.{k}")
    eq((s["local"], s["remote"]), (c["remote"], c["local"]), f"{what}: server tuple vs client tuple (mirrored)")
    check(c["cookie"] != s["cookie"], f"{what}: both ends have cookie {c['cookie']}")


def curl_sizes(stdout):
    """curl -w CURL_SIZES lines: [(status, request bytes, header bytes, body bytes, new connections)]."""
    out = []
    for line in stdout.decode().splitlines():
        if line.strip():
            out.append(tuple(map(int, line.split())))
    return out


def kept_headers(head):
    """The headers weft keeps, first value each, from a raw header section."""
    out = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        name = name.strip().lower()
        if (name in KEPT_HEADERS or name.startswith("x-b3-")) and name not in out:
            out[name] = value.strip()
    return out


def split_head(data):
    end = data.find(b"\r\n\r\n")
    check(end >= 0, f"no end of headers in {data[:200]!r}")
    return data[:end + 4], data[end + 4:]


def read_responses(sock, methods, timeout=10.0):
    """Reads len(methods) HTTP/1.1 responses (Content-Length framed) from `sock`; returns their
    raw bytes, one item per response."""
    sock.settimeout(timeout)
    buf, out = b"", []
    while len(out) < len(methods):
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end + 4]
            m = re.search(rb"\r\ncontent-length: *(\d+)\r\n", head, re.I)
            length = 0 if methods[len(out)] == "HEAD" else int(m.group(1)) if m else 0
            if len(buf) >= head_end + 4 + length:
                out.append(buf[:head_end + 4 + length])
                buf = buf[head_end + 4 + length:]
                continue
        try:
            more = sock.recv(65536)
        except socket.timeout:
            raise TestFailure(f"no complete response {len(out) + 1} within {timeout}s; got {buf[:200]!r}")
        check(more, f"connection closed after {len(out)} of {len(methods)} responses; left over {buf[:200]!r}")
        buf += more
    return out


def read_to_eof(sock, timeout=10.0):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            more = sock.recv(65536)
        except socket.timeout:
            raise TestFailure(f"the server did not close within {timeout}s; got {data[:200]!r}")
        except ConnectionResetError:
            return data
        if not more:
            return data
        data += more


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def status_of(response):
    return int(response.split(b" ", 2)[1])


# ---------------------------------------------------------------------------------------------
# Tests


@case(timeout=120)
def exchanges_nginx_keepalive(ctx):
    """One curl fetching 5 URLs (200s and 404s) over one kept-alive connection to nginx, and a
    HEAD from a second curl: on each side exactly those exchanges in order (method, target,
    status), sizes as curl counted them, stream positions and tcp_seq following each other,
    the client's and server's exchange of each request agreeing (tcp_seq, bytes, mirrored
    tuples), identities, threads, kept headers only (traceparent yes, Authorization and Cookie
    never), and the text output of a second weft telling the same."""
    port = free_port_both()
    root, small = make_site(ctx, "index.txt", 700)
    with open(os.path.join(root, "two.txt"), "wb") as f:
        f.write(b"two\n" * 800)
    nginx = Nginx(ctx, root, port)
    base = f"http://127.0.0.1:{port}"
    paths = ["/index.txt", "/missing-1", "/two.txt", "/index.txt?q=1&r=2", "/no/such/dir/x.html"]
    statuses = [200, 404, 200, 200, 404]

    def attempt(n):
        weft = start_exchanges(ctx, port, f"json-{n}")
        text = start_exchanges(ctx, port, f"text-{n}", json_out=False)
        args = ["-H", f"traceparent: {TRACEPARENT}", "-H", "Authorization: Bearer s3cret", "-b", "session=s3cret",
                "-w", CURL_SIZES]
        for i, p in enumerate(paths):
            args += ["-o", ctx.path(f"body-{n}-{i}"), base + p]
        pid, res = curl(ctx, args)
        eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
        sizes = curl_sizes(res.stdout)
        eq([s[0] for s in sizes], statuses, "statuses curl saw")
        eq([s[4] for s in sizes], [1, 0, 0, 0, 0], "connections curl opened per transfer (keep-alive)")
        head_pid, head_res = curl(ctx, ["-I", "-o", ctx.path(f"head-{n}"), "-w", CURL_SIZES, base + "/index.txt"])
        eq(head_res.returncode, 0, f"curl -I exit code (stderr {head_res.stderr!r})")
        head_sizes = curl_sizes(head_res.stdout)
        eq([s[0] for s in head_sizes], [200], "HEAD status curl saw")
        xs, summary = finish(weft)
        text_lines, _ = finish(text, json_out=False)
        return SimpleNamespace(xs=xs, summary=summary, text=text_lines, pid=pid, sizes=sizes,
                               head_pid=head_pid, head_sizes=head_sizes)

    r, quiet = quiet_run(4, attempt)
    xs = r.xs
    clients = side(xs, "client", pid=r.pid)
    eq(sequence(clients), [("GET", p, s) for p, s in zip(paths, statuses)],
       f"curl's exchanges in order; all exchanges:\n    {listing(xs)}\n   ")
    head_clients = side(xs, "client", pid=r.head_pid)
    eq(sequence(head_clients), [("HEAD", "/index.txt", 200)], f"curl -I's exchanges; all:\n    {listing(xs)}\n   ")
    eq(len(side(xs, "client")), 6, f"client exchanges in all; all:\n    {listing(xs)}\n   ")
    eq(len(side(xs, "server")), 6, f"server exchanges in all; all:\n    {listing(xs)}\n   ")
    servers = server_of(xs, clients[0])
    head_servers = server_of(xs, head_clients[0])
    eq(sequence(servers), sequence(clients), "nginx's exchanges on curl's connection, in order")
    eq(sequence(head_servers), sequence(head_clients), "nginx's exchanges on curl -I's connection")

    for conn_c, conn_s, sizes, pid, what in ((clients, servers, r.sizes, r.pid, "keep-alive connection"),
                                             (head_clients, head_servers, r.head_sizes, r.head_pid, "HEAD connection")):
        check_connection(conn_c, f"{what}, client side")
        check_connection(conn_s, f"{what}, server side")
        for i, (c, s, (status, req_bytes, hdr_bytes, body_bytes, _)) in enumerate(zip(conn_c, conn_s, sizes)):
            label = f"{what}, exchange {i + 1} ({c['method']} {c['target']})"
            check_pair(c, s, label)
            eq((c["request"]["bytes"], c["request"]["body_bytes"]), (req_bytes, 0),
               f"{label}: request bytes/body_bytes vs curl's size_request")
            eq((c["response"]["bytes"], c["response"]["body_bytes"]), (hdr_bytes + body_bytes, body_bytes),
               f"{label}: response bytes/body_bytes vs curl's size_header + size_download")
            for x in (c, s):
                eq((x["request"]["truncated"], x["response"]["truncated"], x["response_end_inferred"]),
                   (False, False, False), f"{label}: truncated/end inferred on the {x['side']} side")
            headers = dict(c["request_headers"])
            check(headers.pop("user-agent", "").startswith("curl/"), f"{label}: user-agent {c['request_headers']}")
            eq(headers, {"host": f"127.0.0.1:{port}", **({"traceparent": TRACEPARENT} if pid == r.pid else {})},
               f"{label}: request headers kept besides user-agent (never authorization or cookie)")
            expected_len = str(len(small)) if c["method"] == "HEAD" else str(body_bytes)
            eq(c["response_headers"].get("content-length"), expected_len, f"{label}: response content-length")
            eq(c["response_headers"].get("connection"), "keep-alive", f"{label}: response connection header")
            eq(set(c["response_headers"]), {"content-length", "content-type", "connection"},
               f"{label}: response headers kept")
            eq((c["pid"], c["comm"]), (pid, "curl"), f"{label}: client pid/comm")
            check(s["pid"] in nginx.workers, f"{label}: server pid {s['pid']} is not an nginx worker {nginx.workers}")
            eq((s["comm"], s["exe"]), ("nginx", "/usr/sbin/nginx"), f"{label}: server comm/exe")
            eq(c["remote"], {"address": "127.0.0.1", "port": port}, f"{label}: client remote")
            eq(c["family"], "ipv4", f"{label}: family")
            for x, tid in ((c, pid), (s, s["pid"])):  # curl and nginx workers do their I/O on one thread
                eq([x[p][t] for p in ("request", "response") for t in ("start_tid", "end_tid")], [tid] * 4,
                   f"{label}: {x['side']} threads")
        for conn in (conn_c, conn_s):
            for a, b in zip(conn, conn[1:]):  # not pipelined: each request follows the previous response
                check(a["response"]["end_ns"] <= b["request"]["start_ns"],
                      f"{what}: {brief(b)} starts before the previous response ended")

    # The text output of the second weft: the same exchanges. (Durations are not compared:
    # each weft's probes take their own timestamps.)
    def key_json(x):
        return (x["side"], x["comm"], x["pid"], x["request"]["start_tid"], x["method"], x["target"], x["status"],
                "%s:%d" % tuple(x["local"].values()), "%s:%d" % tuple(x["remote"].values()))
    text_keys = []
    for line in r.text:
        m = TEXT_LINE.match(line)
        check(m, f"text output line does not parse: {line!r}")
        check(m.group(11) == ("<-" if m.group(2) == "server" else "->"), f"arrow of {line!r}")
        check(not m.group(13) and not m.group(14), f"flags on {line!r}")
        g = m.groups()
        text_keys.append((g[1], g[2], int(g[3]), int(g[4]), g[5], g[6], int(g[7]), g[9], g[11]))
    eq(sorted(text_keys), sorted(map(key_json, xs)), "text output vs JSON output of two wefts")
    check_counters(r.summary, quiet, exchanges=12, messages=24, parse_errors=0, resyncs=0, unmatched_requests=0,
                   unmatched_responses=0, truncated=0, skipped_bytes=0, undetected=0, evicted=0)


@case(timeout=120)
def exchanges_http_server(ctx):
    """python3 -m http.server (an HTTP/1.0 server, responses framed by Content-Length) and one
    curl per request (GET of a file, a missing file, the directory listing, HEAD): one exchange
    per side per connection, sizes as curl counted them, headers as the server sent them, the
    server's threads."""
    port = free_port()
    name = "page.txt"
    root, _ = make_site(ctx, name, 1500)
    srv = HttpServer(ctx, root, port)
    base = f"http://127.0.0.1:{port}"
    requests = [(["-o"], "GET", "/page.txt", 200), (["-o"], "GET", "/missing.txt", 404),
                (["-o"], "GET", "/", 200), (["-I", "-o"], "HEAD", "/page.txt", 200)]

    def attempt(n):
        weft = start_exchanges(ctx, port, f"exchanges-{n}")
        done = []
        for i, (flags, method, path, status) in enumerate(requests):
            hdr = ctx.path(f"headers-{n}-{i}")
            pid, res = curl(ctx, ["-D", hdr, "-w", CURL_SIZES] + flags + [ctx.path(f"out-{n}-{i}"), base + path])
            eq(res.returncode, 0, f"curl {method} {path} exit code (stderr {res.stderr!r})")
            sizes = curl_sizes(res.stdout)
            eq(sizes[0][0], status, f"status curl saw for {method} {path}")
            with open(hdr, "rb") as f:
                done.append((pid, sizes[0], f.read()))
        xs, summary = finish(weft)
        return SimpleNamespace(xs=xs, summary=summary, done=done)

    r, quiet = quiet_run(2 * len(requests), attempt)
    xs = r.xs
    eq(len(xs), 2 * len(requests), f"exchanges (one per side per request); all:\n    {listing(xs)}\n   ")
    for (flags, method, path, status), (pid, sizes, headers) in zip(requests, r.done):
        label = f"{method} {path}"
        c = side(xs, "client", pid=pid)
        eq(sequence(c), [(method, path, status)], f"{label}: curl's exchanges; all:\n    {listing(xs)}\n   ")
        c = c[0]
        s = server_of(xs, c)
        eq(sequence(s), [(method, path, status)], f"{label}: the server's exchanges on curl's connection")
        s = s[0]
        check_pair(c, s, label)
        check_connection([c], f"{label} client")
        check_connection([s], f"{label} server")
        _, req_bytes, hdr_bytes, body_bytes, _ = sizes
        eq(len(headers), hdr_bytes, f"{label}: curl's -D headers vs size_header")
        eq((c["request"]["bytes"], c["request"]["body_bytes"]), (req_bytes, 0), f"{label}: request bytes/body_bytes")
        eq((c["response"]["bytes"], c["response"]["body_bytes"]), (hdr_bytes + body_bytes, body_bytes),
           f"{label}: response bytes/body_bytes")
        check(headers.startswith(b"HTTP/1.0 "), f"{label}: http.server answers HTTP/1.0: {headers[:30]!r}")
        eq(c["response_headers"], kept_headers(headers), f"{label}: response headers kept (from curl's -D)")
        eq(c["version"], "1.1", f"{label}: request version (curl's)")
        eq(c["response_end_inferred"], False, f"{label}: response end inferred (Content-Length framing)")
        eq((s["pid"], s["comm"], s["exe"]), (srv.pid, srv.comm, srv.exe), f"{label}: server pid/comm/exe")
        eq((c["pid"], c["comm"]), (pid, "curl"), f"{label}: client pid/comm")
        tids = [s[p][t] for p in ("request", "response") for t in ("start_tid", "end_tid")]
        eq(tids, [tids[0]] * 4, f"{label}: server threads (one handler thread per connection)")
        check(tids[0] != srv.pid, f"{label}: ThreadingHTTPServer handled the request on its main thread?")
    check_counters(r.summary, quiet, exchanges=8, messages=16, parse_errors=0, resyncs=0, unmatched_requests=0,
                   unmatched_responses=0, truncated=0, undetected=0)


@case(timeout=90)
def exchanges_pipelined(ctx):
    """Three requests (GET, HEAD of a missing file, GET with Connection: close) sent to nginx in
    one send() before reading anything: three exchanges per side in order, each response
    answering the right request (the HEAD's has no body), positions and tcp_seq of each
    request inside the one syscall."""
    port = free_port_both()
    root, body_a = make_site(ctx, "a.txt", 300)
    with open(os.path.join(root, "b.txt"), "wb") as f:
        f.write(b"b" * 1200)
    nginx = Nginx(ctx, root, port)
    me, my_comm = os.getpid(), read_comm(os.getpid())
    host = f"Host: 127.0.0.1:{port}\r\n"
    reqs = [f"GET /a.txt HTTP/1.1\r\n{host}\r\n".encode(),
            f"HEAD /missing HTTP/1.1\r\n{host}User-Agent: pipeline\r\n\r\n".encode(),
            f"GET /b.txt HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode()]
    expected = [("GET", "/a.txt", 200), ("HEAD", "/missing", 404), ("GET", "/b.txt", 200)]

    def attempt(n):
        weft = start_exchanges(ctx, port, f"exchanges-{n}")
        sock = connect(port)
        ctx.on_cleanup(sock.close)
        local = sock.getsockname()
        eq(sock.send(b"".join(reqs)), sum(map(len, reqs)), "one send() with all three requests")
        responses = read_responses(sock, ["GET", "HEAD", "GET"])
        eq(read_to_eof(sock), b"", "bytes after the third response (nginx closes: Connection: close)")
        sock.close()
        xs, summary = finish(weft)
        return SimpleNamespace(xs=xs, summary=summary, responses=responses, local=local)

    r, quiet = quiet_run(2, attempt)
    xs = r.xs
    eq([status_of(resp) for resp in r.responses], [200, 404, 200], "statuses nginx sent")
    eq(split_head(r.responses[0])[1], body_a, "body of the first pipelined response")
    c = side(xs, "client", pid=me)
    eq(sequence(c), expected, f"the client's exchanges in order; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"nginx's exchanges in order; all:\n    {listing(xs)}\n   ")
    eq(len(xs), 6, f"exchanges in all; all:\n    {listing(xs)}\n   ")
    eq(c[0]["local"], {"address": "127.0.0.1", "port": r.local[1]}, "client local endpoint")
    check_connection(c, "client side")
    check_connection(s, "server side")
    pos = resp_pos = 0
    for i, (cx, sx, req, resp) in enumerate(zip(c, s, reqs, r.responses)):
        label = f"pipelined request {i + 1} ({cx['method']} {cx['target']})"
        check_pair(cx, sx, label)
        eq((cx["request"]["stream_pos"], cx["request"]["bytes"]), (pos, len(req)), f"{label}: request position/bytes")
        eq((cx["response"]["stream_pos"], cx["response"]["bytes"]), (resp_pos, len(resp)),
           f"{label}: response position/bytes")
        head, body = split_head(resp)
        eq(cx["response"]["body_bytes"], len(body), f"{label}: response body_bytes")
        eq(cx["response_headers"], kept_headers(head), f"{label}: response headers kept")
        eq(cx["request_headers"], kept_headers(req), f"{label}: request headers kept")
        eq((cx["pid"], cx["comm"]), (me, my_comm), f"{label}: client pid/comm")
        check(sx["pid"] in nginx.workers, f"{label}: server pid")
        pos += len(req)
        resp_pos += len(resp)
    eq(len({x["request"]["start_ns"] for x in c}), 1, "the client's three requests come from one syscall")
    eq(c[0]["request"]["end_ns"], c[0]["request"]["start_ns"], "the first request's end: the same syscall")
    starts = [x["request"]["start_ns"] for x in s]
    eq(starts, sorted(starts), "nginx's reads of the pipelined requests in order")
    check_counters(r.summary, quiet, exchanges=6, messages=12, parse_errors=0, resyncs=0, unmatched_requests=0,
                   unmatched_responses=0, truncated=0, skipped_bytes=0)


# A small HTTP/1.1 server that writes exactly the bytes a spec (a JSON file) gives for each
# path, one write() per item, after the status line and headers (one write); other paths get
# a 404 (with Connection: close). argv: port, spec path.
SCRIPTED_SERVER = r'''
import http.server, json, sys
spec = json.load(open(sys.argv[2]))
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_GET(self):
        page = spec.get(self.path)
        if page is None:
            self.send_error(404)
            return
        self.send_response(page["status"])
        for name, value in page["headers"]:
            self.send_header(name, value)
        self.end_headers()
        for item in page["writes"]:
            self.wfile.write(bytes.fromhex(item))
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
'''


def chunk(data, ext=""):
    return b"%x%s\r\n%s\r\n" % (len(data), ext.encode(), data)


@case(timeout=120)
def exchanges_chunked(ctx):
    """Chunked responses from a Python HTTP/1.1 server over one kept-alive curl connection,
    mixed with Content-Length ones: small chunks (one with an extension, a trailer after the
    last), a 10000-byte chunk larger than the capture limit with its framing in separate
    writes, an empty chunked body, then a 404. Every exchange on both sides, statuses,
    body_bytes exactly the chunked encoding's bytes, the server's chunked ends framed (not
    inferred), no parse errors."""
    port = free_port()
    big = b"B" * 10000
    pages = {
        "/chunked": {"status": 200, "headers": [["Content-Type", "text/plain"], ["Transfer-Encoding", "chunked"]],
                     "writes": [chunk(b"hello", ";name=value"), chunk(b"x" * 300), chunk(b"chunk-three-" * 50),
                                chunk(b"!"), b"0\r\nX-Checksum: abc\r\n\r\n"]},
        "/plain": {"status": 200, "headers": [["Content-Type", "text/plain"], ["Content-Length", "11"]],
                   "writes": [b"plain body\n"]},
        "/chunked-big": {"status": 201, "headers": [["Transfer-Encoding", "chunked"]],
                         "writes": [b"%x\r\n" % len(big), big, b"\r\n", chunk(b"tail"), b"0\r\n\r\n"]},
        "/chunked-empty": {"status": 200, "headers": [["Transfer-Encoding", "chunked"]], "writes": [b"0\r\n\r\n"]},
    }
    spec_path = ctx.path("spec.json")
    with open(spec_path, "w") as f:
        json.dump({p: dict(v, writes=[w.hex() for w in v["writes"]]) for p, v in pages.items()}, f)
    log = open(ctx.path("scripted-server.log"), "wb")
    ctx.on_cleanup(log.close)
    srv = ctx.spawn([PYTHON, "-c", SCRIPTED_SERVER, str(port), spec_path], stdout=log, stderr=subprocess.STDOUT)
    wait_listening(port, proc=srv)
    srv_comm = read_comm(srv.pid)
    paths = ["/chunked", "/plain", "/chunked-big", "/chunked-empty", "/missing"]
    statuses = [200, 200, 201, 200, 404]
    encoded = [b"".join(pages[p]["writes"]) if p in pages else None for p in paths]

    def attempt(n):
        weft = start_exchanges(ctx, port, f"exchanges-{n}")
        args = ["-w", CURL_SIZES]
        for i, p in enumerate(paths):
            args += ["-o", ctx.path(f"body-{n}-{i}"), f"http://127.0.0.1:{port}{p}"]
        pid, res = curl(ctx, args)
        eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
        sizes = curl_sizes(res.stdout)
        eq([s[0] for s in sizes], statuses, "statuses curl saw")
        eq([s[4] for s in sizes], [1, 0, 0, 0, 0], "connections curl opened per transfer (keep-alive)")
        with open(ctx.path(f"body-{n}-2"), "rb") as f:
            eq(f.read(), big + b"tail", "the big chunked body as curl decoded it")
        xs, summary = finish(weft)
        return SimpleNamespace(xs=xs, summary=summary, pid=pid, sizes=sizes)

    r, quiet = quiet_run(2, attempt)
    xs = r.xs
    expected = [("GET", p, s) for p, s in zip(paths, statuses)]
    c = side(xs, "client", pid=r.pid)
    eq(sequence(c), expected, f"curl's exchanges in order; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"the server's exchanges in order; all:\n    {listing(xs)}\n   ")
    eq(len(xs), 10, f"exchanges in all; all:\n    {listing(xs)}\n   ")
    check_connection(c, "client side")
    check_connection(s, "server side")
    for i, (cx, sx, enc, (status, req_bytes, hdr_bytes, body_bytes, _)) in enumerate(zip(c, s, encoded, r.sizes)):
        label = f"{cx['target']}"
        # The end of the big body may be inferred on the client's side: its last chunk framing
        # can fall in the uncaptured part of one of curl's reads.
        check_pair(cx, sx, label, skip=("response_end_inferred",) if i == 2 else ())
        eq((sx["pid"], sx["comm"]), (srv.pid, srv_comm), f"{label}: server pid/comm")
        eq(sx["response_end_inferred"], False, f"{label}: the server's response end inferred")
        for x in (cx, sx):
            where = f"{label}, {x['side']} side"
            eq(x["request"]["bytes"], req_bytes, f"{where}: request bytes (curl's size_request)")
            if enc is not None:
                eq(x["response"]["body_bytes"], len(enc), f"{where}: response body_bytes (the chunked encoding)")
                check(x["response"]["body_bytes"] > 0, f"{where}: chunked body_bytes")
                eq(x["response_headers"].get("transfer-encoding"),
                   "chunked" if "chunked" in label else None, f"{where}: transfer-encoding header")
                eq(x["response"]["bytes"], hdr_bytes + len(enc),
                   f"{where}: response bytes (curl's size_header, which leaves out trailers, + the encoding)")
            else:
                eq((x["response"]["bytes"], x["response"]["body_bytes"]), (hdr_bytes + body_bytes, body_bytes),
                   f"{where}: 404 response bytes/body_bytes")
    check_counters(r.summary, quiet, exchanges=10, messages=20, parse_errors=0, resyncs=0, unmatched_requests=0,
                   unmatched_responses=0, truncated=0, undetected=0)
    check(r.summary["skipped_bytes"] >= len(big) - 4096,
          f"summary skipped_bytes {r.summary['skipped_bytes']}: the server's write of the {len(big)}-byte chunk "
          f"alone leaves {len(big) - 4096} uncaptured bytes to skip")


@case(timeout=120)
def exchanges_large_download(ctx):
    """A 5 MiB file from nginx (write/writev) and then a small one on the same kept-alive curl
    connection (default capture: 4096 bytes per syscall, so most of the big body is never
    seen): both exchanges on both sides, the big response's bytes and body_bytes exact, the
    small one right after it in the stream, skipped_bytes > 0 and no parse errors."""
    check_large_download(ctx, sendfile=False)


@case(timeout=120)
def exchanges_large_download_sendfile(ctx):
    """The same with sendfile on: nginx's body bytes are counted by the kernel, never captured."""
    check_large_download(ctx, sendfile=True)


@case(timeout=120)
def exchanges_slow_download_body_skipped(ctx):
    """A 5 MiB download that takes over two seconds (nginx's limit_rate): once weft has parsed
    the response head (within the event orderer's window, ~0.1 s), the kernel is told to skip
    the rest of the body on both ends (reported without payload), and the exchanges stay exact:
    at least half of the two ends' 10 MiB is never copied."""
    check_large_download(ctx, sendfile=False, limit_rate="2m")


def check_large_download(ctx, sendfile, limit_rate=None):
    size = 5 * 1024 * 1024
    port = free_port_both()
    root, body = make_site(ctx, "big.bin", size, text=False)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(b"small\n")
    nginx = Nginx(ctx, root, port, sendfile=sendfile, limit_rate=limit_rate or "0")
    paths = ["/big.bin", "/small.txt"]

    def attempt(n):
        weft = start_exchanges(ctx, port, f"exchanges-{n}")
        args = ["-w", CURL_SIZES]
        for i, p in enumerate(paths):
            args += ["-o", ctx.path(f"got-{n}-{i}"), f"http://127.0.0.1:{port}{p}"]
        pid, res = curl(ctx, args, timeout=60)
        eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
        sizes = curl_sizes(res.stdout)
        eq([(s[0], s[3], s[4]) for s in sizes], [(200, size, 1), (200, 6, 0)],
           "status, body size and new connections of curl's two transfers")
        with open(ctx.path(f"got-{n}-0"), "rb") as f:
            check(f.read() == body, "curl did not receive the 5 MiB file intact")
        os.unlink(ctx.path(f"got-{n}-0"))
        xs, summary = finish(weft)
        return SimpleNamespace(xs=xs, summary=summary, pid=pid, sizes=sizes)

    r, quiet = quiet_run(2, attempt)
    xs = r.xs
    expected = [("GET", p, 200) for p in paths]
    c = side(xs, "client", pid=r.pid)
    eq(sequence(c), expected, f"curl's exchanges; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"nginx's exchanges; all:\n    {listing(xs)}\n   ")
    eq(len(xs), 4, f"exchanges in all; all:\n    {listing(xs)}\n   ")
    check_connection(c, "client side")
    check_connection(s, "server side")
    for cx, sx, (status, req_bytes, hdr_bytes, body_bytes, _) in zip(c, s, r.sizes):
        label = cx["target"]
        check_pair(cx, sx, label)
        check(sx["pid"] in nginx.workers, f"{label}: server pid")
        for x in (cx, sx):
            where = f"{label}, {x['side']} side"
            eq((x["request"]["bytes"], x["response"]["bytes"], x["response"]["body_bytes"]),
               (req_bytes, hdr_bytes + body_bytes, body_bytes), f"{where}: request bytes, response bytes/body_bytes")
            eq((x["response_end_inferred"], x["request"]["truncated"], x["response"]["truncated"]),
               (False, False, False), f"{where}: end inferred/truncated")
            eq(x["response_headers"].get("content-length"), str(body_bytes), f"{where}: content-length")
    check(c[0]["response"]["bytes"] >= size, "the big response's bytes >= 5 MiB")
    check(r.summary["skipped_bytes"] > 0, f"summary skipped_bytes is 0 after a 5 MiB body: {r.summary}")
    if sendfile:  # nginx's end skips the whole body: sendfile moves it without a user buffer
        check(r.summary["skipped_bytes"] >= size, f"summary skipped_bytes {r.summary['skipped_bytes']} < the body "
                                                  f"nginx sent with sendfile ({size})")
    check_counters(r.summary, quiet, exchanges=4, messages=8, parse_errors=0, resyncs=0, unmatched_requests=0,
                   unmatched_responses=0, truncated=0, undetected=0, evicted=0)
    if limit_rate:  # weft reacts within a few hundred ms of the head; the transfer takes > 1 s
        check(r.summary["skip_verdicts"] >= 2, f"skip verdicts, one per end expected: {r.summary}")
        check(r.summary["uncopied_bytes"] >= size, f"body bytes left uncopied {r.summary['uncopied_bytes']} < "
                                                   f"half of the two ends' bodies ({size})")
    if quiet:  # at most the body, on each end
        check(r.summary["skipped_bytes"] <= 2 * size, f"summary skipped_bytes {r.summary['skipped_bytes']} > "
                                                      f"twice the body ({2 * size})")


# An HTTP/1.1 server that ignores everything that is not a request: it answers each request
# line with a known method followed by a header section, skipping whatever came before it,
# and keeps the connection open. argv: port. Prints "listening" once ready.
TOLERANT_SERVER = r'''
import re, socket, sys, threading
REQUEST = re.compile(rb"(?:^|\n)(GET|HEAD|POST) (\S+) HTTP/1\.[01]\r\n")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
print("listening", flush=True)
def serve(c):
    buf = b""
    while True:
        data = c.recv(65536)
        if not data:
            break
        buf += data
        while True:
            m = REQUEST.search(buf)
            end = buf.find(b"\r\n\r\n", m.start()) if m else -1
            if end < 0:
                break
            body = b"ok " + m.group(2) + b"\n"
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body)
            c.sendall(head + body)
            buf = buf[end + 4:]
    c.close()
while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
'''

# Not HTTP: fixed bytes, so that every run parses the same thing.
BINARY_GARBAGE = bytes(range(256)) + b"\x00\xff\xfe garbage \x01\x02\r\n\x7f\x80\x81\r\n"
TLS_CLIENT_HELLO = (b"\x16\x03\x01\x00\xc4\x01\x00\x00\xc0\x03\x03" + bytes(range(32, 64)) + b"\x20" + bytes(32)
                    + b"\x00\x08\x13\x01\x13\x02\x13\x03\x00\xff\x01\x00\x00\x8f\x00\x00\x00\x0e\x00\x0c\x00\x00"
                    + b"\x09localhost" + bytes(120))
GARBAGE_LINE = b"\x00\x01\x02 not http at all \xff\xfe\r\n"


@case(timeout=120)
def exchanges_bad_input(ctx):
    """Bytes that are not HTTP: binary garbage and a TLS ClientHello sent to nginx's HTTP port
    (each on its own connection: no exchange, nginx's 400 answers no request weft saw), and on
    a kept-alive HTTP connection
    to a tolerant server, a request, then garbage and a request in one send, then garbage and
    a request in two sends: weft exits 0, the three valid requests still make exchanges on
    both sides at the right stream positions, and the summary counts the parse errors and
    resyncs (one each per garbage, per end). A connection that starts with garbage is picked up
    at its next request: detection looks again at every syscall boundary (docs/protocols.md)."""
    nginx_port = free_port_both()
    root, _ = make_site(ctx, "index.html", 100)
    Nginx(ctx, root, nginx_port)
    port = free_port()
    srv = python_peer(ctx, TOLERANT_SERVER, port, label="tolerant")
    eq(read_line(srv, what="'listening'"), "listening", "tolerant server start")
    me = os.getpid()
    host = f"Host: 127.0.0.1:{port}\r\n".encode()

    def request(path):
        return b"GET " + path.encode() + b" HTTP/1.1\r\n" + host + b"User-Agent: bad-input-test\r\n\r\n"

    reqs = [request("/one"), request("/two"), request("/three")]

    def attempt(n):
        wn = start_exchanges(ctx, nginx_port, f"nginx-{n}")
        wt = start_exchanges(ctx, port, f"tolerant-{n}")
        for what, data in (("binary garbage", BINARY_GARBAGE), ("a TLS ClientHello", TLS_CLIENT_HELLO)):
            sock = connect(nginx_port)
            ctx.on_cleanup(sock.close)
            sock.sendall(data)
            answer = read_to_eof(sock)
            check(answer.startswith(b"HTTP/1.1 400 "), f"nginx's answer to {what}: {answer[:60]!r}")
            sock.close()

        sock = connect(port)  # HTTP, then garbage
        ctx.on_cleanup(sock.close)
        local = sock.getsockname()
        sock.sendall(reqs[0])
        answers = read_responses(sock, ["GET"])
        sock.sendall(GARBAGE_LINE + reqs[1])
        answers += read_responses(sock, ["GET"])
        sock.sendall(BINARY_GARBAGE)
        time.sleep(0.05)
        sock.sendall(reqs[2])
        answers += read_responses(sock, ["GET"])
        eq([a.rsplit(b"\r\n", 1)[1] for a in answers], [b"ok /one\n", b"ok /two\n", b"ok /three\n"],
           "the tolerant server's answers")
        sock.close()

        sock = connect(port)  # garbage first
        ctx.on_cleanup(sock.close)
        sock.sendall(GARBAGE_LINE)
        time.sleep(0.05)
        sock.sendall(request("/after-garbage"))
        eq(read_responses(sock, ["GET"])[0].rsplit(b"\r\n", 1)[1], b"ok /after-garbage\n",
           "answer on the connection that started with garbage")
        sock.close()
        nx, _ = finish(wn)
        xs, summary = finish(wt)
        return SimpleNamespace(xs=xs, nginx_xs=nx, summary=summary, local=local, answers=answers)

    r, quiet = quiet_run(8, attempt)
    eq(r.nginx_xs, [], "exchanges on nginx's port (garbage and TLS only)")
    xs = r.xs
    c = [x for x in side(xs, "client", pid=me) if x["local"]["port"] == r.local[1]]
    expected = [("GET", "/one", 200), ("GET", "/two", 200), ("GET", "/three", 200)]
    eq(sequence(c), expected, f"the client's exchanges on the HTTP connection; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"the server's exchanges on the HTTP connection; all:\n    {listing(xs)}\n   ")
    # Detection looks again at the next message boundary: the request after the garbage is
    # found on both sides, at its own stream position.
    late = [x for x in xs if x["target"] == "/after-garbage"]
    eq(sorted(x["side"] for x in late), ["client", "server"],
       f"the request after the garbage, on both sides; all:\n    {listing(xs)}\n   ")
    eq([x["status"] for x in late], [200, 200], "its status on both sides")
    check(all(x["request"]["stream_pos"] > 0 for x in late), "it starts after the garbage's bytes")
    eq(len(xs), 8, f"exchanges in all; all:\n    {listing(xs)}\n   ")
    positions = [0, len(reqs[0]) + len(GARBAGE_LINE), len(reqs[0]) + len(GARBAGE_LINE) + len(reqs[1])
                 + len(BINARY_GARBAGE)]
    resp_pos = 0
    for cx, sx, req, pos, answer in zip(c, s, reqs, positions, r.answers):
        label = cx["target"]
        check_pair(cx, sx, label)
        eq((cx["request"]["stream_pos"], cx["request"]["bytes"]), (pos, len(req)),
           f"{label}: request position (after the garbage) and bytes")
        eq((cx["response"]["stream_pos"], cx["response"]["bytes"]), (resp_pos, len(answer)),
           f"{label}: response position and bytes")
        eq(cx["request_headers"], {"host": f"127.0.0.1:{port}", "user-agent": "bad-input-test"},
           f"{label}: request headers")
        resp_pos += len(answer)
    base = c[0]["request"]["tcp_seq"]
    eq([x["request"]["tcp_seq"] for x in c], [(base + p) % (1 << 32) for p in positions],
       "the requests' tcp_seq (garbage counted in the sequence space)")
    # nginx's 400 answers are found at their boundary (detection tries again) but answer no
    # request weft saw: 4 unmatched responses, and every connection was detected in the end.
    check_counters(r.summary, quiet, exchanges=8, messages=20, parse_errors=4, resyncs=4, undetected=0,
                   redetected=6, unmatched_requests=0, unmatched_responses=4, truncated=0)


def comparable(x):
    """What a live run and the replay of a recording of the same traffic must agree on
    (timestamps come from each weft's own probes; exe depends on whether the process was
    still alive when each weft looked it up)."""
    out = {k: x[k] for k in EXCHANGE_FIELDS if k not in ("time", "duration_ns", "exe", "request", "response")}
    for part in ("request", "response"):
        out[part] = {k: v for k, v in x[part].items() if k not in ("start_ns", "end_ns")}
    return out


@case(timeout=120)
def exchanges_replay(ctx):
    """`weft record` during traffic to nginx (keep-alive GETs, a POST with a body, a HEAD),
    then `weft exchanges --replay FILE --json`: the same exchanges, in the same order per
    socket, as a live `weft exchanges --json` running at the same time (method, target,
    status, side, positions, tcp_seq, sizes, headers, identities), wall times close to the
    live ones; replaying twice gives the same output; --comm and --pid pick one side."""
    port = free_port_both()
    root, _ = make_site(ctx, "index.txt", 900)
    nginx = Nginx(ctx, root, port)
    base = f"http://127.0.0.1:{port}"
    rec_path = ctx.path("traffic.weft")
    recorder = start_weft(ctx, ["record", "-o", rec_path], label="record")
    live = start_exchanges(ctx, port, "live")
    pid, res = curl(ctx, ["-H", f"traceparent: {TRACEPARENT}", "-o", ctx.path("1"), base + "/index.txt",
                          "-o", ctx.path("2"), base + "/missing", "-o", ctx.path("3"), base + "/index.txt?x=1"])
    eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
    post_pid, res = curl(ctx, ["-o", ctx.path("4"), "-w", "%{http_code}", "-d", "a=1&b=22", base + "/index.txt"])
    eq((res.returncode, res.stdout), (0, b"405"), "POST to a static file: curl exit code and status")
    head_pid, res = curl(ctx, ["-I", "-o", ctx.path("5"), base + "/index.txt"])
    eq(res.returncode, 0, "curl -I exit code")
    live_xs, _ = finish(live)
    recorder.stop()
    recorder.expect_clean_exit()

    expected = {pid: [("GET", "/index.txt", 200), ("GET", "/missing", 404), ("GET", "/index.txt?x=1", 200)],
                post_pid: [("POST", "/index.txt", 405)], head_pid: [("HEAD", "/index.txt", 200)]}
    for client_pid, seq in expected.items():
        c = side(live_xs, "client", pid=client_pid)
        eq(sequence(c), seq, f"live client exchanges of curl {client_pid}; all:\n    {listing(live_xs)}\n   ")
        eq(sequence(server_of(live_xs, c[0])), seq, f"live server exchanges for curl {client_pid}")
    post = side(live_xs, "client", pid=post_pid)[0]
    eq((post["request"]["body_bytes"], post["request_headers"].get("content-length"),
        post["request_headers"].get("content-type")), (8, "8", "application/x-www-form-urlencoded"),
       "the POST's request body_bytes and headers")
    eq(len(live_xs), 10, f"live exchanges; all:\n    {listing(live_xs)}\n   ")

    def replay(*extra):
        res = run([harness.WEFT, "exchanges", "--replay", rec_path, "--json"] + list(extra), timeout=30)
        err = res.stderr.decode("utf-8", "replace").splitlines()
        eq(res.returncode, 0, f"weft exchanges --replay {' '.join(extra)}: exit code (stderr {err})")
        check(all(SUMMARY_SHOWN.match(l) or SUMMARY_PROTOCOL.match(l) or SUMMARY_LOSSES.match(l) or
                  harness.SUMMARY_CAPTURE_LIMIT.match(l) or harness.SUMMARY_TLS.match(l) for l in err),
              f"replay stderr has more than the summary: {err}")
        xs = parse_exchanges(res.stdout)
        for x in xs:
            check_exchange(x)
        eq(parse_exchange_summary(err)["shown"], len(xs), "replay summary 'shown'")
        return res.stdout, xs

    raw, replayed = replay("--port", str(port))
    live_by, replay_by = by_cookie(live_xs), by_cookie(replayed)
    eq(sorted(replay_by), sorted(live_by), f"sockets with exchanges in the replay vs live; replayed:\n    "
                                           f"{listing(replayed)}\n   ")
    for cookie, xs in live_by.items():
        eq([comparable(x) for x in replay_by[cookie]], [comparable(x) for x in xs],
           f"replayed exchanges of socket {cookie} ({xs[0]['side']} {xs[0]['comm']}) vs live")
        for lx, rx in zip(xs, replay_by[cookie]):
            for part in ("request", "response"):
                for k in ("start_ns", "end_ns"):
                    check(abs(lx[part][k] - rx[part][k]) < 100_000_000,
                          f"{brief(lx)}: {part}.{k} live {lx[part][k]} vs replayed {rx[part][k]}: more than "
                          "0.1 s apart")
    eq(replay("--port", str(port))[0], raw, "a second replay's output (byte for byte)")
    by_comm = replay("--port", str(port), "--comm", "curl")[1]
    eq(sorted(map(json.dumps, map(comparable, by_comm))),
       sorted(json.dumps(comparable(x)) for x in replayed if x["side"] == "client"), "replay with --comm curl")
    worker = side(live_xs, "server")[0]["pid"]
    check(worker in nginx.workers, "server pid is an nginx worker")
    by_pid = replay("--pid", str(worker))[1]
    eq(sorted(map(json.dumps, map(comparable, by_pid))),
       sorted(json.dumps(comparable(x)) for x in replayed if x["side"] == "server"), f"replay with --pid {worker}")
    text = run([harness.WEFT, "exchanges", "--replay", rec_path, "--port", str(port)], timeout=30)
    eq(text.returncode, 0, "text replay exit code")
    lines = text.stdout.decode().splitlines()
    eq(len(lines), len(replayed), "text replay lines vs JSON exchanges")
    for line in lines:
        check(TEXT_LINE.match(line), f"text replay line does not parse: {line!r}")


@case(timeout=90)
def exchanges_truncated_headers(ctx):
    """A request with a 6000-byte header (X-Pad, a traceparent after it) to nginx under the
    default capture limit (4096 bytes per syscall), then a small request on the same
    connection: both exchanges on both sides; request.truncated set exactly on the sides whose
    captured bytes (from a `weft events` run at the same time) miss part of the header section,
    and the client's is one of them (curl writes the request in one syscall); the headers
    before the cut kept, the traceparent only where nothing was cut; sizes and positions exact;
    the GET's body_bytes 0 on both sides."""
    port = free_port_both()
    root, _ = make_site(ctx, "index.txt", 200)
    nginx = Nginx(ctx, root, port)
    url = f"http://127.0.0.1:{port}/index.txt"

    def attempt(n):
        weft = start_exchanges(ctx, port, f"exchanges-{n}")
        events = start_weft(ctx, ["events", "--json", "--port", str(port)], label=f"events-{n}")
        pid, res = curl(ctx, ["-w", CURL_SIZES, "-H", "X-Pad: " + "p" * 6000, "-H", f"traceparent: {TRACEPARENT}",
                              "-o", ctx.path(f"1-{n}"), url, "--next", "-w", CURL_SIZES, "-o", ctx.path(f"2-{n}"),
                              url + "?small"])
        eq(res.returncode, 0, f"curl exit code (stderr {res.stderr!r})")
        sizes = curl_sizes(res.stdout)
        eq([(s[0], s[4]) for s in sizes], [(200, 1), (200, 0)], "statuses and new connections of curl's transfers")
        check(sizes[0][1] > 6000, f"curl's first request is only {sizes[0][1]} bytes")
        xs, summary = finish(weft)
        events.stop()
        events.expect_clean_exit()
        return SimpleNamespace(xs=xs, summary=summary, pid=pid, sizes=sizes, events=events.events())

    r, quiet = quiet_run(2, attempt)
    xs = r.xs
    expected = [("GET", "/index.txt", 200), ("GET", "/index.txt?small", 200)]
    c = side(xs, "client", pid=r.pid)
    eq(sequence(c), expected, f"curl's exchanges; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"nginx's exchanges; all:\n    {listing(xs)}\n   ")
    eq(len(xs), 4, f"exchanges in all; all:\n    {listing(xs)}\n   ")
    check_connection(c, "client side")
    check_connection(s, "server side")
    head_len = r.sizes[0][1]

    def head_cut(x):
        """Whether the captured bytes of the request direction miss part of [0, head_len)."""
        direction = "send" if x["side"] == "client" else "recv"
        calls = syscalls(r.events, x["cookie"], direction)
        check(calls, f"the `weft events` run has no {direction} data for {brief(x)}")
        covered = 0
        for first, chunks in calls:
            if first["stream_pos"] > covered:
                break
            covered = max(covered, first["stream_pos"] + sum(ch["captured"] for ch in chunks))
        return covered < head_len, [(f["stream_pos"], f["bytes"], sum(ch["captured"] for ch in chs))
                                    for f, chs in calls]

    cut = {}
    for x in (c[0], s[0]):
        is_cut, calls = head_cut(x)
        cut[x["side"]] = is_cut
        where = f"{x['side']} side (syscalls as (pos, bytes, captured): {calls})"
        eq(x["request"]["truncated"], is_cut, f"first request's truncated flag, {where}")
        eq(x["request"]["bytes"], head_len, f"first request's bytes, {where}")
        eq(x["request_headers"].get("host"), f"127.0.0.1:{port}", f"host header, {where}")
        check(x["request_headers"].get("user-agent", "").startswith("curl/"), f"user-agent header, {where}")
        eq(x["request_headers"].get("traceparent"), None if is_cut else TRACEPARENT,
           f"traceparent (after the 6000-byte header), {where}")
        eq((x["response"]["truncated"], x["response_end_inferred"]), (False, False),
           f"response truncated/end inferred, {where}")
    check(cut["client"], "curl's request was captured whole: the test did not exceed the capture limit")
    check_pair(c[0], s[0], "first request", skip=("request_headers", "request.truncated", "request.body_bytes"))
    check_pair(c[1], s[1], "second request")
    for x in c[1], s[1]:
        eq((x["request"]["truncated"], x["request"]["stream_pos"], x["request"]["bytes"]),
           (False, head_len, r.sizes[1][1]), f"second request on the {x['side']} side: truncated/position/bytes")
    for x, (status, req_bytes, hdr_bytes, body_bytes, _) in zip(c, r.sizes):
        eq((x["response"]["bytes"], x["response"]["body_bytes"]), (hdr_bytes + body_bytes, body_bytes),
           f"{x['target']}: response bytes/body_bytes")
    check_counters(r.summary, quiet, exchanges=4, messages=8, truncated=sum(cut.values()), parse_errors=0,
                   unmatched_requests=0, unmatched_responses=0, undetected=0)
    # A GET without a body has no body bytes, however much of its header section was captured.
    for x in (c[0], s[0]):
        eq(x["request"]["body_bytes"], 0, f"body_bytes of the first request (a GET without a body, its "
                                          f"{x['request']['bytes']}-byte header section cut by the capture "
                                          f"limit), {x['side']} side")


@case(timeout=90)
def exchanges_keepalive_opened_before_weft(ctx):
    """A keep-alive connection to nginx opened before weft started, which weft joins in the
    middle of a 4 MB response: weft finds the conversation at the next request (detection
    looks again at each syscall boundary, its budget counting turns of the conversation, not
    reads) and traces every request after it, on both sides; the response it joined in the
    middle is no exchange."""
    port = free_port_both()
    root, _ = make_site(ctx, "big.bin", 4 << 20, text=False)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(b"small\n")
    Nginx(ctx, root, port)
    host = f"Host: 127.0.0.1:{port}\r\n".encode()

    def request(path):
        return b"GET " + path.encode() + b" HTTP/1.1\r\n" + host + b"\r\n"

    def attempt(n):
        sock = connect(port)
        ctx.on_cleanup(sock.close)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # keeps nginx mid-response
        sock.sendall(request("/big.bin"))
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            more = sock.recv(4096)
            check(more, "nginx closed before the big response's head")
            head += more
        head, body = split_head(head)
        length = int(re.search(rb"\r\ncontent-length: *(\d+)\r\n", head, re.I).group(1))
        weft = start_exchanges(ctx, port, f"joined-{n}")
        while len(body) < length:  # the rest of the response, all of it after weft started
            more = sock.recv(65536)
            check(more, f"nginx closed after {len(body)} of {length} body bytes")
            body += more
        eq(len(body), length, "the big response's body")
        answers = []
        for _ in range(2):
            sock.sendall(request("/small.txt"))
            answers += read_responses(sock, ["GET"])
        xs, summary = finish(weft)
        return SimpleNamespace(xs=xs, summary=summary, local=sock.getsockname(), answers=answers)

    r, quiet = quiet_run(2, attempt)
    xs = r.xs
    c = [x for x in side(xs, "client", pid=os.getpid()) if x["local"]["port"] == r.local[1]]
    expected = [("GET", "/small.txt", 200)] * 2
    eq(sequence(c), expected, f"the client's exchanges after weft joined; all:\n    {listing(xs)}\n   ")
    s = server_of(xs, c[0])
    eq(sequence(s), expected, f"nginx's exchanges after weft joined; all:\n    {listing(xs)}\n   ")
    small = len(request("/small.txt"))
    # Positions of a connection open before weft count from where weft found it (docs/events.md:
    # `existing`); the TCP sequence numbers are the kernel's own, so they show the gap.
    eq([x["request"]["stream_pos"] for x in c], [0, small], "the requests' stream positions")
    eq(c[1]["request"]["tcp_seq"] - c[0]["request"]["tcp_seq"], small, "the requests' tcp_seq step")
    eq(c[1]["response"]["tcp_seq"] - c[0]["response"]["tcp_seq"], len(r.answers[0]), "the responses' tcp_seq step")
    check(c[0]["response"]["stream_pos"] > 0, "the first response starts after the bytes of the response weft joined")
    for cx, sx in zip(c, s):  # each end counts from where weft found it: positions differ
        check_pair(cx, sx, "a request after weft joined", skip=("request.stream_pos", "response.stream_pos"))
    check(r.summary["redetected"] >= 1, f"the conversation was found after a miss: {r.summary}")
    check_counters(r.summary, quiet, exchanges=4, undetected=0, unmatched_requests=0, parse_errors=0)


RUN_CONNECTIONS = re.compile(r"^weft run: connections: (\d+) tracked, .* (\d+) evicted, ")


@case(timeout=120)
def exchanges_memory_budget_evicts_idle(ctx):
    """60 idle keep-alive connections to nginx (120 sockets, both ends traced), each after one
    request (404s: the page does not matter), under a 64 KiB connection budget: `weft exchanges` and `weft run` each free the
    oldest idle ones (at least 120 - 64 KiB / 1.5 KiB evicted, counted in their summaries), every
    idle connection's exchange was still shown, and a request made afterwards is traced on both
    ends. A budget that is not a size, or too small, stops weft with one line naming the option
    (exit code 2)."""
    for bad, why in (("12", "at least 64K"), ("64Q", "number of bytes"), ("-1M", "number of bytes")):
        res = run([harness.WEFT, "run", f"--max-connection-memory={bad}"], timeout=10)
        eq(res.returncode, 2, f"exit code of weft run --max-connection-memory {bad}")
        lines = res.stderr.decode().strip().splitlines()
        eq(len(lines), 1, f"lines printed for --max-connection-memory {bad}")
        check("--max-connection-memory" in lines[0] and why in lines[0], f"message for {bad}: {lines[0]!r}")
    res = run([harness.WEFT, "exchanges", "--idle-timeout", "0"], timeout=10)
    eq(res.returncode, 2, "exit code of weft exchanges --idle-timeout 0")

    port = free_port_both()
    root, _ = make_site(ctx, "index.txt", 100)
    Nginx(ctx, root, port)
    budget = ["--max-connection-memory", "64K"]
    weft = start_exchanges(ctx, port, "exchanges", *budget)
    spans_path = ctx.path("spans.json")
    tracer = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", spans_path, "--metrics-address", "off",
                              "--trace-wait", "0.2"] + budget, label="run")
    idle = []
    for i in range(60):
        s = connect(port)
        ctx.on_cleanup(s.close)
        s.sendall(f"GET /idle-{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        eq(status_of(read_responses(s, ["GET"])[0]), 404, f"idle connection {i}'s answer")
        idle.append(s)
    pid, res = curl(ctx, ["-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{port}/after-evictions"])
    eq(res.stdout.strip(), b"404", "curl's status after the evictions")
    xs, summary = finish(weft)
    tracer.stop()
    tracer.expect_clean_exit()
    for s in idle:
        s.close()

    fit = 64 * 1024 // 1536
    check(summary["evicted"] >= 120 - fit, f"weft exchanges evicted {summary['evicted']}, fewer than 120 - {fit}")
    targets = [x["target"] for x in xs]
    for i in range(60):
        eq(targets.count(f"/idle-{i}"), 2, f"exchanges of idle connection {i} (client and server)")
    eq(targets.count("/after-evictions"), 2, "exchanges of the request after the evictions (client and server)")
    evicted = [int(m.group(2)) for m in map(RUN_CONNECTIONS.match, tracer.stderr_lines) if m]
    eq(len(evicted), 1, "weft run's connections summary line")
    check(evicted[0] >= 120 - fit, f"weft run evicted {evicted[0]}, fewer than 120 - {fit}")
    kinds = []
    with open(spans_path) as f:
        for line in f:
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    kinds += [sp.get("kind") for sp in ss.get("spans", []) if "/after-evictions" in json.dumps(sp)]
    eq(sorted(kinds), [2, 3], "span kinds of the request after the evictions in weft run's file (server, client)")
