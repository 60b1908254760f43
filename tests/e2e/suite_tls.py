"""TLS plaintext from uprobes on OpenSSL and GnuTLS: real nginx with TLS (a self-signed
certificate made by the test), real curl, /usr/bin/python3's ssl module (which uses
SSL_read_ex/SSL_write_ex), Debian's wget (GnuTLS) and gnutls-serv --http on loopback. The HTTP
exchanges inside TLS are traced with their method, path and status, the client and server spans
of one request are stitched into one trace, the ciphertext is not parsed, a process that maps a TLS library weft had not hooked yet is traced within a second,
and `weft doctor` lists what it hooked and what it could not.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import TestFailure, case, check, eq, free_port, run, start_weft, wait_listening, wait_until
from peers import CURL, NGINX, curl, nginx_conf, start_nginx
from suite_tracing import otlp_spans

SYSTEM_PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_CLIENT_C = os.path.join(HERE, "tls", "static_client.c")
WGET = "/usr/bin/wget"  # Debian's wget links GnuTLS
GNUTLS_SERV = "/usr/bin/gnutls-serv"
HOST_LIBSSL = "/lib/x86_64-linux-gnu/libssl.so.3"
TLS13_CIPHERS = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
TLS12_CIPHERS = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                 "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"}

NGINX_TLS_HTTP = """\
    keepalive_timeout 30s;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        root {tmp}/www;
    }}
"""

# Requests on one kept-alive connection through Python's ssl module; prints each status.
PY_CLIENT = r"""
import http.client, ssl, sys
port, paths = int(sys.argv[1]), sys.argv[2:]
c = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context())
for p in paths:
    c.request("GET", p)
    r = c.getresponse()
    r.read()
    print(r.status, flush=True)
c.close()
"""


def make_certificate(ctx):
    """A self-signed certificate and its key in ctx.tmp (cert.pem, key.pem), readable by all."""
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-keyout", ctx.path("key.pem"), "-out", ctx.path("cert.pem")])
    eq(r.returncode, 0, f"openssl req exit status ({r.stderr.decode(errors='replace')[-300:]})")
    for f in ("key.pem", "cert.pem"):
        os.chmod(ctx.path(f), 0o644)


def start_nginx_tls(ctx):
    """nginx with one worker serving ctx.tmp/www over TLS on a free loopback port."""
    for tool in (NGINX, "openssl", CURL, SYSTEM_PYTHON):
        check(shutil.which(tool), f"{tool} is not installed (scripts/setup.sh installs it)")
    os.chmod(ctx.tmp, 0o755)  # the worker reads the certificate and pages; mkdtemp makes 0700
    os.makedirs(ctx.path("www", "tls"))
    for name in ("a", "b", "c"):
        with open(ctx.path("www", "tls", name), "w") as f:
            f.write(f"page {name}\n")
    make_certificate(ctx)
    port = free_port()
    workers = start_nginx(ctx, "nginx-tls", nginx_conf(ctx.tmp, NGINX_TLS_HTTP.format(tmp=ctx.tmp, port=port)), port)
    return port, workers


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def https_curl(ctx, port, paths):
    """One curl, all paths on one kept-alive connection; returns curl's pid."""
    pid, r = curl(ctx, ["-k"] + [a for p in paths for a in ("-o", "/dev/null", f"https://127.0.0.1:{port}{p}")])
    eq(r.returncode, 0, f"curl exit status ({r.stderr.decode(errors='replace').strip()})")
    return pid


def python_client(ctx, port, paths, env=None):
    """/usr/bin/python3's http.client over ssl, all paths on one connection; returns its pid."""
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", PY_CLIENT, str(port)] + list(paths), stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate(timeout=20)
    eq(proc.returncode, 0, f"python https client exit status ({err.decode(errors='replace')[-500:]})")
    return proc.pid


def wget_client(ctx, port, paths):
    """Debian's wget (GnuTLS: gnutls_record_send/recv), all paths on one kept-alive connection;
    returns its pid."""
    check(shutil.which(WGET), f"{WGET} is not installed (scripts/setup.sh installs it)")
    urls = [f"https://127.0.0.1:{port}{p}" for p in paths]
    proc = ctx.spawn([WGET, "--no-check-certificate", "--no-hsts", "--tries=1", "--timeout=15", "-q",
                      "-O", "/dev/null"] + urls, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=20)
    # 8: the server answered an error status (the 404 path); any other failure is the test's.
    check(proc.returncode in (0, 8), f"wget exit status {proc.returncode} ({err.decode(errors='replace')[-500:]})")
    return proc.pid


def start_gnutls_serv(ctx):
    """gnutls-serv --http (GnuTLS: gnutls_record_recv/send) on a free loopback port; returns the
    port and the process."""
    check(shutil.which(GNUTLS_SERV), f"{GNUTLS_SERV} is not installed (scripts/setup.sh installs gnutls-bin)")
    if not os.path.exists(ctx.path("cert.pem")):
        make_certificate(ctx)
    port = free_port()
    log = open(ctx.path("gnutls-serv.out"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([GNUTLS_SERV, "--http", "--port", str(port), "--x509certfile", ctx.path("cert.pem"),
                      "--x509keyfile", ctx.path("key.pem")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(port, proc=proc)
    except TestFailure as e:
        raise TestFailure(f"{e}; gnutls-serv said: {read(ctx.path('gnutls-serv.out'))[-1500:]}")
    return port, proc


def exchanges_json(weft):
    raw = weft.stdout_bytes().decode("utf-8", "replace")
    return [json.loads(line) for line in raw[:raw.rfind("\n") + 1].splitlines() if line.strip()]


def http_of(xs, pid=None, side=None):
    return [x for x in xs if x.get("protocol") == "http1" and (pid is None or x["pid"] == pid) and
            (side is None or x["side"] == side)]


def exchange_listing(xs):
    return "\n    ".join(f"{x['side']} {x['comm']}[{x['pid']}] {x.get('method')} {x.get('target')} -> "
                         f"{x.get('status')}" for x in xs) or "(none)"


EXCHANGES_TLS = re.compile(r", (\d+) TLS connections read as plaintext \((\d+) ciphertext bytes not parsed\),")


def exchanges_tls_counts(weft):
    """(connections read as plaintext, ciphertext bytes not parsed) from `weft exchanges`'s summary."""
    for line in weft.stderr_lines:
        m = EXCHANGES_TLS.search(line)
        if m:
            return int(m.group(1)), int(m.group(2))
    raise TestFailure(f"no 'TLS connections read as plaintext' in weft's summary: {weft.stderr_tail(10)}")


def tls_call_counts(weft):
    """weft's 'tls library calls:' summary line as a dict (calls, unmapped, ...)."""
    for line in weft.stderr_lines:
        m = harness.SUMMARY_TLS.match(line)
        if m:
            return {k: int(v) for k, v in (item.split("=") for item in m.group(1).split())}
    raise TestFailure(f"no 'tls library calls:' line in weft's summary: {weft.stderr_tail(10)}")


@case(timeout=90)
def tls_nginx_curl_python_wget_spans_stitched(ctx):
    """curl (SSL_read/SSL_write), python3 (SSL_read_ex/SSL_write_ex) and wget (GnuTLS's
    gnutls_record_send/recv), each with three requests on one kept-alive TLS connection to
    nginx: nine client and nine server spans, https, with the right method, path and status, each
    server span the child of its client span (same-node evidence: the TLS records' TCP sequence
    numbers)."""
    port, workers = start_nginx_tls(ctx)
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    paths = ["/tls/a", "/tls/missing", "/tls/b"]
    curl_pid = https_curl(ctx, port, paths)
    py_pid = python_client(ctx, port, [p + "?py" for p in paths])
    wget_pid = wget_client(ctx, port, [p + "?wget" for p in paths])

    def spans():
        return [s for s in otlp_spans(out) if s["attrs"].get("server.port") == str(port)]
    wait_until(lambda: len(spans()) >= 18, 20, "18 spans of the HTTPS requests in the OTLP file")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    summary = harness.parse_run_summary(weft.stderr_lines)
    by_id = {s["spanId"]: s for s in got}
    for client_pid in (curl_pid, py_pid, wget_pid):
        clients = sorted((s for s in got if s["pid"] == client_pid), key=lambda s: int(s["startTimeUnixNano"]))
        eq([(s["kind"], s["attrs"]["http.request.method"], s["attrs"]["url.path"], s["attrs"]["http.response.status_code"])
            for s in clients], [(3, "GET", "/tls/a", "200"), (3, "GET", "/tls/missing", "404"), (3, "GET", "/tls/b", "200")],
           f"client spans of pid {client_pid}")
        for s in clients:
            eq(s["attrs"]["url.scheme"], "https", "url.scheme of a client span")
            check(s["attrs"]["url.full"].startswith(f"https://127.0.0.1:{port}/tls/"), f"url.full {s['attrs']['url.full']}")
            kids = [k for k in got if k.get("parentSpanId") == s["spanId"]]
            check(len(kids) == 1 and kids[0]["pid"] in workers and kids[0]["kind"] == 2,
                  f"client span {s['name']} of pid {client_pid}: one nginx server child, got "
                  f"{[(k['service'], k['kind']) for k in kids]}")
            eq(kids[0]["traceId"], s["traceId"], "trace of the server span")
            eq(kids[0]["attrs"]["url.path"], s["attrs"]["url.path"], "path the server saw")
            eq(kids[0]["attrs"]["url.scheme"], "https", "url.scheme of a server span")
            check("parentSpanId" not in s or s["parentSpanId"] not in by_id, "a client span is the root here")
    eq(len(got), 18, "spans on the TLS port")
    # Read from each connection's ServerHello, on both ends' spans (nginx 1.22 offers up to TLS 1.2
    # unless told otherwise; the python3 server below speaks 1.3).
    eq({(s["attrs"].get("tls.protocol.name"), s["attrs"].get("tls.protocol.version")) for s in got}, {("tls", "1.2")},
       "tls.protocol.name and version of every span: " +
       str(sorted({(s["pid"], s["kind"], s["attrs"].get("tls.protocol.version")) for s in got})))
    check({s["attrs"].get("tls.cipher") for s in got} <= TLS12_CIPHERS,
          f"tls.cipher of the spans: {sorted({str(s['attrs'].get('tls.cipher')) for s in got})}")
    check(summary.get("same-node", 0) >= 9, f"same-node links ({summary})")
    tls = [line for line in weft.stderr_lines if "connections read as plaintext" in line]
    check(tls and int(tls[0].split("tls: ")[1].split()[0]) >= 6,
          f"connections read as plaintext (three clients, three servers): {tls}")


@case(timeout=90)
def tls_exchanges_ciphertext_not_parsed(ctx):
    """`weft exchanges`: exactly the HTTP exchanges inside TLS, no parse errors, the ciphertext
    counted as not parsed; wget's (GnuTLS) three requests on one kept-alive connection give one
    exchange each, on one connection at each end; with --no-tls the same traffic gives no HTTP
    exchange at all."""
    port, workers = start_nginx_tls(ctx)
    for tls in (True, False):
        weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)] + ([] if tls else ["--no-tls"]),
                          label=f"exchanges-{tls}")
        curl_pid = https_curl(ctx, port, ["/tls/a", "/tls/c"])
        wget_pid = wget_client(ctx, port, ["/tls/a?w", "/tls/b?w", "/tls/c?w"])
        if tls:
            wait_until(lambda: len(http_of(exchanges_json(weft))) >= 10, 15, "10 HTTP exchanges")
        weft.stop()
        weft.expect_clean_exit()
        xs = http_of(exchanges_json(weft))
        calls = tls_call_counts(weft)
        read_as_plaintext, not_parsed = exchanges_tls_counts(weft)
        if not tls:
            eq(len(xs), 0, f"HTTP exchanges without the TLS hooks:\n    {exchange_listing(xs)}")
            eq(read_as_plaintext, 0, "connections read as plaintext with --no-tls")
            continue
        eq(sorted((x["side"], x["method"], x["target"], x["status"]) for x in xs),
           sorted([(side, "GET", target, 200) for side in ("client", "server")
                   for target in ("/tls/a", "/tls/c", "/tls/a?w", "/tls/b?w", "/tls/c?w")]),
           f"exchanges:\n    {exchange_listing(xs)}")
        check(all(x["pid"] == (wget_pid if x["target"].endswith("?w") else curl_pid)
                  for x in xs if x["side"] == "client"), f"client exchanges are curl's and wget's:\n    {exchange_listing(xs)}")
        check(all(x["pid"] in workers for x in xs if x["side"] == "server"), "server exchanges are nginx's")
        for side in ("client", "server"):
            cookies = {x["cookie"] for x in xs if x["side"] == side and x["target"].endswith("?w")}
            eq(len(cookies), 1, f"connections of wget's kept-alive requests at the {side} end")
        http_line = [line for line in weft.stderr_lines if line.startswith("weft exchanges: http1:")]
        check(http_line and "parse_errors=0 " in http_line[0], f"HTTP/1 counters: {http_line}")
        eq(read_as_plaintext, 4, "connections read as plaintext (curl's, wget's, and nginx's two ends)")
        check(not_parsed > 0, "ciphertext bytes counted as not parsed")
        check(calls["calls"] >= 14, f"TLS calls reported ({calls})")
        eq(calls["nested"], 0, f"wget's gnutls_record_send into gnutls_record_send2 is one call ({calls})")


@case(timeout=60)
def tls_gnutls_serv_server_spans(ctx):
    """gnutls-serv --http (GnuTLS, a connection per request) hit by curl (OpenSSL) twice: two
    server spans of gnutls-serv with the path and status, https, each the child of curl's client
    span in one trace."""
    port, serv = start_gnutls_serv(ctx)
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    pids = [https_curl(ctx, port, [p]) for p in ("/gnutls/one", "/gnutls/two")]

    def spans():
        return [s for s in otlp_spans(out) if s["attrs"].get("server.port") == str(port)]
    wait_until(lambda: len(spans()) >= 4, 20, "4 spans of the requests to gnutls-serv in the OTLP file")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    servers = sorted((s for s in got if s["pid"] == serv.pid), key=lambda s: int(s["startTimeUnixNano"]))
    eq([(s["kind"], s["attrs"]["http.request.method"], s["attrs"]["url.path"], s["attrs"]["http.response.status_code"],
         s["attrs"]["url.scheme"]) for s in servers],
       [(2, "GET", "/gnutls/one", "200", "https"), (2, "GET", "/gnutls/two", "200", "https")],
       "gnutls-serv's server spans")
    for s in servers:
        parent = [c for c in got if c["spanId"] == s.get("parentSpanId")]
        check(len(parent) == 1 and parent[0]["pid"] in pids and parent[0]["kind"] == 3,
              f"server span {s['attrs']['url.path']}: the child of a curl client span, got parent {parent}")
        eq(parent[0]["traceId"], s["traceId"], "trace of the server span")
        eq(parent[0]["attrs"]["url.path"], s["attrs"]["url.path"], "path the client asked for")
    eq(len(got), 4, "spans on gnutls-serv's port")


# A process whose TLS library is a file weft has not hooked (a copy of libssl.so.3, loaded
# through LD_LIBRARY_PATH): one new connection per request, every 100 ms for 2 s; prints when
# each was made (seconds since the process started) and whether it maps the copy.
LATE_CLIENT = r"""
import time
t0 = time.monotonic()
import http.client, ssl, sys
port, copy = int(sys.argv[1]), sys.argv[2]
print("maps-copy", copy in open("/proc/self/maps").read(), flush=True)
n = 0
while time.monotonic() - t0 < 2.0:
    at = time.monotonic() - t0
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context())
    c.request("GET", f"/tls/a?n={n}")
    r = c.getresponse()
    r.read()
    c.close()
    print(n, round(at, 3), r.status, flush=True)
    n += 1
    time.sleep(0.1)
"""


def copy_libssl(ctx, where):
    os.makedirs(ctx.path(where), exist_ok=True)
    copy = ctx.path(where, "libssl.so.3")
    shutil.copy(HOST_LIBSSL, copy)
    return copy


@case(timeout=90)
def tls_library_first_mapped_after_start_traced_within_a_second(ctx):
    """A library file no process mapped when weft started is found from the new process's exec
    (sched_process_exec, then /proc/PID/maps as its loader runs) and hooked: every request the
    process makes from one second after its start on is traced."""
    port, _ = start_nginx_tls(ctx)
    copy = copy_libssl(ctx, "lib")
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", LATE_CLIENT, str(port), copy], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, env={**os.environ, "LD_LIBRARY_PATH": ctx.path("lib")})
    out, err = proc.communicate(timeout=30)
    eq(proc.returncode, 0, f"late client exit status ({err.decode(errors='replace')[-500:]})")
    lines = out.decode().splitlines()
    eq(lines[0], "maps-copy True", "the client maps the copy of libssl.so.3 (LD_LIBRARY_PATH)")
    made = {int(n): float(at) for n, at, status in (line.split() for line in lines[1:])}
    wanted = {f"/tls/a?n={n}" for n, at in made.items() if at >= 1.0}
    check(len(wanted) >= 5, f"requests made after the first second: {len(wanted)} ({made})")

    def traced():
        return {x["target"] for x in http_of(exchanges_json(weft), pid=proc.pid, side="client")}
    try:
        wait_until(lambda: wanted <= traced(), 10, "the client's requests after its first second")
    finally:
        weft.stop()
    got = traced()
    first = min((made[int(t.split("=")[1])] for t in got), default=None)
    print(f"    first traced request of the new process: {first} s after its start; "
          f"{len(got)} of {len(made)} requests traced")


# Maps a file named libssl.so.3 that is no ELF file: weft finds it and cannot hook it.
MAP_FAKE = r"""
import mmap, sys
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print("mapped", flush=True)
sys.stdin.read()
"""


@case(timeout=60)
def tls_doctor_lists_libraries(ctx):
    """`weft doctor` lists each TLS library file: the host's OpenSSL and GnuTLS, hooked; a copy one process maps,
    hooked, with that process counted; a file that only looks like one, not hooked, with why;
    and names what is not supported yet."""
    copy = copy_libssl(ctx, "lib")
    holder = ctx.spawn([SYSTEM_PYTHON, "-c", "import ssl, sys; print('ready', flush=True); sys.stdin.read()"],
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "LD_LIBRARY_PATH": ctx.path("lib")},
                       stop_signal=signal.SIGKILL)
    eq(holder.stdout.readline().decode().strip(), "ready", "python holding the copy")
    os.makedirs(ctx.path("fake"))
    fake = ctx.path("fake", "libssl.so.3")
    with open(fake, "wb") as f:
        f.write(b"not an ELF file\n" * 512)
    faker = ctx.spawn([SYSTEM_PYTHON, "-c", MAP_FAKE, fake], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                      stop_signal=signal.SIGKILL)
    eq(faker.stdout.readline().decode().strip(), "mapped", "python mapping the fake library")
    r = run([harness.WEFT, "doctor"], timeout=60)
    text = r.stdout.decode(errors="replace")
    lines = text.splitlines()

    def line_of(path):
        found = [line for line in lines if path in line]
        check(found, f"doctor names {path}; it printed:\n{text}")
        return found[0]
    host = next((line for line in lines if line.strip().startswith("hooked") and "/libssl.so.3 " in line
                 and ctx.tmp not in line), None)
    check(host, f"doctor lists the host's libssl.so.3 as hooked:\n{text}")
    gnutls = [line for line in lines if line.strip().startswith("hooked") and " GnuTLS " in line and "/libgnutls.so.30" in line]
    check(gnutls, f"doctor lists the host's libgnutls.so.30 as hooked:\n{text}")
    copied = line_of(f"/proc/{holder.pid}/root{copy}")
    check(copied.strip().startswith("hooked") and "OpenSSL 3" in copied and " 1 process(es)" in copied,
          f"the copy: hooked, one process: {copied}")
    faked = line_of(f"/proc/{faker.pid}/root{fake}")
    check(faked.strip().startswith("NOT HOOKED") and "SSL_write" in faked, f"the fake: not hooked, and why: {faked}")
    check(any("not supported yet: " in line for line in lines), f"doctor names what is not supported:\n{text}")


# asyncio's TLS runs OpenSSL on memory BIOs (SSLObject + MemoryBIO): SSL_read_ex/SSL_write_ex
# make no syscall, so nothing ties them to a socket.
ASYNCIO_CLIENT = r"""
import asyncio, ssl, sys
async def main(port, paths):
    ctx = ssl._create_unverified_context()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    for p in paths:
        writer.write(f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
        await reader.readexactly(length)
        print(head.split(b" ")[1].decode(), flush=True)
    writer.close()
asyncio.run(main(int(sys.argv[1]), sys.argv[2:]))
"""


# An HTTP/1.1 server on asyncio's TLS (ssl.SSLObject over MemoryBIOs): keep-alive, 200 for every
# request. argv: port, cert, key. Prints "listening" once ready.
ASYNCIO_SERVER = r"""
import asyncio, ssl, sys
async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            body = b"asyncio " + head.split(b" ")[1] + b"\n"
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()
async def main(port, cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(handle, "127.0.0.1", port, ssl=ctx)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
"""


@case(timeout=90)
def tls_python_asyncio_client_and_server_traced(ctx):
    """Python's asyncio over TLS (ssl.SSLObject on MemoryBIOs: the event loop moves the ciphertext
    outside SSL_read_ex/SSL_write_ex, as node does): an asyncio client with three requests on one
    connection to nginx, and curl against an asyncio.start_server(ssl=...) server. Each request a
    client and a server span, https, the server span the child of the client span. The asyncio
    server's very first connection is a warm-up, not asserted: its thread is marked as a memory-BIO
    thread by its first handshake, so a request read together with that handshake's last flight
    cannot be proven (it is counted as unmapped, never attached elsewhere)."""
    port, workers = start_nginx_tls(ctx)
    a_port = free_port()
    a_server = ctx.spawn([SYSTEM_PYTHON, "-c", ASYNCIO_SERVER, str(a_port), ctx.path("cert.pem"), ctx.path("key.pem")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    eq(a_server.stdout.readline().strip(), b"listening", "the asyncio https server started")
    out = ctx.path("traces.jsonl")
    # Python's ssl runs on the shared libssl.so: its BIO hooks in libcrypto are opt-in.
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1",
                            "--tls-memory-bio"], label="run")
    https_curl(ctx, a_port, ["/warmup"])
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", ASYNCIO_CLIENT, str(port), "/tls/a", "/tls/b", "/tls/c"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got_out, err = proc.communicate(timeout=20)
    eq(proc.returncode, 0, f"asyncio client exit status ({err.decode(errors='replace')[-500:]})")
    eq(got_out.decode().split(), ["200", "200", "200"], "statuses the asyncio client read")
    curl_pids = [https_curl(ctx, a_port, [f"/aio/{n}/x", f"/aio/{n}/y"]) for n in range(2)]

    def spans():
        return [s for s in otlp_spans(out) if s["attrs"].get("server.port") in (str(port), str(a_port)) and
                s["attrs"].get("url.path") != "/warmup"]
    wait_until(lambda: len(spans()) >= 14, 20, "14 spans of the HTTPS requests in the OTLP file")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    for pids, server_pids, expected in (([proc.pid], workers, ["/tls/a", "/tls/b", "/tls/c"]),
                                        (curl_pids, [a_server.pid], ["/aio/0/x", "/aio/0/y", "/aio/1/x", "/aio/1/y"])):
        clients = sorted((s for s in got if s["pid"] in pids and s["kind"] == 3),
                         key=lambda s: int(s["startTimeUnixNano"]))
        eq([(s["attrs"]["url.path"], s["attrs"]["http.response.status_code"], s["attrs"]["url.scheme"])
            for s in clients], [(p, "200", "https") for p in expected], f"client spans of pids {pids}")
        for s in clients:
            kids = server_children(got, s)
            eq([(k["pid"] in server_pids, k["kind"], k["attrs"]["url.scheme"], k["attrs"]["url.path"]) for k in kids],
               [(True, 2, "https", s["attrs"]["url.path"])], f"the server child of {s['attrs']['url.path']}")
    eq(len(got), 14, "spans on the two TLS ports")


# Two TLS connections driven by hand on one thread over ssl.MemoryBIO (what asyncio and node do,
# in an order neither happens to use): each round writes B's request, then A's, sends B's
# ciphertext first (the thread's next send after A's SSL_write is B's), then reads the socket of
# A, then of B, and decrypts A's (the thread's last receive is B's). A guess by "next send" or
# "last receive" of the thread would put A's request or response on B. argv: port, rounds.
MEMORY_BIO_INTERLEAVED = r"""
import socket, ssl, sys
port, rounds = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl._create_unverified_context()
class Conn:
    def __init__(self, name):
        self.name, self.sock = name, socket.create_connection(("127.0.0.1", port))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out)
        while True:
            try:
                self.tls.do_handshake()
                self.send()
                return
            except ssl.SSLWantReadError:
                self.send()
                self.receive()
    def send(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)
    def receive(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(self.name)
        self.inc.write(data)
    def response(self):
        got = b""
        while True:
            try:
                got += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.receive()
                continue
            head, sep, body = got.partition(b"\r\n\r\n")
            length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if sep and length and len(body) >= int(length[0].split(b":")[1]):
                return head.split(b" ")[1].decode()
a, b = Conn("a"), Conn("b")
for r in range(rounds):
    for c in (b, a):
        c.tls.write(f"GET /tls/{'abc'[r % 3]}?conn={c.name}&r={r} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    b.send()
    a.send()
    a.receive()
    b.receive()
    print(a.response(), b.response(), flush=True)
"""


@case(timeout=60)
def tls_memory_bio_interleaved_never_crossed(ctx):
    """Two memory-BIO connections on one thread, their ciphertext moved in an order where the
    thread's next send and last receive belong to the other connection (MEMORY_BIO_INTERLEAVED):
    every exchange weft reports at the client's end is on its own connection, never the other's,
    and every request is reported once (a call whose socket its bytes could not prove is reported
    under the connection its object was tied to before, without a sequence number)."""
    port, workers = start_nginx_tls(ctx)
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port), "--tls-memory-bio"], label="exchanges")
    rounds = 6
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", MEMORY_BIO_INTERLEAVED, str(port), str(rounds)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=30)
    eq((proc.returncode, out.decode().split()), (0, ["200"] * (2 * rounds)),
       f"interleaved memory-BIO client ({err.decode(errors='replace')[-500:]})")
    try:
        wait_until(lambda: len(http_of(exchanges_json(weft), pid=proc.pid)) >= 2 * rounds, 10,
                   f"{2 * rounds} client exchanges")
    except TestFailure:
        pass  # the listing below says what is missing or crossed
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft), pid=proc.pid, side="client")
    by_conn = {}
    for x in xs:
        by_conn.setdefault(x["cookie"], []).append(x["target"].split("conn=")[1].split("&")[0])
    eq(sorted(set(names) for names in by_conn.values()) if by_conn else [], [{"a"}, {"b"}],
       f"each connection carries its own requests only:\n    {exchange_listing(xs)}")
    eq(sorted(x["target"] for x in xs),
       sorted(f"/tls/{'abc'[r % 3]}?conn={c}&r={r}" for r in range(rounds) for c in "ab"),
       f"every request once:\n    {exchange_listing(xs)}")
    check(all(x["status"] == 200 for x in xs), "statuses")


def build_static_client(ctx, name, flags):
    """tls/static_client.c built into ctx.tmp/name with OpenSSL linked in (`flags` say how)."""
    check(shutil.which("gcc"), "gcc is not installed (scripts/setup.sh installs build-essential)")
    out = ctx.path(name)
    r = run(["gcc", "-O1", "-o", out, STATIC_CLIENT_C] + flags, timeout=120)
    eq(r.returncode, 0, f"building {name} ({r.stderr.decode(errors='replace')[-800:]})")
    return out


def weft_hooked(weft, path):
    """Whether this weft process holds a uprobe link on the file at `path` (its link ids from
    /proc/PID/fdinfo, their files from bpftool: other tracers on the machine may hook it too)."""
    ids = set()
    fdinfo = f"/proc/{weft.proc.pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        m = re.search(r"^link_id:\s+(\d+)$", read(os.path.join(fdinfo, fd)), re.M)
        if m:
            ids.add(int(m.group(1)))
    r = run(["bpftool", "-j", "link", "show"], timeout=20)
    # A perf-event uprobe shows the file as weft named it, through the process's root
    # (/proc/PID/root/...); a uprobe_multi link shows the file's own path (this test's processes
    # share weft's root).
    return any(link["id"] in ids and (link.get("file", "").endswith("/root" + path) or link.get("path") == path)
               for link in json.loads(r.stdout or b"[]"))


def held_static_client(ctx, exe, port, paths, weft=None):
    """Runs a static client (once `weft` has hooked its executable, if given) to the end of its
    requests and keeps it alive (stdin open) so that `weft doctor` sees it; returns the process."""
    proc = ctx.spawn([exe, str(port)] + list(paths), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, env={**os.environ, "WEFT_HOLD": "1"}, stop_signal=signal.SIGKILL)
    eq(proc.stdout.readline().decode().strip(), "ready", f"{os.path.basename(exe)} started")
    if weft:  # a new file is hooked from the new process's exec on, within a second
        wait_until(lambda: weft_hooked(weft, exe), 10, f"weft hooking {exe}", interval=0.1)
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    lines = [proc.stdout.readline().decode().strip() for _ in range(len(paths) + 1)]
    eq(lines, ["200"] * len(paths) + ["holding"], f"{os.path.basename(exe)}'s statuses")
    return proc


def doctor_tls_lines():
    r = run([harness.WEFT, "doctor"], timeout=60)
    text = r.stdout.decode(errors="replace")
    return text, text[text.find("tls libraries:"):].splitlines()


@case(timeout=120)
def tls_openssl_linked_into_executable(ctx):
    """A client with OpenSSL linked in statically (SSL_read/SSL_write found in its .symtab, not
    exported) is hooked at those functions and traced like one on libssl.so.3: its three
    kept-alive requests are three client exchanges on one connection. The same client built
    static and stripped cannot be looked into: `weft doctor` says so (no symbol table), and
    its connection gives no client exchange (nginx's end is read as usual)."""
    port, workers = start_nginx_tls(ctx)
    linked = build_static_client(ctx, "linked_client", ["-Wl,-Bstatic", "-lssl", "-lcrypto", "-Wl,-Bdynamic",
                                                        "-ldl", "-pthread"])
    stripped = build_static_client(ctx, "stripped_client", ["-static", "-s", "-lssl", "-lcrypto", "-ldl",
                                                            "-pthread"])
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")
    a = held_static_client(ctx, linked, port, ["/tls/a?l", "/tls/b?l", "/tls/c?l"], weft=weft)
    b = held_static_client(ctx, stripped, port, ["/tls/a?s", "/tls/b?s"])
    text, lines = doctor_tls_lines()
    mine = [line for line in lines if f"/proc/{a.pid}/root{linked}" in line]
    check(mine and mine[0].split()[:4] == ["hooked", "OpenSSL", "(linked", "in)"] and "found in .symtab (not exported)" in mine[0],
          f"doctor lists the linked client as hooked, found in .symtab:\n{text}")
    mine = [line for line in lines if f"/proc/{b.pid}/root{stripped}" in line]
    check(mine and mine[0].strip().startswith("NOT HOOKED") and
          "no symbol table: statically linked TLS cannot be found" in mine[0],
          f"doctor lists the stripped client as not hooked, and why:\n{text}")
    wait_until(lambda: len(http_of(exchanges_json(weft))) >= 8, 15, "8 HTTP exchanges")
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft))
    clients = [x for x in xs if x["side"] == "client"]
    eq(sorted((x["pid"], x["target"], x["status"]) for x in clients),
       [(a.pid, "/tls/a?l", 200), (a.pid, "/tls/b?l", 200), (a.pid, "/tls/c?l", 200)],
       f"client exchanges (the linked client's only):\n    {exchange_listing(xs)}")
    eq(len({x["cookie"] for x in clients}), 1, "connections of the linked client's kept-alive requests")
    eq(sorted(x["target"] for x in xs if x["side"] == "server" and x["pid"] in workers),
       ["/tls/a?l", "/tls/a?s", "/tls/b?l", "/tls/b?s", "/tls/c?l"], "nginx's exchanges")


NODE_SERVER = r"""
const https = require("https"), fs = require("fs");
const [port, key, cert] = process.argv.slice(1);  // node -e CODE ARGS: ARGS from argv[1]
https.createServer({key: fs.readFileSync(key), cert: fs.readFileSync(cert)}, (req, res) => {
  res.end("node " + req.url + "\n");
}).listen(+port, "127.0.0.1", () => console.log("listening"));
"""

# Three requests on one kept-alive connection; prints each status.
NODE_CLIENT = r"""
const https = require("https");
const [port, ...paths] = process.argv.slice(1);
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
(async () => {
  for (const path of paths) {
    const status = await new Promise((resolve, reject) => {
      https.get({host: "127.0.0.1", port: +port, path, agent, rejectUnauthorized: false}, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode));
      }).on("error", reject);
    });
    console.log(status);
  }
  agent.destroy();
})();
"""


# Requests in parallel over several kept-alive connections of one event loop: one agent (one
# connection) per prefix, each making its requests one after the other; prints each status.
NODE_PARALLEL_CLIENT = r"""
const https = require("https");
const [port, connections, requests] = process.argv.slice(1).map(Number);
const get = (agent, path) => new Promise((resolve, reject) => {
  https.get({host: "127.0.0.1", port, path, agent, rejectUnauthorized: false}, (res) => {
    res.resume();
    res.on("end", () => resolve(res.statusCode));
  }).on("error", reject);
});
(async () => {
  const statuses = await Promise.all([...Array(connections).keys()].map(async (c) => {
    const agent = new https.Agent({keepAlive: true, maxSockets: 1});
    const got = [];
    for (let r = 0; r < requests; r++) got.push(await get(agent, `/conn${c}/req${r}`));
    agent.destroy();
    return got;
  }));
  console.log(statuses.flat().join(" "));
})();
"""

# node's https over a unix socket (no TCP socket weft hooks): its calls can be tied to nothing.
NODE_UNIX_SOCKET = r"""
const https = require("https"), fs = require("fs");
const [path, key, cert] = process.argv.slice(1);
const server = https.createServer({key: fs.readFileSync(key), cert: fs.readFileSync(cert)}, (req, res) => {
  res.end("unix " + req.url + "\n");
});
server.listen(path, async () => {
  for (const p of ["/unix/a", "/unix/b"])
    await new Promise((resolve, reject) => https.get({socketPath: path, path: p, rejectUnauthorized: false},
      (res) => { res.resume(); res.on("end", resolve); }).on("error", reject));
  server.close();
  console.log("done");
});
"""


def start_node_server(ctx, node):
    """NODE_SERVER on a free loopback port; returns (process, port)."""
    port = free_port()
    server = ctx.spawn([node, "-e", NODE_SERVER, str(port), ctx.path("key.pem"), ctx.path("cert.pem")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    eq(server.stdout.readline().decode().strip(), "listening", "node server")
    return server, port


def check_node_hooked(server, node):
    """doctor lists what node's OpenSSL is (linked into its executable here, or a shared libssl) as
    hooked, with the BIO functions (node's executable defines them; a libssl's libcrypto)."""
    text, lines = doctor_tls_lines()
    exe = os.path.realpath(node)
    maps = read(f"/proc/{server.pid}/maps")
    if "/libssl.so" in maps:  # a node linking libssl dynamically (Debian's own nodejs)
        check(any(line.strip().startswith("hooked") and "/libssl.so" in line for line in lines) and
              any(line.strip().startswith("hooked") and "/libcrypto.so" in line for line in lines),
              f"doctor lists the libssl and libcrypto node maps as hooked:\n{text}")
    else:
        mine = [line for line in lines if f"/proc/{server.pid}/root{exe}" in line]
        check(mine and mine[0].split()[:4] == ["hooked", "OpenSSL", "(linked", "in)"] and
              "found in .dynsym (exported)" in mine[0] and "without" not in mine[0],
              f"doctor lists node's executable {exe} as hooked OpenSSL (linked in), exported, BIO_read and "
              f"BIO_write included:\n{text}")


def memory_bio_flags(node):
    """node linking libssl.so (Debian's own nodejs) has its BIO calls in the shared libcrypto,
    whose hooks are opt-in (every OpenSSL user would take their traps); nodesource's node links
    OpenSSL into its executable, hooked by default."""
    r = run(["ldd", node], timeout=20)
    return ["--tls-memory-bio"] if b"libssl.so" in r.stdout else []


@case(timeout=120)
def tls_node_https_server_and_client_traced_and_stitched(ctx):
    """node's https server and client (OpenSSL on memory BIOs: libuv moves the ciphertext outside
    SSL_read/SSL_write) against each other, three requests on one kept-alive connection: three
    client and three server spans, https, with method, path and status, each server span the
    child of its client span, as their plaintext variant. node's https over a unix socket (no TCP
    socket to tie its calls to): its calls are counted as unmapped, nothing of it is attributed
    to any connection."""
    node = shutil.which("node")
    check(node, "node is not installed (scripts/setup.sh installs nodejs)")
    make_certificate(ctx)
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"]
                      + memory_bio_flags(node), label="run")
    server, port = start_node_server(ctx, node)
    check_node_hooked(server, node)
    paths = ["/node/a", "/node/b?x=1", "/node/c"]
    client = ctx.spawn([node, "-e", NODE_CLIENT, str(port)] + paths, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got_out, err = client.communicate(timeout=30)
    eq((client.returncode, got_out.decode().split()), (0, ["200", "200", "200"]),
       f"node client ({err.decode(errors='replace')[-500:]})")
    unix = ctx.spawn([node, "-e", NODE_UNIX_SOCKET, ctx.path("https.sock"), ctx.path("key.pem"), ctx.path("cert.pem")],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    u_out, u_err = unix.communicate(timeout=30)
    eq((unix.returncode, u_out.decode().split()), (0, ["done"]), f"node over a unix socket ({u_err[-300:]})")

    def spans():
        return [s for s in otlp_spans(out) if s["attrs"].get("server.port") == str(port)]
    wait_until(lambda: len(spans()) >= 6, 20, "6 spans of node's HTTPS requests in the OTLP file")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    clients = sorted((s for s in got if s["pid"] == client.pid), key=lambda s: int(s["startTimeUnixNano"]))
    eq([(s["kind"], s["attrs"]["http.request.method"], s["attrs"]["url.path"], s["attrs"]["http.response.status_code"],
         s["attrs"]["url.scheme"]) for s in clients],
       [(3, "GET", p.split("?")[0], "200", "https") for p in paths], "node client's spans")
    for s in clients:
        kids = server_children(got, s)
        eq([(k["pid"], k["kind"], k["attrs"]["url.scheme"], k["attrs"]["url.path"], k["traceId"]) for k in kids],
           [(server.pid, 2, "https", s["attrs"]["url.path"], s["traceId"])],
           f"the node server child of {s['attrs']['url.path']}")
        for span in [s] + kids:  # read from the ServerHello, which node's OpenSSL 3 answers with 1.3
            eq(span["attrs"].get("tls.protocol.version"), "1.3", "tls.protocol.version of node's spans")
    eq(len(got), 6, "spans on node's port")
    eq([s["attrs"].get("url.path") for s in otlp_spans(out) if "/unix/" in s["attrs"].get("url.path", "")], [],
       "spans of node's https over a unix socket")
    calls = tls_call_counts(weft)
    check(calls["unmapped"] >= 4, f"node's https over a unix socket: 2+2 writes and 2+2 reads unmapped ({calls})")
    check(summary_same_node(weft) >= 3, "same-node links")


def summary_same_node(weft):
    return harness.parse_run_summary(weft.stderr_lines).get("same-node", 0)


@case(timeout=120)
def tls_node_parallel_connections_never_crossed(ctx):
    """A node client making requests over four kept-alive connections in parallel on one event
    loop, to a node server (one event loop, four connections): every request traced once at each
    end, and every connection (socket cookie) carries only its own paths at each end, although
    both processes move the ciphertext of all four on one thread."""
    node = shutil.which("node")
    check(node, "node is not installed (scripts/setup.sh installs nodejs)")
    make_certificate(ctx)
    server, port = start_node_server(ctx, node)
    weft = start_weft(ctx, ["exchanges", "--json", "--port", str(port)] + memory_bio_flags(node), label="exchanges")
    connections, requests = 4, 8
    client = ctx.spawn([node, "-e", NODE_PARALLEL_CLIENT, str(port), str(connections), str(requests)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got_out, err = client.communicate(timeout=60)
    eq((client.returncode, got_out.decode().split()), (0, ["200"] * (connections * requests)),
       f"node parallel client ({err.decode(errors='replace')[-500:]})")
    total = connections * requests
    try:
        wait_until(lambda: len(http_of(exchanges_json(weft))) >= 2 * total, 20, f"{2 * total} exchanges")
    except TestFailure:
        pass  # the listing below says what is missing or crossed
    weft.stop()
    weft.expect_clean_exit()
    xs = http_of(exchanges_json(weft))
    for side, pid in (("client", client.pid), ("server", server.pid)):
        mine = http_of(xs, pid=pid, side=side)
        eq(sorted(x["target"] for x in mine),
           sorted(f"/conn{c}/req{r}" for c in range(connections) for r in range(requests)),
           f"{side} exchanges, each request once:\n    {exchange_listing(xs)}")
        by_conn = {}
        for x in mine:
            by_conn.setdefault(x["cookie"], set()).add(x["target"].split("/")[1])
        eq(sorted(len(prefixes) for prefixes in by_conn.values()), [1] * connections,
           f"{side}: each connection carries one connection's paths only: {by_conn}")
        check(all(x["status"] == 200 for x in mine), f"{side} statuses")
    eq(len(xs), 2 * total, f"exchanges on node's port:\n    {exchange_listing(xs)}")


# A python3 HTTPS server (http.server over the ssl module): HTTP/1.1, keep-alive, 200 for every
# GET with a short body. argv: port, cert, key. Prints "listening" once ready.
PY_HTTPS_SERVER = r"""
import http.server, ssl, sys
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = b"hello over tls\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
"""

# python3-requests: one Session (a kept-alive connection), every path; prints each status.
PY_REQUESTS_CLIENT = r"""
import sys, requests, urllib3
urllib3.disable_warnings()
port, paths = int(sys.argv[1]), sys.argv[2:]
with requests.Session() as s:
    for p in paths:
        print(s.get(f"https://127.0.0.1:{port}{p}", verify=False, timeout=10).status_code, flush=True)
"""


def server_children(got, client):
    return [k for k in got if k.get("parentSpanId") == client["spanId"]]


@case(timeout=120)
def tls_openssl_s_server_and_python_requests(ctx):
    """python3-requests (a kept-alive Session) against a python3 ssl-module server: every request
    a client span and a server span, https, stitched client -> server as their plaintext variant.
    curl against `openssl s_server -www`: curl's spans, https; s_server's end is not read (it
    reads and writes through an SSL BIO, which reaches OpenSSL's record layer without calling
    SSL_read/SSL_write: docs/probes.md), so it has no span, and nothing of it is attributed
    elsewhere."""
    make_certificate(ctx)
    s_port = free_port()
    s_server = ctx.spawn(["openssl", "s_server", "-accept", str(s_port), "-cert", ctx.path("cert.pem"), "-key",
                          ctx.path("key.pem"), "-www", "-quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_listening(s_port, proc=s_server)
    py_port = free_port()
    py_server = ctx.spawn([SYSTEM_PYTHON, "-c", PY_HTTPS_SERVER, str(py_port), ctx.path("cert.pem"),
                           ctx.path("key.pem")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    eq(py_server.stdout.readline().strip(), b"listening", "the python3 https server started")
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    curl_pids = [https_curl(ctx, s_port, ["/"]) for _ in range(2)]  # s_server closes after each
    paths = ["/r/a", "/r/b", "/r/c"]
    client = ctx.spawn([SYSTEM_PYTHON, "-c", PY_REQUESTS_CLIENT, str(py_port)] + paths, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    got_out, got_err = client.communicate(timeout=30)
    eq((client.returncode, got_out.split()), (0, [b"200"] * 3),
       f"python3-requests' exit status and statuses ({got_err.decode(errors='replace')[-300:]})")

    def spans():
        return [s for s in otlp_spans(out) if s["attrs"].get("server.port") in (str(s_port), str(py_port))]
    wait_until(lambda: len(spans()) >= 8, 20, "8 spans of the HTTPS requests in the OTLP file")
    weft.stop()
    weft.expect_clean_exit()
    got = spans()
    curl_spans = sorted((s for s in got if s["pid"] in curl_pids), key=lambda s: int(s["startTimeUnixNano"]))
    eq([(s["kind"], s["attrs"]["url.scheme"], s["attrs"]["url.path"], s["attrs"]["http.response.status_code"])
        for s in curl_spans], [(3, "https", "/", "200")] * 2, "curl's spans to openssl s_server -www")
    eq([s["name"] for s in got if s["pid"] == s_server.pid], [], "spans of s_server (its SSL BIO is not hooked)")
    eq([s["name"] for s in got if s["attrs"].get("server.port") == str(s_port) and s["pid"] not in curl_pids], [],
       "spans on s_server's port from any other process")
    pids, server_pid, expected = [client.pid], py_server.pid, [(p, "200") for p in paths]
    clients = sorted((s for s in got if s["pid"] in pids and s["kind"] == 3),
                     key=lambda s: int(s["startTimeUnixNano"]))
    eq([(s["attrs"]["url.path"], s["attrs"]["http.response.status_code"]) for s in clients], expected,
       f"client spans of pids {pids}")
    for s in clients:
        eq(s["attrs"]["url.scheme"], "https", "url.scheme of a client span")
        kids = server_children(got, s)
        eq([(k["pid"], k["kind"], k["attrs"]["url.scheme"], k["attrs"]["url.path"]) for k in kids],
           [(server_pid, 2, "https", s["attrs"]["url.path"])], f"the server child of {s['name']} {s['attrs']['url.path']}")
        for span in [s] + kids:  # python's ssl module and OpenSSL 3 agree on TLS 1.3
            eq(span["attrs"].get("tls.protocol.version"), "1.3", "tls.protocol.version of the python pair")
            check(span["attrs"].get("tls.cipher") in TLS13_CIPHERS, f"tls.cipher {span['attrs'].get('tls.cipher')}")
    eq(len(got), 8, "spans on the two TLS ports")


def weft_link_and_session_counts(weft):
    """(uprobe links weft holds, entries of its weft_tls_sessions map), from its fdinfo and bpftool."""
    links, maps = set(), set()
    fdinfo = f"/proc/{weft.proc.pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        text = read(os.path.join(fdinfo, fd))
        m = re.search(r"^link_id:\s+(\d+)$", text, re.M)
        if m:
            links.add(int(m.group(1)))
        m = re.search(r"^map_id:\s+(\d+)$", text, re.M)
        if m:
            maps.add(int(m.group(1)))
    shown = json.loads(run(["bpftool", "-j", "link", "show"], timeout=20).stdout or b"[]")
    uprobes = sum(1 for link in shown if link["id"] in links and "uprobe" in link.get("type", "") + link.get("link_type", ""))
    sessions = None
    for m in json.loads(run(["bpftool", "-j", "map", "show"], timeout=20).stdout or b"[]"):
        if m["id"] in maps and m.get("name", "").startswith("weft_tls_sessio"):
            sessions = len(json.loads(run(["bpftool", "-j", "map", "dump", "id", str(m["id"])], timeout=20).stdout or b"[]"))
    check(sessions is not None, "weft's weft_tls_sessions map was not found")
    return uprobes, sessions


@case(timeout=240)
def tls_short_lived_clients_traced_and_forgotten(ctx):
    """1 000 curl processes, one HTTPS request each (eight at a time), to nginx with TLS: every one
    is traced (a client span per process, https, stitched to nginx's server span), and they leave
    nothing behind in weft: the same uprobe links as before (one set per file, not per process)
    and no TLS session entries (SSL_free forgets each)."""
    port, workers = start_nginx_tls(ctx)
    out = ctx.path("traces.jsonl")
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "1"], label="run")
    https_curl(ctx, port, ["/tls/a?warm"])  # the host's libssl is hooked at start: this one is traced too
    links_before, _ = weft_link_and_session_counts(weft)
    count, parallel = 1000, 8
    procs, pids = [], []
    for i in range(count):
        if len(procs) >= parallel:
            p = procs.pop(0)
            eq(p.wait(timeout=30), 0, "a short-lived curl's exit status")
        p = subprocess.Popen([CURL, "-sk", "-o", "/dev/null", f"https://127.0.0.1:{port}/tls/n{i}"])
        ctx.on_cleanup(lambda p=p: p.poll() is None and p.kill())
        procs.append(p)
        pids.append(p.pid)
    for p in procs:
        eq(p.wait(timeout=30), 0, "a short-lived curl's exit status")

    def clients():
        return [s for s in otlp_spans(out) if s["kind"] == 3 and s["attrs"].get("server.port") == str(port)
                and s["attrs"].get("url.path", "").startswith("/tls/n")]
    wait_until(lambda: len(clients()) >= count, 60, f"{count} client spans of the short-lived curls")
    links_after, sessions = weft_link_and_session_counts(weft)
    weft.stop()
    weft.expect_clean_exit()
    got = otlp_spans(out)
    traced = clients()
    eq(sorted(int(s["attrs"]["url.path"][len("/tls/n"):]) for s in traced), list(range(count)),
       "requests traced, once each")
    eq({s["attrs"]["url.scheme"] for s in traced}, {"https"}, "url.scheme of the client spans")
    parents = {k["parentSpanId"] for k in got if k["kind"] == 2 and k["pid"] in workers}
    unstitched = [s["attrs"]["url.path"] for s in traced if s["spanId"] not in parents]
    eq(unstitched, [], "client spans without nginx's server span as their child")
    eq(links_after, links_before, "weft's uprobe links after 1 000 TLS processes")
    check(sessions <= parallel, f"TLS session entries left after every process freed its objects: {sessions}")
