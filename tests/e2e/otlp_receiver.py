#!/usr/bin/python3
"""An independent OTLP receiver for weft's end-to-end tests: OTLP/HTTP (protobuf and JSON) and
OTLP/gRPC, decoded with the official OpenTelemetry protos, every request recorded as one JSON
line.

Run it with Debian's interpreter (it needs Debian's python3-protobuf and python3-grpcio, and
protoc from protobuf-compiler; scripts/setup.sh installs them):

    /usr/bin/python3 tests/e2e/otlp_receiver.py --out FILE [--http-port N] [--grpc-port N|off]
        [--fail-http COUNT:STATUS[:RETRY_AFTER]]... [--fail-grpc COUNT:CODE]...
        [--fail-signal traces|metrics|any] [--delay SECONDS] [--tls-cert PEM --tls-key PEM
        [--tls-client-ca PEM]]
        [--protos DIR]

At start-up it runs `protoc -I/usr/include --python_out=TMP` on the official .proto files under
/usr/include/opentelemetry/proto (package opentelemetry-proto) and imports the generated
modules. It listens on 127.0.0.1 only and, once both servers accept connections, prints exactly
one line on stdout:

    listening http=PORT grpc=PORT            (grpc=off when --grpc-port off)

Port 0 (the default for both) picks a free port. SIGTERM or SIGINT stops both servers, flushes
the output and exits 0.

Served:
  - OTLP/HTTP: POST /v1/traces and POST /v1/metrics, Content-Type application/x-protobuf or
    application/json (OTLP/JSON: trace and span ids as case-insensitive hex, enums as integers
    or names, 64-bit integers as strings or numbers), optionally Content-Encoding: gzip, with
    Content-Length or chunked bodies, keep-alive. Success is 200 with an empty
    Export{Trace,Metrics}ServiceResponse in the request's encoding. A body that cannot be
    decoded is answered 400 with a google.rpc.Status in the request's encoding; other paths
    404, other methods 405, other content types 415.
  - OTLP/gRPC: opentelemetry.proto.collector.{trace,metrics}.v1.{Trace,Metrics}Service/Export,
    any compression grpc itself accepts (gzip, deflate).

Record (--out, one JSON object per received request, flushed after each line):
    {"signal": "traces"|"metrics"|null, "transport": "http/protobuf"|"http/json"|"grpc"|"http",
     "path": "/v1/traces" (HTTP) or the gRPC method, "headers": {lower-cased name: value}
     (gRPC: the invocation metadata), "compressed": bool, "body_bytes": N (HTTP, as received),
     "time": unix seconds when the request was complete, "status": the HTTP status or gRPC
     code name answered, "retry_after": the Retry-After sent or null,
     "request": json_format.MessageToDict(message, preserving_proto_field_name=False,
                use_integers_for_enums=True) with every traceId/spanId/parentSpanId as
                lower-case hex (the OTLP/JSON form), or null when it could not be decoded,
     "error": why it could not be decoded, or null,
     "warnings": [OTLP/JSON only: unknown field names (ignored, as the spec requires) and keys
                  that are not lowerCamelCase]}
Requests answered with an injected failure are decoded and recorded too (with that status), so
a retried batch appears once per attempt.

Fault injection (for backend-error tests), all from the command line:
  --fail-http COUNT:STATUS[:RETRY_AFTER]   the next COUNT matching HTTP export requests are
        answered STATUS (e.g. 503, 429, 400), with a `Retry-After: RETRY_AFTER` header when
        given, and a google.rpc.Status body. Repeatable: rules are used up in order.
  --fail-grpc COUNT:CODE   the next COUNT matching gRPC exports fail with grpc.StatusCode.CODE
        (e.g. UNAVAILABLE, INVALID_ARGUMENT, RESOURCE_EXHAUSTED). Repeatable, in order.
  --fail-signal traces|metrics|any   which exports the rules apply to (default traces, so a
        metrics push never uses up a rule meant for spans).
  --delay SECONDS   wait this long before answering every export (timeout tests).
"Backend down" needs no flag: do not start the receiver yet, then start it on the port weft
was given.
"""
from __future__ import annotations

import argparse
import base64
import gzip
import http.server
import json
import os
import re
import shutil
import signal
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent import futures

PROTO_ROOT = "/usr/include"
PROTO_FILES = [
    "opentelemetry/proto/common/v1/common.proto",
    "opentelemetry/proto/resource/v1/resource.proto",
    "opentelemetry/proto/trace/v1/trace.proto",
    "opentelemetry/proto/metrics/v1/metrics.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
    "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
]
ID_FIELDS = {"traceId": 16, "spanId": 8, "parentSpanId": 8}
ID_FIELDS_SNAKE = {"trace_id": 16, "span_id": 8, "parent_span_id": 8}
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def compile_protos(proto_root, out_dir):
    missing = [p for p in PROTO_FILES if not os.path.isfile(os.path.join(proto_root, p))]
    if missing:
        sys.exit(f"otlp_receiver: missing official protos under {proto_root}: {', '.join(missing)} "
                 "(Debian package opentelemetry-proto)")
    protoc = shutil.which("protoc") or "/usr/bin/protoc"
    r = subprocess.run([protoc, f"-I{proto_root}", f"--python_out={out_dir}"] + PROTO_FILES,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if r.returncode != 0:
        sys.exit(f"otlp_receiver: protoc failed: {r.stderr.decode(errors='replace')}")
    sys.path.insert(0, out_dir)


class Signal:
    """One OTLP signal: its request/response classes, HTTP path and gRPC service."""

    def __init__(self, name, request_cls, response_cls, path, service):
        self.name, self.request_cls, self.response_cls = name, request_cls, response_cls
        self.path, self.service = path, service


# ---------------------------------------------------------------------------------------------
# Conversions


def ids_to_hex(obj):
    """MessageToDict renders bytes as base64: trace and span ids back to lower-case hex."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ID_FIELDS and isinstance(v, str):
                obj[k] = base64.b64decode(v).hex()
            else:
                ids_to_hex(v)
    elif isinstance(obj, list):
        for v in obj:
            ids_to_hex(v)
    return obj


def json_ids_to_base64(obj, warnings, where="$"):
    """OTLP/JSON ids are hex (not the protobuf JSON mapping's base64): validate and convert in
    place. Also notes keys that are not lowerCamelCase (OTLP/JSON requires it)."""
    if isinstance(obj, dict):
        for k in list(obj):
            v = obj[k]
            size = ID_FIELDS.get(k) or ID_FIELDS_SNAKE.get(k)
            if size is not None:
                if not isinstance(v, str):
                    raise ValueError(f"{where}.{k}: id is not a string: {v!r}")
                if v == "" and k in ("parentSpanId", "parent_span_id"):
                    continue  # an empty parent is the default value
                if len(v) != 2 * size or not re.fullmatch(r"[0-9a-fA-F]*", v):
                    raise ValueError(f"{where}.{k}: not {2 * size} hex digits: {v!r}")
                if v != v.lower():
                    warnings.append(f"{where}.{k}: id is not lower-case hex: {v!r}")
                obj[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                json_ids_to_base64(v, warnings, f"{where}.{k}")
            if not CAMEL.match(k):
                warnings.append(f"{where}.{k}: key is not lowerCamelCase")
    elif isinstance(obj, list):
        for n, v in enumerate(obj):
            json_ids_to_base64(v, warnings, f"{where}[{n}]")


def decode_json(body, cls, json_format):
    """OTLP/JSON -> message. Unknown fields are ignored (as the spec requires) but reported."""
    warnings = []
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(f"not JSON: {e}")
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    json_ids_to_base64(doc, warnings)
    msg = cls()
    try:
        json_format.ParseDict(doc, msg)
    except json_format.ParseError as e:
        if "no field named" not in str(e) and "has no field" not in str(e):
            raise ValueError(f"json_format: {e}")
        warnings.append(f"unknown field ignored: {e}")
        msg = cls()
        try:
            json_format.ParseDict(doc, msg, ignore_unknown_fields=True)
        except json_format.ParseError as e2:
            raise ValueError(f"json_format: {e2}")
    return msg, warnings


def status_body(code, message, as_json):
    """A google.rpc.Status (code = field 1, message = field 2), encoded by hand: no generated
    module needed for two fields."""
    if as_json:
        return json.dumps({"code": code, "message": message}).encode()

    def varint(n):
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    m = message.encode()
    return b"\x08" + varint(code) + b"\x12" + varint(len(m)) + m


# ---------------------------------------------------------------------------------------------
# State shared by both servers


class Receiver:
    def __init__(self, args, signals, json_format):
        self.out = open(args.out, "a", buffering=1)
        self.lock = threading.Lock()
        self.signals = signals  # path -> Signal
        self.json_format = json_format
        self.http_faults = [list(f) for f in args.fail_http]  # [count, status, retry_after]
        self.grpc_faults = [list(f) for f in args.fail_grpc]  # [count, code]
        self.fail_signal = args.fail_signal
        self.delay = args.delay

    def to_dict(self, msg):
        d = self.json_format.MessageToDict(msg, preserving_proto_field_name=False, use_integers_for_enums=True)
        return ids_to_hex(d)

    def record(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    def _take(self, faults, signal_name):
        if self.fail_signal != "any" and signal_name != self.fail_signal:
            return None
        with self.lock:
            while faults and faults[0][0] <= 0:
                faults.pop(0)
            if not faults:
                return None
            faults[0][0] -= 1
            return faults[0][1:]

    def take_http_fault(self, signal_name):
        return self._take(self.http_faults, signal_name)

    def take_grpc_fault(self, signal_name):
        return self._take(self.grpc_faults, signal_name)

    def close(self):
        with self.lock:
            self.out.close()


# ---------------------------------------------------------------------------------------------
# OTLP/HTTP


class HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect
    server_version = "weft-otlp-test-receiver"
    receiver: Receiver = None  # set on the class before serving

    def log_message(self, fmt, *args):  # quiet
        pass

    def _headers(self):
        out = {}
        for k, v in self.headers.items():
            k = k.lower()
            out[k] = f"{out[k]}, {v}" if k in out else v
        return out

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                if not size_line:
                    raise ValueError("connection closed inside a chunked body")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline(8)  # CRLF after the chunk
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length)

    def _reply(self, status, body, content_type, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):
        self._reply(405, b"POST only\n", "text/plain", [("Allow", "POST")])

    def do_POST(self):
        r = self.receiver
        entry = {"signal": None, "transport": "http", "path": self.path, "headers": self._headers(),
                 "compressed": False, "body_bytes": None, "time": None, "status": None, "retry_after": None,
                 "request": None, "error": None, "warnings": []}
        try:
            body = self._read_body()
        except (ValueError, OSError) as e:
            entry.update(time=time.time(), status=400, error=f"reading the body: {e}")
            r.record(entry)
            self.close_connection = True
            self._reply(400, b"bad body\n", "text/plain")
            return
        entry["body_bytes"] = len(body)
        entry["time"] = time.time()
        sig = r.signals.get(self.path.split("?", 1)[0])
        ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        as_json = ctype == "application/json"
        if sig is None:
            entry.update(status=404, error=f"no OTLP endpoint at {self.path}")
            r.record(entry)
            self._reply(404, b"not found\n", "text/plain")
            return
        entry["signal"] = sig.name
        if ctype not in ("application/x-protobuf", "application/json"):
            entry.update(status=415, error=f"unsupported Content-Type {ctype!r}")
            r.record(entry)
            self._reply(415, b"unsupported media type\n", "text/plain")
            return
        entry["transport"] = "http/json" if as_json else "http/protobuf"
        reply_type = "application/json" if as_json else "application/x-protobuf"
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        try:
            if encoding == "gzip":
                entry["compressed"] = True
                body = gzip.decompress(body)
            elif encoding == "deflate":
                entry["compressed"] = True
                body = zlib.decompress(body)
            elif encoding not in ("", "identity"):
                raise ValueError(f"unsupported Content-Encoding {encoding!r}")
            if as_json:
                msg, entry["warnings"] = decode_json(body, sig.request_cls, r.json_format)
            else:
                msg = sig.request_cls()
                msg.ParseFromString(body)
                if msg.FindInitializationErrors():
                    raise ValueError("missing required fields")
        except Exception as e:  # any decoding problem is the sender's: 400, recorded
            entry.update(status=400, error=f"{type(e).__name__}: {e}")
            r.record(entry)
            self._reply(400, status_body(3, entry["error"], as_json), reply_type)
            return
        entry["request"] = r.to_dict(msg)
        if r.delay:
            time.sleep(r.delay)
        fault = r.take_http_fault(sig.name)
        if fault:
            status, retry_after = fault
            entry.update(status=status, retry_after=retry_after)
            r.record(entry)
            extra = [("Retry-After", retry_after)] if retry_after is not None else []
            self._reply(status, status_body(14 if status in (429, 502, 503, 504) else 3,
                                            f"injected failure {status}", as_json), reply_type, extra)
            return
        entry["status"] = 200
        r.record(entry)
        response = sig.response_cls()
        self._reply(200, r.json_format.MessageToJson(response).encode() if as_json else response.SerializeToString(),
                    reply_type)


class ThreadingHttpServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------------------------------------
# OTLP/gRPC


def grpc_handler(receiver, sig, grpc, relay):
    def export(request, context):
        metadata = {}
        for k, v in context.invocation_metadata():
            k = k.lower()
            if isinstance(v, bytes):
                v = base64.b64encode(v).decode()
            metadata[k] = f"{metadata[k]}, {v}" if k in metadata else v
        entry = {"signal": sig.name, "transport": "grpc", "path": f"/{sig.service}/Export", "headers": metadata,
                 "compressed": relay.compressed(context.peer()) if relay else None, "body_bytes": None,
                 "time": time.time(),
                 "status": "OK", "retry_after": None, "request": receiver.to_dict(request), "error": None,
                 "warnings": []}
        if receiver.delay:
            time.sleep(receiver.delay)
        fault = receiver.take_grpc_fault(sig.name)
        if fault:
            entry["status"] = fault[0]
            receiver.record(entry)
            context.abort(getattr(grpc.StatusCode, fault[0]), f"injected failure {fault[0]}")
        receiver.record(entry)
        return sig.response_cls()
    return export



# ---------------------------------------------------------------------------------------------
# gRPC compression, seen on the wire. grpc hides the request's grpc-encoding from handlers, so
# the public gRPC port is a relay in front of the grpc server that reads HTTP/2 frames as they
# pass: each gRPC message starts with a 1-byte compressed flag and a 4-byte length inside DATA
# frames. The relay reaches the grpc server over a Unix socket: a TCP hop would be an HTTP/2
# connection of this process that weft traces (it is not weft's own), and every export would
# make spans to export (a loop). A handler reads the flag of the last message the relay saw
# (one exporter at a time talks to a test's receiver).


class GrpcRelay:
    PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

    def __init__(self, port):
        import socket
        self.socket = socket
        self.inner_path = None
        self.last_flag = None
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.flags = {}  # relay's local port toward the grpc server -> [compressed flag per message]
        self.closing = False
        self.conns = []

    def start(self, inner_path):
        self.inner_path = inner_path
        threading.Thread(target=self._accept, daemon=True).start()

    def compressed(self, peer):
        """True/False for the last message the relay passed on (None before any)."""
        with self.lock:
            return None if self.last_flag is None else bool(self.last_flag)

    def _accept(self):
        while not self.closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                inner = self.socket.socket(self.socket.AF_UNIX, self.socket.SOCK_STREAM)
                inner.settimeout(5)
                inner.connect(self.inner_path)
                inner.settimeout(None)
            except OSError:
                client.close()
                continue
            key = len(self.flags)
            with self.lock:
                self.flags[key] = []
                self.conns += [client, inner]
            threading.Thread(target=self._pump, args=(client, inner, key), daemon=True).start()
            threading.Thread(target=self._pump, args=(inner, client, None), daemon=True).start()

    def _pump(self, src, dst, key):
        buf = b""
        preface_left = len(self.PREFACE) if key is not None else 0
        streams = {}  # stream id -> [prefix bytes so far, message bytes left]
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if key is not None:
                    buf += data
                    if preface_left:
                        take = min(preface_left, len(buf))
                        buf, preface_left = buf[take:], preface_left - take
                    while len(buf) >= 9:
                        length = int.from_bytes(buf[0:3], "big")
                        if len(buf) < 9 + length:
                            break
                        ftype, fflags = buf[3], buf[4]
                        stream = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                        payload = buf[9:9 + length]
                        buf = buf[9 + length:]
                        if ftype == 0:  # DATA
                            if fflags & 0x8:  # PADDED
                                payload = payload[1:len(payload) - payload[0]]
                            self._messages(streams, stream, payload, key)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(self.socket.SHUT_RDWR)
                except OSError:
                    pass

    def _messages(self, streams, stream, payload, key):
        state = streams.setdefault(stream, [b"", 0])
        while payload:
            if state[1] == 0:
                need = 5 - len(state[0])
                state[0] += payload[:need]
                payload = payload[need:]
                if len(state[0]) == 5:
                    with self.lock:
                        self.flags[key].append(state[0][0])
                        self.last_flag = state[0][0]
                    state[1] = int.from_bytes(state[0][1:5], "big")
                    state[0] = b""
            else:
                take = min(state[1], len(payload))
                state[1] -= take
                payload = payload[take:]

    def close(self):
        self.closing = True
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            for s in self.conns:
                try:
                    s.close()
                except OSError:
                    pass

# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    def http_fault(spec):
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise argparse.ArgumentTypeError(f"expected COUNT:STATUS[:RETRY_AFTER], got {spec!r}")
        return int(parts[0]), int(parts[1]), parts[2] if len(parts) == 3 else None

    def grpc_fault(spec):
        count, _, code = spec.partition(":")
        if code.upper() not in ("UNAVAILABLE", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "INTERNAL",
                                "DEADLINE_EXCEEDED", "UNAUTHENTICATED", "PERMISSION_DENIED", "ABORTED",
                                "UNIMPLEMENTED", "CANCELLED", "UNKNOWN", "DATA_LOSS", "OUT_OF_RANGE",
                                "FAILED_PRECONDITION", "NOT_FOUND", "ALREADY_EXISTS"):
            raise argparse.ArgumentTypeError(f"expected COUNT:GRPC_STATUS_CODE, got {spec!r}")
        return int(count), code.upper()

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON lines file, one line per received request")
    p.add_argument("--http-port", type=int, default=0)
    p.add_argument("--grpc-port", default="0", help="a port, 0 for any free one, or off")
    p.add_argument("--fail-http", type=http_fault, action="append", default=[])
    p.add_argument("--fail-grpc", type=grpc_fault, action="append", default=[])
    p.add_argument("--fail-signal", choices=("traces", "metrics", "any"), default="traces")
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--tls-cert", help="serve HTTP and gRPC over TLS with this certificate (PEM)")
    p.add_argument("--tls-key", help="and this key (PEM)")
    p.add_argument("--tls-client-ca", help="require a client certificate signed by this CA (PEM): mTLS")
    p.add_argument("--no-grpc-relay", action="store_true",
                   help="gRPC listens on the port itself (compressed is then null)")
    p.add_argument("--protos", default=PROTO_ROOT, help="include directory holding opentelemetry/proto")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.exit("otlp_receiver: --tls-cert and --tls-key go together")
    gen_dir = tempfile.mkdtemp(prefix="otlp-receiver-protos-")
    try:
        compile_protos(args.protos, gen_dir)
        import grpc  # Debian python3-grpcio
        from google.protobuf import json_format  # Debian python3-protobuf
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as ms
    except ImportError as e:
        shutil.rmtree(gen_dir, ignore_errors=True)
        sys.exit(f"otlp_receiver: {e} (run with /usr/bin/python3; Debian packages python3-protobuf, "
                 "python3-grpcio)")
    signals = {
        "/v1/traces": Signal("traces", ts.ExportTraceServiceRequest, ts.ExportTraceServiceResponse, "/v1/traces",
                             "opentelemetry.proto.collector.trace.v1.TraceService"),
        "/v1/metrics": Signal("metrics", ms.ExportMetricsServiceRequest, ms.ExportMetricsServiceResponse,
                              "/v1/metrics", "opentelemetry.proto.collector.metrics.v1.MetricsService"),
    }
    receiver = Receiver(args, signals, json_format)

    HttpHandler.receiver = receiver
    httpd = ThreadingHttpServer(("127.0.0.1", args.http_port), HttpHandler)
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_client_ca:
            tls.verify_mode = ssl.CERT_REQUIRED
            tls.load_verify_locations(args.tls_client_ca)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    http_port = httpd.server_address[1]
    http_thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    http_thread.start()

    grpc_server, grpc_port, relay = None, "off", None
    if args.grpc_port != "off":
        # Plain gRPC goes through the relay (to see compression); TLS cannot be read on the way,
        # so with TLS (or --no-grpc-relay) the grpc server listens on the port itself.
        use_relay = not args.tls_cert and not args.no_grpc_relay
        if use_relay:
            relay = GrpcRelay(int(args.grpc_port))
        grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for sig in signals.values():
            handler = grpc.unary_unary_rpc_method_handler(
                grpc_handler(receiver, sig, grpc, relay), request_deserializer=sig.request_cls.FromString,
                response_serializer=sig.response_cls.SerializeToString)
            grpc_server.add_generic_rpc_handlers(
                (grpc.method_handlers_generic_handler(sig.service, {"Export": handler}),))
        inner_path = os.path.join(gen_dir, "grpc.sock")
        address = f"unix:{inner_path}" if use_relay else f"127.0.0.1:{int(args.grpc_port)}"
        if args.tls_cert:
            with open(args.tls_key, "rb") as k, open(args.tls_cert, "rb") as c:
                client_ca = open(args.tls_client_ca, "rb").read() if args.tls_client_ca else None
                creds = grpc.ssl_server_credentials([(k.read(), c.read())], root_certificates=client_ca,
                                                    require_client_auth=bool(client_ca))
            bound = grpc_server.add_secure_port(address, creds)
        else:
            bound = grpc_server.add_insecure_port(address)
        if bound == 0:
            sys.exit(f"otlp_receiver: cannot listen for gRPC on {address}")
        grpc_server.start()
        if relay:
            relay.start(inner_path)
            grpc_port = relay.port
        else:
            grpc_port = bound

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"listening http={http_port} grpc={grpc_port}", flush=True)
    while not stop.wait(0.2):
        pass
    httpd.shutdown()
    httpd.server_close()
    if relay is not None:
        relay.close()
    if grpc_server is not None:
        grpc_server.stop(grace=0.5).wait(2)
    receiver.close()
    shutil.rmtree(gen_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
