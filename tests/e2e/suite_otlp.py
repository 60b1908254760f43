"""OTLP network export from `weft run`, checked by an independent receiver
(tests/e2e/otlp_receiver.py: Debian's python3-protobuf and python3-grpcio with modules protoc
generates from the official opentelemetry-proto files) over OTLP/HTTP protobuf and JSON and
OTLP/gRPC, plain and TLS: every span of known traffic field by field, configuration from flags,
a config file and the OTEL_* environment and their precedence, weft never exporting its own
connections (exports, /metrics scrapes), metrics pushes, and delivery when the backend is down,
slow to come up, or refusing (503 with Retry-After, 400, gRPC UNAVAILABLE and INVALID_ARGUMENT),
with weft's own counters adding up.

Run alone: python3 tests/e2e/run.py --weft build/weft -k otlp_"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import harness
from harness import TestFailure, case, check, eq, free_port, run, stop_process, wait_until
from peers import HttpServer, curl, read_line

HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "otlp_receiver.py")
# The receiver needs Debian's python3-protobuf and python3-grpcio: Debian's interpreter, not
# whichever python3 runs the tests.
DEBIAN_PYTHON = "/usr/bin/python3"
TRACE_WAIT = "0.5"
EXPORT_INTERVAL = "0.2"
# Slack around the test's own clock readings when checking span times (weft converts kernel
# monotonic times to wall-clock with an offset measured at start).
CLOCK_SLACK_NS = 200_000_000

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


# ---------------------------------------------------------------------------------------------
# The receiver


class Receiver:
    """otlp_receiver.py in its own process; records() reads what it decoded."""

    def __init__(self, ctx, http_port=0, grpc_port=0, args=(), label="receiver"):
        check(os.access(DEBIAN_PYTHON, os.X_OK), f"{DEBIAN_PYTHON} is missing (Debian package python3)")
        self.ctx = ctx
        self.out = ctx.path(f"{label}.jsonl")
        err = open(ctx.path(f"{label}.stderr"), "wb")
        ctx.on_cleanup(err.close)
        argv = [DEBIAN_PYTHON, RECEIVER, "--out", self.out, "--http-port", str(http_port),
                "--grpc-port", str(grpc_port)] + [str(a) for a in args]
        self.proc = ctx.spawn(argv, stdout=subprocess.PIPE, stderr=err, stop_signal=signal.SIGTERM)
        self.proc.err_path = err.name
        line = read_line(self.proc, timeout=30, what="'listening http=PORT grpc=PORT'")
        m = re.fullmatch(r"listening http=(\d+) grpc=(\d+|off)", line)
        if not m:
            raise TestFailure(f"the OTLP receiver said {line!r}")
        self.http_port = int(m.group(1))
        self.grpc_port = None if m.group(2) == "off" else int(m.group(2))
        self.pid = self.proc.pid

    @property
    def http_url(self):
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self):
        return f"http://127.0.0.1:{self.grpc_port}"

    def records(self):
        if not os.path.exists(self.out):
            return []
        out = []
        with open(self.out) as f:
            for n, line in enumerate(f, 1):
                if not line.endswith("\n"):
                    break  # being written
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise TestFailure(f"receiver record {n} is not JSON ({e}): {line[:200]!r}")
        return out

    def stop(self):
        stop_process(self.proc, signal.SIGTERM)
        eq(self.proc.returncode, 0, "the receiver's exit status after SIGTERM")


def accepted(records, signal_name="traces"):
    return [r for r in records if r["signal"] == signal_name and r["status"] in (200, "OK")]


def check_records_clean(records):
    """Every request weft sent decoded, without warnings (unknown JSON fields, upper-case ids,
    keys that are not lowerCamelCase)."""
    bad = [r for r in records if r["error"] or r["warnings"]]
    check(not bad, "requests the receiver could not decode cleanly: " +
          "; ".join(f"{r['transport']} {r['path']}: {r['error'] or r['warnings'][:3]}" for r in bad[:3]))


def attr_map(attributes):
    return {a["key"]: a.get("value", {}) for a in attributes or []}


def flat_spans(records):
    """(span, resource attributes, scope, record) for every span of the given records."""
    out = []
    for r in records:
        for rs in r["request"].get("resourceSpans", []):
            res = attr_map(rs.get("resource", {}).get("attributes"))
            for ss in rs.get("scopeSpans", []):
                for s in ss.get("spans", []):
                    out.append((s, res, ss.get("scope", {}), r))
    return out


def int_attr(attrs, key):
    v = attrs.get(key)
    check(v is not None and "intValue" in v, f"attribute {key} should be an int, got {v!r}")
    return int(v["intValue"])


def str_attr(attrs, key):
    v = attrs.get(key)
    check(v is not None and "stringValue" in v, f"attribute {key} should be a string, got {v!r}")
    return v["stringValue"]


# ---------------------------------------------------------------------------------------------
# weft


def start_run(ctx, args, env=None, label="run", wait=True):
    """`weft run ARGS` with a clean environment: no OTEL_* variable of the caller's, plus
    `env`. harness.Weft spawns with the current environment, so it is swapped around the spawn."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean.update(env or {})
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(clean)
    try:
        weft = harness.Weft(ctx, ["run"] + list(args), label)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return weft.wait_capturing() if wait else weft


def base_args(ctx, *extra):
    """Fast flushing for tests, and weft's Prometheus endpoint on a free port (the default
    9464 may be taken by another weft on the machine)."""
    metrics_port = free_port()
    args = ["--trace-wait", TRACE_WAIT, "--export-interval", EXPORT_INTERVAL,
            "--metrics-address", f"127.0.0.1:{metrics_port}"] + list(extra)
    return args, metrics_port


def export_summary(weft):
    """weft's span and export counters from its summary (harness.parse_run_summary checks that
    they add up); `spans` is the number of spans built."""
    out = harness.parse_run_summary(weft.stderr_lines)
    out["spans"] = out["built"]
    return out


def stop_weft(weft, timeout=15.0):
    weft.stop(timeout=timeout)
    weft.expect_clean_exit()
    return export_summary(weft)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------------------------------------
# Traffic: python3 http.server and curl, one distinct path per request


class Traffic:
    def __init__(self, ctx, pages):
        root = ctx.path("www")
        os.makedirs(root, exist_ok=True)
        for n in range(pages):
            with open(os.path.join(root, f"page-{n}.txt"), "w") as f:
                f.write(f"page {n}\n" * (n + 1))
        self.port = free_port()
        self.server = HttpServer(ctx, root, self.port)
        self.pages = pages
        self.curl_pids = []
        self.window = None

    def drive(self, ctx, count=None, first=0):
        """`count` requests, paths page-<first>..; one curl process (a new connection per
        request: http.server answers HTTP/1.0). Returns the paths."""
        count = self.pages if count is None else count
        paths = [f"/page-{n % self.pages}.txt" for n in range(first, first + count)]
        t0 = time.time_ns()
        args = []
        for p in paths:
            args += ["-o", "/dev/null", f"http://127.0.0.1:{self.port}{p}"]
        pid, r = curl(ctx, args, timeout=60)
        eq(r.returncode, 0, f"curl exit status ({r.stderr.decode(errors='replace').strip()[:200]})")
        t1 = time.time_ns()
        self.curl_pids.append(pid)
        self.window = (min(t0, self.window[0]) if self.window else t0, t1)
        return paths

    def spans(self, records):
        """Spans of this traffic: those whose server.port is the server's."""
        out = []
        for s, res, scope, rec in flat_spans(records):
            attrs = attr_map(s.get("attributes"))
            port = attrs.get("server.port", {}).get("intValue")
            if port is not None and int(port) == self.port:
                out.append((s, res, scope, rec))
        return out


def check_traffic(traffic, records, paths, resource_extra=None, service_name=None):
    """Each request gives exactly one server span (python3 http.server) and one client span
    (curl), the client the server's parent in one trace, every field as the traffic was."""
    spans = traffic.spans(records)
    ids = [s["spanId"] for s, _, _, _ in spans]
    eq(len(ids), len(set(ids)), "distinct span ids (a span delivered twice?)")
    servers = {}
    clients = {}
    for s, res, scope, rec in spans:
        what = f"span {s.get('name')!r} {s.get('spanId')}"
        attrs = attr_map(s.get("attributes"))
        path = str_attr(attrs, "url.path")
        kind = s.get("kind")
        check(kind in (2, 3), f"{what}: kind {kind!r}, expected SERVER=2 or CLIENT=3")
        (servers if kind == 2 else clients).setdefault(path, []).append((s, res, scope, attrs))
    for path in paths:
        check(len(servers.get(path, [])) == 1 and len(clients.get(path, [])) == 1,
              f"{path}: {len(servers.get(path, []))} server and {len(clients.get(path, []))} client spans, "
              f"expected 1 and 1 (spans of the traffic: {len(spans)})")
    eq(sorted(servers), sorted(paths), "paths of the server spans")
    eq(sorted(clients), sorted(paths), "paths of the client spans")
    lo, hi = traffic.window[0] - CLOCK_SLACK_NS, traffic.window[1] + CLOCK_SLACK_NS
    hostname = os.uname().nodename
    for path in paths:
        (srv, srv_res, srv_scope, srv_attrs), = servers[path]
        (cli, cli_res, cli_scope, cli_attrs), = clients[path]
        for s, res, scope, attrs, side in ((srv, srv_res, srv_scope, srv_attrs, "server"),
                                           (cli, cli_res, cli_scope, cli_attrs, "client")):
            what = f"{path} {side} span"
            check(HEX32.match(s.get("traceId", "")) and s["traceId"] != "0" * 32,
                  f"{what}: trace id {s.get('traceId')!r} is not 32 hex digits, non-zero")
            check(HEX16.match(s.get("spanId", "")) and s["spanId"] != "0" * 16,
                  f"{what}: span id {s.get('spanId')!r} is not 16 hex digits, non-zero")
            eq(s.get("name"), f"GET {path}", f"{what}: name")
            start, end = int(s.get("startTimeUnixNano", 0)), int(s.get("endTimeUnixNano", 0))
            check(lo <= start <= end <= hi,
                  f"{what}: start {start} end {end} not ordered inside the test's window [{lo}, {hi}]")
            eq(str_attr(attrs, "http.request.method"), "GET", f"{what}: http.request.method")
            eq(str_attr(attrs, "url.path"), path, f"{what}: url.path")
            eq(int_attr(attrs, "http.response.status_code"), 200, f"{what}: http.response.status_code")
            eq(int_attr(attrs, "server.port"), traffic.port, f"{what}: server.port")
            eq(str_attr(attrs, "network.peer.address"), "127.0.0.1", f"{what}: network.peer.address")
            eq(scope.get("name"), "weft", f"{what}: instrumentation scope name")
            check(scope.get("version"), f"{what}: instrumentation scope without a version: {scope!r}")
            eq(str_attr(res, "host.name"), hostname, f"{what}: resource host.name")
            executable = str_attr(res, "process.executable.name")
            eq(str_attr(res, "service.name"), service_name or executable, f"{what}: resource service.name")
            for k, v in (resource_extra or {}).items():
                eq(str_attr(res, k), v, f"{what}: resource attribute {k} (from OTEL_RESOURCE_ATTRIBUTES)")
        eq(int_attr(srv_res, "process.pid"), traffic.server.pid, f"{path}: server span's process.pid")
        check(int_attr(cli_res, "process.pid") in traffic.curl_pids,
              f"{path}: client span's process.pid {int_attr(cli_res, 'process.pid')} is not curl's "
              f"{traffic.curl_pids}")
        eq(str_attr(cli_res, "process.executable.name"), "curl", f"{path}: client span's executable")
        eq(srv.get("traceId"), cli.get("traceId"), f"{path}: server and client span in one trace")
        eq(srv.get("parentSpanId"), cli["spanId"], f"{path}: the server span's parent is curl's client span")
        check(not cli.get("parentSpanId"), f"{path}: curl's client span should be a root, has parent "
                                           f"{cli.get('parentSpanId')}")
    return len(spans)


def check_no_self_spans(records, weft, receivers, metrics_port=None):
    """weft never exports its own connections: neither its exporter's (nor the receiver's side
    of them) nor a scrape of its /metrics. Told apart by port and pid only: other weft
    processes on the machine may export and be scraped too, and their traffic is fair game."""
    ports = {metrics_port} if metrics_port else set()
    pids = {weft.proc.pid}
    for r in receivers:
        ports |= {r.http_port, r.grpc_port} - {None}
        pids.add(r.pid)
    for s, res, _, _ in flat_spans(accepted(records)):
        attrs = attr_map(s.get("attributes"))
        used = {int(attrs[k]["intValue"]) for k in ("server.port", "network.peer.port", "client.port")
                if k in attrs and "intValue" in attrs[k]}
        pid = int(res.get("process.pid", {}).get("intValue", 0))
        check(not (used & ports) and pid not in pids,
              f"weft exported a span of its own telemetry: {s.get('name')!r} ports {sorted(used)} pid {pid} "
              f"(weft's ports and pids: {sorted(ports)} {sorted(pids)})")


def wait_for_spans(receiver, traffic, count, timeout, weft=None):
    def arrived():
        if weft is not None and weft.proc.poll() is not None:
            raise TestFailure(f"weft exited with {weft.proc.returncode}; stderr ends with {weft.stderr_tail()}")
        return len(traffic.spans(accepted(receiver.records()))) >= count
    try:
        wait_until(arrived, timeout, f"{count} spans of the traffic at the receiver", interval=0.1)
    except TestFailure as e:
        got = len(traffic.spans(accepted(receiver.records())))
        tail = weft.stderr_tail() if weft else ""
        raise TestFailure(f"{e} (got {got}); weft stderr ends with: {tail}")


# ---------------------------------------------------------------------------------------------
# The receiver itself, against encoders that are not weft's


RECEIVER_CLIENT = r'''
import gzip, json, sys, tempfile
sys.path.insert(0, sys.argv[1])
import otlp_receiver, grpc
otlp_receiver.compile_protos(otlp_receiver.PROTO_ROOT, tempfile.mkdtemp())
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
req = ts.ExportTraceServiceRequest.FromString(open(sys.argv[3], "rb").read())
for n in range(40):
    req.resource_spans[0].scope_spans[0].spans.append(req.resource_spans[0].scope_spans[0].spans[0])
channel = grpc.insecure_channel("127.0.0.1:" + sys.argv[2], compression=grpc.Compression.Gzip)
export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                             request_serializer=ts.ExportTraceServiceRequest.SerializeToString,
                             response_deserializer=ts.ExportTraceServiceResponse.FromString)
for n in range(2):
    try:
        export(req, metadata=[("x-weft-test", "grpc")], timeout=10)
        print("OK")
    except grpc.RpcError as e:
        print(e.code().name)
'''

SELF_CHECK_TEXT = """
resource_spans {
  resource { attributes { key: "service.name" value { string_value: "self-check" } } }
  scope_spans {
    scope { name: "weft" version: "0" }
    spans {
      trace_id: "\\x4b\\xf9\\x2f\\x35\\x77\\xb3\\x4d\\xa6\\xa3\\xce\\x92\\x9d\\x0e\\x0e\\x47\\x36"
      span_id: "\\x00\\xf0\\x67\\xaa\\x0b\\xa9\\x02\\xb7"
      parent_span_id: "\\x11\\x22\\x33\\x44\\x55\\x66\\x77\\x88"
      name: "GET /self" kind: SPAN_KIND_SERVER
      start_time_unix_nano: 1700000000000000000 end_time_unix_nano: 1700000000000001000
      attributes { key: "http.response.status_code" value { int_value: 200 } }
    }
  }
}
"""
SELF_CHECK_SPAN = {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "00f067aa0ba902b7",
                   "parentSpanId": "1122334455667788", "name": "GET /self", "kind": 2,
                   "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000",
                   "attributes": [{"key": "http.response.status_code", "value": {"intValue": "200"}}]}


@case(timeout=60)
def otlp_receiver_self_check(ctx):
    """The receiver decodes what protoc --encode, hand-written OTLP/JSON and a grpcio client
    send, rejects what it must, and injects the faults it is asked to: the ground truth of the
    other tests is checked against encoders that are not weft's."""
    import gzip
    import urllib.error
    import urllib.request
    receiver = Receiver(ctx, args=["--fail-http", "1:503:7", "--fail-grpc", "1:UNAVAILABLE"])
    text = ctx.path("span.txt")
    with open(text, "w") as f:
        f.write(SELF_CHECK_TEXT)
    r = run(["protoc", "-I/usr/include", "--encode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
             "opentelemetry/proto/collector/trace/v1/trace_service.proto"], stdin=open(text, "rb"), timeout=30)
    eq(r.returncode, 0, f"protoc --encode ({r.stderr.decode(errors='replace')[-300:]})")
    binary = r.stdout
    with open(ctx.path("span.bin"), "wb") as f:
        f.write(binary)

    def post(body, ctype, path="/v1/traces", encoding=None):
        headers = {"Content-Type": ctype, "X-Weft-Test": "self"}
        if encoding:
            headers["Content-Encoding"] = encoding
        req = urllib.request.Request(receiver.http_url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    status, _, headers = post(binary, "application/x-protobuf")
    eq((status, headers.get("Retry-After")), (503, "7"), "the injected failure")
    eq(post(binary, "application/x-protobuf")[:2], (200, b""), "protobuf: 200 and an empty response")
    eq(post(gzip.compress(binary), "application/x-protobuf", encoding="gzip")[0], 200, "gzip protobuf")
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue":
                                                                                           "self-check"}}]},
                              "scopeSpans": [{"scope": {"name": "weft", "version": "0"}, "spans": [SELF_CHECK_SPAN]}]}]}
    eq(post(json.dumps(doc).encode(), "application/json")[:2], (200, b"{}"), "OTLP/JSON: 200 and {}")
    eq(post(b"\xff\xfe garbage", "application/x-protobuf")[0], 400, "a body that is not protobuf")
    bad_id = json.loads(json.dumps(doc))
    bad_id["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "S/kvNXezTaajzpKdDg5HNg=="  # base64
    eq(post(json.dumps(bad_id).encode(), "application/json")[0], 400, "OTLP/JSON with a base64 trace id")
    eq(post(b"{}", "text/plain")[0], 415, "an unknown content type")
    eq(post(b"{}", "application/json", path="/v1/logs")[0], 404, "a path that is no OTLP signal here")
    client = run([DEBIAN_PYTHON, "-c", RECEIVER_CLIENT, HERE, str(receiver.grpc_port), ctx.path("span.bin")],
                 timeout=30)
    eq(client.stdout.decode().split(), ["UNAVAILABLE", "OK"],
       f"gRPC answers ({client.stderr.decode(errors='replace')[-300:]})")
    receiver.stop()
    records = receiver.records()
    eq([(r["transport"], r["status"], r["compressed"]) for r in records],
       [("http/protobuf", 503, False), ("http/protobuf", 200, False), ("http/protobuf", 200, True),
        ("http/json", 200, False), ("http/protobuf", 400, False), ("http/json", 400, False),
        ("http", 415, False), ("http", 404, False), ("grpc", "UNAVAILABLE", True), ("grpc", "OK", True)],
       "what the receiver recorded")
    for r in records[:4]:
        span = r["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        eq(span, SELF_CHECK_SPAN, f"the span decoded from {r['transport']}")
        eq(r["headers"].get("x-weft-test"), "self", "a custom header")
    eq(records[-1]["headers"].get("x-weft-test"), "grpc", "gRPC metadata")
    eq(len(records[-1]["request"]["resourceSpans"][0]["scopeSpans"][0]["spans"]), 41, "spans of the gRPC request")
    check(all(r["error"] for r in records[4:8]), "rejections carry their reason")


# ---------------------------------------------------------------------------------------------
# 1. Each protocol, through each way of configuring weft


REQUESTS = 20


def export_case(ctx, transport, weft_args=(), env=None, config=None, header=None, compressed=False,
                resource_extra=None, service_name=None, scrape=False):
    """Runs weft with the receiver as its backend, drives REQUESTS requests, checks every span
    and every request the receiver decoded."""
    receiver = Receiver(ctx)
    traffic = Traffic(ctx, REQUESTS)
    fill = lambda s: s.replace("{http}", receiver.http_url).replace("{grpc}", receiver.grpc_url)  # noqa: E731
    args, metrics_port = base_args(ctx, *[fill(a) for a in weft_args])
    if config is not None:
        path = ctx.path("weft.json")
        with open(path, "w") as f:
            f.write(fill(json.dumps(config)))
        args += ["--config", path]
    env = {k: fill(v) for k, v in (env or {}).items()}
    weft = start_run(ctx, args, env=env)
    paths = traffic.drive(ctx)
    if scrape:
        _, r = curl(ctx, [f"http://127.0.0.1:{metrics_port}/metrics"])
        eq(r.returncode, 0, f"scraping weft's /metrics on {metrics_port} (curl: {r.stderr.decode(errors='replace')})")
        check(b"# TYPE" in r.stdout or b"# HELP" in r.stdout,
              f"weft's /metrics is not the Prometheus text format: {r.stdout[:200]!r}")
    wait_for_spans(receiver, traffic, 2 * len(paths), timeout=20, weft=weft)
    time.sleep(float(TRACE_WAIT) + 0.5)  # anything weft would export about itself arrives too
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    traces = [r for r in records if r["signal"] == "traces"]
    check(traces, "the receiver got no trace export request")
    for r in records:
        eq(r["transport"], transport, f"transport of a {r['signal']} request")
        if r["transport"] != "grpc":
            eq(r["path"], f"/v1/{r['signal']}", "HTTP path of an export request")
        if header:
            k, v = header
            eq(r["headers"].get(k), v, f"custom header {k} on a {r['signal']} request (headers {r['headers']})")
    for r in traces:
        if r["transport"] != "grpc" or len(json.dumps(r["request"])) > 1500:
            # gRPC leaves a message uncompressed when compressing would not make it smaller.
            eq(r["compressed"], compressed, f"{r['transport']} trace request compressed")
    n = check_traffic(traffic, traces, paths, resource_extra=resource_extra, service_name=service_name)
    check_no_self_spans(records, weft, [receiver], metrics_port if scrape else None)
    all_spans = len(flat_spans(accepted(records)))
    eq(summary["exported"], all_spans, "spans weft counted as exported vs spans the receiver accepted")
    eq((summary["dropped"], summary["failed_attempts"]), (0, 0),
       f"drops and failures (last error: {summary['last_error']})")
    print(f"    {ctx.name}: {n} spans of the traffic, {all_spans} exported in {len(traces)} requests "
          f"({len(records) - len(traces)} metrics requests)")


@case(timeout=90)
def otlp_http_protobuf_flags(ctx):
    export_case(ctx, "http/protobuf",
                weft_args=["--exporter", "otlp", "--otlp-endpoint", "{http}", "--otlp-protocol", "http/protobuf"],
                env={"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e,weft.test=flags"},
                resource_extra={"deployment.environment": "e2e", "weft.test": "flags"})


@case(timeout=90)
def otlp_http_json_environment(ctx):
    """Configured only by the standard variables; --exporter implied by the endpoint."""
    export_case(ctx, "http/json",
                env={"OTEL_EXPORTER_OTLP_ENDPOINT": "{http}", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
                     "OTEL_EXPORTER_OTLP_HEADERS": "x-weft-test=env%20value,x-second=2",
                     "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e,weft.test=env",
                     "OTEL_SERVICE_NAME": "weft-e2e-env", "OTEL_EXPORTER_OTLP_TIMEOUT": "5000"},
                header=("x-weft-test", "env value"),
                resource_extra={"deployment.environment": "e2e", "weft.test": "env"}, service_name="weft-e2e-env")


@case(timeout=90)
def otlp_grpc_config_file(ctx):
    export_case(ctx, "grpc",
                config={"exporter": "otlp", "otlp": {"endpoint": "{grpc}", "protocol": "grpc", "compression": "gzip",
                                                     "headers": {"x-weft-test": "file-value"}, "timeout": 5},
                        "resource_attributes": {"weft.test": "file"}},
                env={"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e"},
                header=("x-weft-test", "file-value"), compressed=True,
                resource_extra={"deployment.environment": "e2e", "weft.test": "file"})


@case(timeout=90)
def otlp_http_protobuf_gzip_header(ctx):
    """--otlp-traces-endpoint is used as is (nothing appended), gzip and a custom header."""
    export_case(ctx, "http/protobuf",
                weft_args=["--otlp-traces-endpoint", "{http}/v1/traces", "--otlp-compression", "gzip",
                           "--otlp-header", "X-Weft-Test=flag-value", "--otlp-timeout", "5"],
                header=("x-weft-test", "flag-value"), compressed=True)


@case(timeout=90)
def otlp_metrics_scrape_not_traced(ctx):
    """A scrape of weft's own /metrics during an OTLP export run is no span (neither curl's
    side nor weft's), and neither are weft's exports."""
    export_case(ctx, "http/protobuf", weft_args=["--otlp-endpoint", "{http}"], scrape=True)


@case(timeout=90)
def otlp_metrics_push(ctx):
    """With an OTLP endpoint, weft pushes its metrics every --metrics-interval over the same
    protocol, with the same headers and resource additions: weft's own resource
    (service.name weft, weft.* metrics) and data points stamped inside the run."""
    receiver = Receiver(ctx)
    traffic = Traffic(ctx, 5)
    for protocol, url in (("http/protobuf", receiver.http_url), ("http/json", receiver.http_url),
                          ("grpc", receiver.grpc_url)):
        t0 = time.time_ns()
        before = len(receiver.records())
        args, _ = base_args(ctx, "--otlp-endpoint", url, "--otlp-protocol", protocol, "--metrics-interval", "1",
                            "--otlp-header", "x-weft-test=metrics")
        weft = start_run(ctx, args, env={"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=e2e"},
                         label=f"run-{protocol.replace('/', '-')}")
        traffic.drive(ctx)

        def pushes():
            return [r for r in receiver.records()[before:] if r["signal"] == "metrics"]
        try:
            wait_until(lambda: len(pushes()) >= 2, 10, f"two {protocol} metrics pushes, 1 s apart", interval=0.1)
        except TestFailure as e:
            raise TestFailure(f"{e}; weft stderr ends with {weft.stderr_tail()}")
        stop_weft(weft)
        t1 = time.time_ns()
        got = pushes()
        check_records_clean(got)
        for r in got:
            eq(r["transport"], protocol, "transport of a metrics push")
            eq(r["status"], 200 if protocol != "grpc" else "OK", "answer to a metrics push")
            eq(r["headers"].get("x-weft-test"), "metrics", "custom header on a metrics push")
        names, self_resources = set(), 0
        for r in got:
            for rm in r["request"].get("resourceMetrics", []):
                res = attr_map(rm.get("resource", {}).get("attributes"))
                eq(str_attr(res, "deployment.environment"), "e2e", "OTEL_RESOURCE_ATTRIBUTES on a metrics resource")
                if str_attr(res, "service.name") == "weft":
                    self_resources += 1
                for sm in rm.get("scopeMetrics", []):
                    for m in sm.get("metrics", []):
                        names.add(m.get("name"))
                        kinds = [k for k in ("gauge", "sum", "histogram", "exponentialHistogram", "summary") if k in m]
                        eq(len(kinds), 1, f"data kinds of metric {m.get('name')}")
                        for p in m[kinds[0]].get("dataPoints", []):
                            t = int(p.get("timeUnixNano", 0))
                            check(t0 - CLOCK_SLACK_NS <= t <= t1 + CLOCK_SLACK_NS,
                                  f"metric {m.get('name')}: data point time {t} outside the run [{t0}, {t1}]")
        check(self_resources > 0, f"{protocol}: no metrics resource for weft itself (service.name weft)")
        check(any(n and n.startswith("weft.") for n in names),
              f"{protocol}: no weft.* metric among {sorted(names)[:10]}")
        print(f"    {ctx.name}: {protocol}: {len(got)} pushes, {len(names)} metric names")


# ---------------------------------------------------------------------------------------------
# 2. Precedence and bad configuration


@case(timeout=90)
def otlp_precedence_flags_file_environment(ctx):
    """The environment says gRPC to X, the file http/json to Y, the flags http/protobuf to Z:
    the file beats the environment, the flags beat both."""
    x = Receiver(ctx, label="env-x")
    y = Receiver(ctx, label="file-y")
    z = Receiver(ctx, label="flags-z")
    traffic = Traffic(ctx, 3)
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": x.grpc_url,
           "OTEL_EXPORTER_OTLP_HEADERS": "x-layer=env,x-env-only=1"}
    conf = ctx.path("weft.json")
    with open(conf, "w") as f:
        json.dump({"otlp": {"protocol": "http/json", "endpoint": y.http_url, "headers": {"x-layer": "file"}}}, f)

    def one_run(extra, want, transport, layer):
        before = len(traffic.spans(accepted(want.records())))
        args, _ = base_args(ctx, "--config", conf, *extra)
        weft = start_run(ctx, args, env=env, label=f"run-{layer}")
        paths = traffic.drive(ctx)
        wait_for_spans(want, traffic, before + 2 * len(paths), timeout=20, weft=weft)
        summary = stop_weft(weft)
        recs = [r for r in want.records() if r["signal"] == "traces"]
        check_records_clean(recs)
        check(all(r["transport"] == transport for r in recs),
              f"{layer} wins: transports {sorted({r['transport'] for r in recs})}, expected {transport}")
        eq(recs[-1]["headers"].get("x-layer"), layer, f"header x-layer when the {layer} layer wins")
        eq(recs[-1]["headers"].get("x-env-only"), "1", "a header only the environment sets (headers merge)")
        eq(summary["failed_attempts"], 0, f"failed attempts (last error: {summary['last_error']})")

    one_run([], y, "http/json", "file")
    one_run(["--otlp-protocol", "http/protobuf", "--otlp-endpoint", z.http_url, "--otlp-header", "x-layer=flags"],
            z, "http/protobuf", "flags")
    eq([r["transport"] for r in x.records()], [], "exports reaching the environment's endpoint")


# (config, what the one error line must contain)
BAD_CONFIGS = [
    ({"otlp": {"endpoint": "http://127.0.0.1:1", "bogus_setting": 1}}, ("otlp.bogus_setting",)),
    ({"exporter": "otlp", "colour": "blue"}, ("colour",)),
    ({"otlp": {"timeout": "soon"}}, ("otlp.timeout",)),
    ({"export_queue": {"max_spans": -5}}, ("export_queue.max_spans",)),
    ({"otlp": {"protocol": "carrier-pigeon"}}, ("protocol", "carrier-pigeon")),
    ({"otlp": {"compression": "zstd"}}, ("compression", "zstd")),
    ({"otlp": {"headers": {"x-a": 5}}}, ("otlp.headers.x-a",)),
]


@case(timeout=60)
def otlp_bad_config_file(ctx):
    """A config file with an unknown key or a bad value: exit 2, one line naming the key."""
    for n, (conf, keys) in enumerate(BAD_CONFIGS):
        path = ctx.path(f"bad-{n}.json")
        with open(path, "w") as f:
            json.dump(conf, f)
        r = run([harness.WEFT, "run", "--config", path, "--metrics-address", "off"], timeout=20,
                env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")})
        lines = r.stderr.decode(errors="replace").splitlines()
        eq(r.returncode, 2, f"exit status for config {conf} (stderr {lines[:3]})")
        eq(len(lines), 1, f"stderr lines for config {conf}: {lines[:4]}")
        check(all(k in lines[0] for k in keys), f"the error for config {conf} should name {keys}: {lines[0]!r}")
    path = ctx.path("not-json.json")
    with open(path, "w") as f:
        f.write("{ this is not json")
    r = run([harness.WEFT, "run", "--config", path], timeout=20)
    eq(r.returncode, 2, "exit status for a config file that is not JSON")
    r = run([harness.WEFT, "run", "--config", ctx.path("missing.json")], timeout=20)
    eq(r.returncode, 2, "exit status for a config file that does not exist")


# ---------------------------------------------------------------------------------------------
# 3. Backend down, then up


def backend_down_then_up(ctx, protocol, down_s):
    """Nothing listens for `down_s` seconds, then the receiver comes up on the port weft was
    given: every span arrives, within seconds of the receiver's start."""
    port = free_port()
    traffic = Traffic(ctx, REQUESTS)
    args, _ = base_args(ctx, "--otlp-endpoint", f"http://127.0.0.1:{port}", "--otlp-protocol", protocol)
    weft = start_run(ctx, args)
    paths = traffic.drive(ctx)
    time.sleep(down_s)  # nothing listens: weft's attempts fail
    check(weft.proc.poll() is None, f"weft exited while the backend was down: {weft.stderr_tail()}")
    grpc = protocol == "grpc"
    receiver = Receiver(ctx, http_port=0 if grpc else port, grpc_port=port if grpc else "off")
    up = time.monotonic()
    # weft's backoff tops out at 5 s, and gRPC's reconnect backoff at 1 s.
    wait_for_spans(receiver, traffic, 2 * len(paths), timeout=8, weft=weft)
    print(f"    {ctx.name}: delivered {time.monotonic() - up:.1f} s after the backend came up")
    time.sleep(1.0)
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    check_traffic(traffic, accepted(records), paths)
    check(summary["failed_attempts"] > 0 and summary["retries"] > 0,
          f"failed attempts and retries while the backend was down: {summary}")
    eq(summary["dropped"], 0, f"spans dropped: {summary}")
    eq(summary["exported"], len(flat_spans(accepted(records))), "exported vs received spans")
    print(f"    {ctx.name}: {summary}")


@case(timeout=120)
def otlp_backend_down_then_up(ctx):
    backend_down_then_up(ctx, "http/protobuf", 3.0)


@case(timeout=120)
def otlp_grpc_backend_down_then_up(ctx):
    backend_down_then_up(ctx, "grpc", 12.0)  # long enough for weft's and gRPC's backoffs to top out


def delivery_lines(weft):
    return [line for line in weft.stderr_lines
            if line.startswith(("weft run: export failing", "weft run: export still failing",
                                "weft run: export refused", "weft run: export to "))]


@case(timeout=120)
def otlp_backend_down_reported_as_it_happens(ctx):
    """While the backend is down weft says so on stderr at once, once (the next line may only
    come 30 s later), naming the endpoint without the credentials in its URL; when the backend
    is up again, one line says deliveries work again. All while weft runs, not at exit."""
    port = free_port()
    secret = "s3cret-pw"
    endpoint = f"http://weftuser:{secret}@127.0.0.1:{port}"
    shown = f"http://127.0.0.1:{port}/v1/traces"
    traffic = Traffic(ctx, 5)
    args, _ = base_args(ctx, "--otlp-endpoint", endpoint)
    weft = start_run(ctx, args)
    t0 = time.monotonic()
    paths = traffic.drive(ctx)
    wait_until(lambda: delivery_lines(weft), 10, "a stderr line saying the export is failing", interval=0.1)
    print(f"    {ctx.name}: told {time.monotonic() - t0:.1f} s after the traffic: {delivery_lines(weft)[0]}")
    time.sleep(3.0)  # several more failed attempts (backoff 0.25 s doubling): still one line
    lines = delivery_lines(weft)
    eq(len(lines), 1, f"lines about the failing export while the backend was down for a few seconds: {lines}")
    check(lines[0].startswith("weft run: export failing: POST " + shown + ": connection failed"),
          f"the failure line should name {shown} and the reason: {lines[0]!r}")
    receiver = Receiver(ctx, http_port=port, grpc_port="off")
    wait_for_spans(receiver, traffic, 2 * len(paths), timeout=10, weft=weft)
    wait_until(lambda: len(delivery_lines(weft)) == 2, 5, "a line saying deliveries work again", interval=0.1)
    check(weft.proc.poll() is None, "weft exited before saying the export works again")
    again = delivery_lines(weft)[1]
    check(again.startswith(f"weft run: export to {shown} works again: a batch was accepted after "),
          f"the recovery line: {again!r}")
    summary = stop_weft(weft)
    leaked = [line for line in weft.stderr_lines if secret in line]
    eq(leaked, [], "stderr lines showing the endpoint's password")
    check(summary["failed_attempts"] >= 2 and summary["dropped"] == 0, f"summary: {summary}")
    check_traffic(traffic, accepted(receiver.records()), paths)
    print(f"    {ctx.name}: {again}")


@case(timeout=60)
def otlp_stops_in_bounded_time_when_backend_hangs(ctx):
    """A backend that never answers (and a long --otlp-timeout) does not hold up exit: the
    export queue gets its 5 s, the last metrics push 2 s, then requests in flight are cancelled."""
    receiver = Receiver(ctx, args=["--delay", "60"])
    traffic = Traffic(ctx, 3)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.grpc_url, "--otlp-protocol", "grpc",
                        "--otlp-timeout", "50")
    weft = start_run(ctx, args)
    traffic.drive(ctx)
    time.sleep(float(TRACE_WAIT) + 1.0)  # the batch is in flight, unanswered
    t0 = time.monotonic()
    summary = stop_weft(weft, timeout=20)
    took = time.monotonic() - t0
    check(took < 9.0, f"weft took {took:.1f} s to stop with a hung backend")
    eq(summary["exported"], 0, "spans exported to a backend that never answered")
    check(summary["unsent_at_exit"] >= 6, f"the unanswered spans counted as unsent at exit: {summary}")
    print(f"    {ctx.name}: stopped in {took:.1f} s; {summary}")


def queue_bound_case(ctx, *bound):
    """More spans than the queue holds while the backend is down: the oldest are dropped and
    counted, everything adds up, and weft's memory stays bounded."""
    port = free_port()
    traffic = Traffic(ctx, 50)
    args, _ = base_args(ctx, "--otlp-endpoint", f"http://127.0.0.1:{port}", *bound)
    weft = start_run(ctx, args)
    rss = [rss_kib(weft.proc.pid)]
    for first in range(0, 300, 50):
        traffic.drive(ctx, count=50, first=first)
        rss.append(rss_kib(weft.proc.pid))
    time.sleep(float(TRACE_WAIT) + 1.5)
    rss.append(rss_kib(weft.proc.pid))
    receiver = Receiver(ctx, http_port=port)
    time.sleep(6.0)  # the retrying batch and what is left in the queue get through
    rss.append(rss_kib(weft.proc.pid))
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    received = len(flat_spans(accepted(records)))
    check(summary["dropped_full"] > 0, f"no span dropped for a full queue: {summary}")
    eq(summary["exported"], received, f"exported vs received spans ({summary})")
    eq(summary["exported"] + summary["dropped"], summary["spans"],
       f"exported + dropped vs spans built ({summary})")
    check(received > 0, f"nothing arrived once the backend was up: {summary}")
    check(len(traffic.spans(accepted(records))) < 600, "all 600 spans of the traffic arrived despite the bound")
    # The counters prove the bound; memory is a sanity check: 600 spans are far below what
    # would show, but a queue or retry path that copies per attempt would.
    peak = max(rss)
    check(peak < 256 * 1024 and peak - rss[0] < 64 * 1024,
          f"weft's RSS grew from {rss[0]} to {peak} KiB while the backend was down (samples {rss})")
    print(f"    {ctx.name}: {summary}; received {received}; RSS KiB {rss}")


@case(timeout=150)
def otlp_backend_down_queue_spans_bound(ctx):
    queue_bound_case(ctx, "--export-queue-spans", "50")


@case(timeout=150)
def otlp_backend_down_queue_bytes_bound(ctx):
    queue_bound_case(ctx, "--export-queue-bytes", "30000")


# ---------------------------------------------------------------------------------------------
# 4. HTTP errors from the backend


def batches(records):
    """Span-id sets of trace requests, in order: (record, frozenset of span ids)."""
    return [(r, frozenset(s["spanId"] for s, _, _, _ in flat_spans([r]))) for r in records
            if r["signal"] == "traces" and r["request"] is not None]


@case(timeout=90)
def otlp_http_503_retry_after(ctx):
    """503 with Retry-After: 1, twice, then 200: delivered, retries counted, each retry about
    one second after the refusal."""
    receiver = Receiver(ctx, args=["--fail-http", "2:503:1"])
    traffic = Traffic(ctx, 5)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.http_url)
    weft = start_run(ctx, args)
    paths = traffic.drive(ctx)
    wait_for_spans(receiver, traffic, 2 * len(paths), timeout=30, weft=weft)
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    check_traffic(traffic, accepted(records), paths)
    b = batches(records)
    refused = [(r, ids) for r, ids in b if r["status"] == 503]
    eq(len(refused), 2, "requests answered 503")
    first, ids = refused[0]
    attempts = [r for r, i in b if i == ids]
    eq([r["status"] for r in attempts], [503, 503, 200], "the refused batch's attempts")
    gaps = [attempts[n + 1]["time"] - attempts[n]["time"] for n in range(2)]
    check(all(0.9 <= g <= 3.0 for g in gaps), f"retries should wait about the Retry-After (1 s): gaps {gaps}")
    check(summary["retries"] >= 2 and summary["failed_attempts"] >= 2, f"retries and failures counted: {summary}")
    eq(summary["dropped"], 0, f"spans dropped: {summary}")
    eq(summary["exported"], len(flat_spans(accepted(records))), "exported vs received spans")
    print(f"    {ctx.name}: gaps {[round(g, 2) for g in gaps]} s; {summary}")


@case(timeout=90)
def otlp_http_400_not_retried(ctx):
    """400 is final: no retry, the spans are counted as dropped (failed)."""
    receiver = Receiver(ctx, args=["--fail-http", "100000:400"])
    traffic = Traffic(ctx, 5)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.http_url)
    weft = start_run(ctx, args)
    paths = traffic.drive(ctx)
    wait_until(lambda: len(traffic.spans([r for r in receiver.records() if r["request"]])) >= 2 * len(paths), 20,
               "the traffic's spans at the receiver (refused)", interval=0.1)
    time.sleep(1.5)  # time for a (wrong) retry
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    b = batches(records)
    check(all(r["status"] == 400 for r, _ in b), "every request was answered 400")
    seen = {}
    for _, ids in b:
        for i in ids:
            seen[i] = seen.get(i, 0) + 1
    again = [k for k, v in seen.items() if v > 1]
    check(not again, f"refused spans were sent again: {again[:3]}")
    eq(summary["retries"], 0, f"retries after 400 ({summary})")
    eq(summary["exported"], 0, f"spans counted as exported ({summary})")
    eq(summary["dropped_refused"], len(seen), f"spans dropped (refused) vs spans refused ({summary})")
    eq(summary["failed_attempts"], len(b), f"failed attempts vs requests refused ({summary})")
    check(summary["last_error"] and "400" in summary["last_error"],
          f"the summary's last error should mention 400: {summary['last_error']!r}")
    print(f"    {ctx.name}: {summary}")


@case(timeout=90)
def otlp_timeout_hung_backend(ctx):
    """A backend that answers after 4 s with --otlp-timeout 1: each attempt gives up after about
    a second and is retried; the spans are not counted as exported."""
    receiver = Receiver(ctx, args=["--delay", "4"])
    traffic = Traffic(ctx, 3)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.http_url, "--otlp-timeout", "1")
    weft = start_run(ctx, args)
    traffic.drive(ctx)
    wait_until(lambda: len([r for r in receiver.records() if r["signal"] == "traces"]) >= 2, 20,
               "two trace export attempts at the slow receiver", interval=0.1)
    summary = stop_weft(weft, timeout=20)
    check(summary["failed_attempts"] >= 2 and summary["retries"] >= 1, f"timeouts counted and retried: {summary}")
    # (opentelemetry-cpp's curl client reports a timeout while sending as "sending failed", so
    # the message is not checked for the word.)
    check(summary["last_error"], f"a last error in the summary: {summary}")
    # The receiver records a request when it answers (4 s after it arrived): attempts started
    # about 1 s + backoff apart, not 4 s apart.
    times = [r["time"] for r in receiver.records() if r["signal"] == "traces"]
    gaps = [b - a for a, b in zip(times, times[1:])]
    check(gaps and min(gaps) < 3.0, f"attempts should start about a second apart, not wait for the answer: {gaps}")
    print(f"    {ctx.name}: gaps {[round(g, 2) for g in gaps]} s; {summary}")


@case(timeout=60)
def otlp_export_interval(ctx):
    """--export-interval: a finished trace waits that long for a batch before it leaves."""
    receiver = Receiver(ctx)
    traffic = Traffic(ctx, 1)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.http_url)
    args[args.index("--export-interval") + 1] = "3"
    weft = start_run(ctx, args)
    traffic.drive(ctx)
    done = time.time()
    wait_for_spans(receiver, traffic, 2, timeout=15, weft=weft)
    arrived = [r["time"] for r in accepted(receiver.records()) if traffic.spans([r])][0]
    stop_weft(weft)
    waited = arrived - done
    # Both ends of each request are on this node and nothing else can join the trace, so it
    # leaves the stitcher at once (settled early, not after --trace-wait) and then waits the export
    # interval (3 s), give or take weft's 100 ms ordering and flush ticks.
    check(2.9 <= waited <= 4.5, f"the trace left {waited:.2f} s after the request, expected about 3.1 s")
    print(f"    {ctx.name}: the trace arrived {waited:.2f} s after its request")


# ---------------------------------------------------------------------------------------------
# 5. gRPC errors


def grpc_case(ctx, code, count):
    receiver = Receiver(ctx, args=["--fail-grpc", f"{count}:{code}"])
    traffic = Traffic(ctx, 5)
    args, _ = base_args(ctx, "--otlp-endpoint", receiver.grpc_url, "--otlp-protocol", "grpc")
    weft = start_run(ctx, args)
    paths = traffic.drive(ctx)
    wait_until(lambda: len(traffic.spans([r for r in receiver.records() if r["request"]])) >= 2 * len(paths), 30,
               "the traffic's spans at the receiver", interval=0.1)
    time.sleep(1.5)
    summary = stop_weft(weft)
    records = receiver.records()
    check_records_clean(records)
    return receiver, traffic, paths, summary, records


@case(timeout=90)
def otlp_grpc_unavailable_then_ok(ctx):
    receiver, traffic, paths, summary, records = grpc_case(ctx, "UNAVAILABLE", 1)
    check_traffic(traffic, accepted(records), paths)
    eq([r["status"] for r in records if r["signal"] == "traces"][0], "UNAVAILABLE", "first answer")
    check(summary["retries"] >= 1 and summary["failed_attempts"] >= 1, f"retry counted: {summary}")
    eq(summary["dropped"], 0, f"spans dropped: {summary}")
    eq(summary["exported"], len(flat_spans(accepted(records))), "exported vs received spans")
    print(f"    {ctx.name}: {summary}")


@case(timeout=90)
def otlp_grpc_invalid_argument_not_retried(ctx):
    receiver, traffic, paths, summary, records = grpc_case(ctx, "INVALID_ARGUMENT", 100000)
    b = batches(records)
    check(b and all(r["status"] == "INVALID_ARGUMENT" for r, _ in b), "every gRPC export was refused")
    ids = [i for _, s in b for i in s]
    eq(len(ids), len(set(ids)), "no refused span sent again")
    eq(summary["retries"], 0, f"retries after INVALID_ARGUMENT ({summary})")
    eq(summary["dropped_refused"], len(ids), f"spans dropped (refused) vs refused ({summary})")
    eq(summary["exported"], 0, f"spans counted as exported ({summary})")
    print(f"    {ctx.name}: {summary}")


# ---------------------------------------------------------------------------------------------
# TLS: --otlp-certificate


def self_signed(ctx):
    key, cert = ctx.path("key.pem"), ctx.path("cert.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], timeout=30)
    eq(r.returncode, 0, f"openssl req ({r.stderr.decode(errors='replace')[-300:]})")
    return key, cert


def tls_exports_arrive(ctx, receiver, traffic, what, *tls_args):
    """Over https and gRPC-with-TLS, every span of the traffic arrives and no attempt fails."""
    for protocol, url in (("http/protobuf", f"https://127.0.0.1:{receiver.http_port}"),
                          ("grpc", f"https://127.0.0.1:{receiver.grpc_port}")):
        before = len(traffic.spans(accepted(receiver.records())))
        args, _ = base_args(ctx, "--otlp-endpoint", url, "--otlp-protocol", protocol, *tls_args)
        weft = start_run(ctx, args, label=f"run-{protocol.replace('/', '-')}")
        paths = traffic.drive(ctx)
        wait_for_spans(receiver, traffic, before + 2 * len(paths), timeout=20, weft=weft)
        summary = stop_weft(weft)
        eq(summary["failed_attempts"], 0, f"{protocol} {what}: failed attempts ({summary['last_error']})")
    recs = accepted(receiver.records())
    eq(sorted({r["transport"] for r in recs}), ["grpc", "http/protobuf"], f"transports that arrived {what}")


def tls_exports_refused(ctx, receiver, traffic, what, *tls_args):
    """An https export the handshake refuses: every attempt fails, the receiver accepts nothing."""
    before = len(receiver.records())
    args, _ = base_args(ctx, "--otlp-endpoint", f"https://127.0.0.1:{receiver.http_port}", *tls_args)
    weft = start_run(ctx, args, label="run-refused")
    traffic.drive(ctx)
    time.sleep(float(TRACE_WAIT) + 1.5)
    summary = stop_weft(weft)
    eq(len(receiver.records()), before, f"requests accepted from a weft {what}")
    check(summary["failed_attempts"] > 0 and summary["exported"] == 0,
          f"a weft {what} should fail every attempt: {summary}")
    print(f"    {ctx.name}: {what}: {summary}")


@case(timeout=120)
def otlp_tls_certificate(ctx):
    """https:// and gRPC over TLS, trusting the receiver's self-signed certificate through
    --otlp-certificate; without it the handshake fails and nothing is accepted."""
    key, cert = self_signed(ctx)
    receiver = Receiver(ctx, args=["--tls-cert", cert, "--tls-key", key])
    traffic = Traffic(ctx, 5)
    tls_exports_arrive(ctx, receiver, traffic, "over TLS", "--otlp-certificate", cert)
    # Not trusting the certificate: the system's CAs do not know it.
    tls_exports_refused(ctx, receiver, traffic, "that does not trust the certificate")


@case(timeout=120)
def otlp_mtls_client_certificate(ctx):
    """A receiver that requires a client certificate (mTLS) accepts weft's exports over https
    and gRPC when given --otlp-client-key/--otlp-client-certificate, and nothing without them."""
    key, cert = self_signed(ctx)
    client_key, client_cert = ctx.path("client-key.pem"), ctx.path("client-cert.pem")
    r = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", client_key, "-out",
             client_cert, "-days", "1", "-subj", "/CN=weft-client"], timeout=30)
    eq(r.returncode, 0, f"openssl req for the client ({r.stderr.decode(errors='replace')[-300:]})")
    receiver = Receiver(ctx, args=["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", client_cert])
    traffic = Traffic(ctx, 5)
    tls_exports_arrive(ctx, receiver, traffic, "with mTLS", "--otlp-certificate", cert,
                       "--otlp-client-key", client_key, "--otlp-client-certificate", client_cert)
    tls_exports_refused(ctx, receiver, traffic, "without a client certificate", "--otlp-certificate", cert)


@case(timeout=90)
def otlp_file_output_decoded_by_official_protos(ctx):
    """The otlp-file output (the Collector file format) decodes with the official protos: every
    line, posted to the receiver as OTLP/JSON, is accepted, and its spans are the traffic's,
    field by field."""
    receiver = Receiver(ctx, grpc_port="off")
    traffic = Traffic(ctx, REQUESTS)
    out = ctx.path("traces.jsonl")
    args, _ = base_args(ctx, "--exporter", "otlp-file", "--output", out)
    weft = start_run(ctx, args)
    paths = traffic.drive(ctx)
    time.sleep(float(TRACE_WAIT) + 1.0)
    stop_weft(weft)
    with open(out, "rb") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    check(lines, "weft wrote no OTLP/JSON line")
    for n, line in enumerate(lines, 1):
        req = urllib.request.Request(f"{receiver.http_url}/v1/traces", data=line,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                eq(r.status, 200, f"line {n}: status from the receiver")
        except urllib.error.HTTPError as e:
            raise TestFailure(f"line {n} of {out} was refused by the official-proto decoder: HTTP {e.code} "
                              f"{e.read()[:300]!r}")
    records = receiver.records()
    eq(len(records), len(lines), "lines decoded")
    check_records_clean(records)
    n = check_traffic(traffic, records, paths)
    print(f"    {ctx.name}: {len(lines)} lines, {n} spans of the traffic decoded and checked")


@case(timeout=60)
def otlp_doctor_probes_the_backend(ctx):
    """`weft doctor` says where telemetry goes and whether the backend accepts weft's requests:
    reachable (an empty request, valid OTLP), refused (a wrong path), unreachable (nothing
    listens)."""
    receiver = Receiver(ctx)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}

    def doctor(*args):
        r = subprocess.run([harness.WEFT, "doctor", "--metrics-address", "off"] + list(args), env=env,
                           capture_output=True, text=True, timeout=30)
        eq(r.returncode, 0, f"weft doctor exit status (stderr: {r.stderr.strip()[:300]})")
        lines = [line for line in r.stdout.splitlines() if line.strip().startswith("traces")]
        eq(len(lines), 1, f"one traces line in weft doctor's output:\n{r.stdout}")
        return lines[0]

    line = doctor("--otlp-endpoint", receiver.http_url, "--otlp-header", "x-weft-test=doctor")
    check("reachable" in line and "UNREACHABLE" not in line, f"doctor against the receiver: {line}")
    got = [r for r in receiver.records() if r["signal"] == "traces"]
    eq(len(got), 1, "requests the doctor sent")
    eq(got[0]["request"].get("resourceSpans", []), [], "the doctor's request carries no spans")
    eq(got[0]["headers"].get("x-weft-test"), "doctor", "the doctor's request carries the configured headers")

    line = doctor("--otlp-traces-endpoint", receiver.http_url + "/wrong/path")
    check("REFUSED" in line and "404" in line, f"doctor against a wrong path: {line}")
    line = doctor("--otlp-endpoint", f"http://weft:s3cret-pw@127.0.0.1:{free_port()}")
    check("UNREACHABLE" in line, f"doctor with nothing listening: {line}")
    check("s3cret-pw" not in line and "127.0.0.1" in line, f"doctor prints the endpoint without its password: {line}")
    line = doctor("--otlp-endpoint", receiver.grpc_url, "--otlp-protocol", "grpc")
    check("reachable" in line and "UNREACHABLE" not in line, f"doctor against the receiver over gRPC: {line}")
