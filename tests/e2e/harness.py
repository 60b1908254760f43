"""Infrastructure for weft's end-to-end tests: running weft, peers, and reading its events.

Standard library only. Every wait has a timeout; every process a test starts is registered
with its Context and ended (by its own pid) when the test finishes, pass or fail.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

WEFT = "weft"  # set by run.py from --weft

# How long weft may take to load and attach its programs.
START_TIMEOUT_S = 20.0


class TestFailure(Exception):
    """A check failed: the message says what was expected and what was seen."""


def check(cond, message):
    if not cond:
        raise TestFailure(message)


def eq(actual, expected, what):
    if actual != expected:
        raise TestFailure(f"{what}: expected {expected!r}, got {actual!r}")


def wait_until(predicate, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Ports and sockets


def free_port(family=socket.AF_INET):
    """A TCP port nothing listens on right now (bound once on loopback, then released)."""
    addr = "::1" if family == socket.AF_INET6 else "127.0.0.1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def free_port_both():
    """A port free on both 127.0.0.1 and ::1."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
                s.bind(("::1", port))
            return port
        except OSError:
            continue
    raise TestFailure("could not find a port free on both 127.0.0.1 and ::1")


def _listening_ports():
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A":  # TCP_LISTEN
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except FileNotFoundError:
            pass
    return ports


def wait_listening(port, timeout=10.0, proc=None):
    """Waits until something listens on `port`, without connecting (a probe connection
    would show up in weft's output)."""
    def ready():
        if proc is not None and proc.poll() is not None:
            raise TestFailure(f"server exited with {proc.returncode} before listening on {port}")
        return port in _listening_ports()
    wait_until(ready, timeout, f"a listener on port {port}")


def read_comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def children_of(pid):
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: the ppid is after the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry))
    return kids


# ---------------------------------------------------------------------------------------------
# Per-test context: temp dir and the processes to clean up


class Context:
    def __init__(self, name):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix=f"weft-e2e-{name}-")
        self._procs = []  # (Popen, stop signal)
        self._cleanups = []

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def spawn(self, argv, stop_signal=signal.SIGTERM, **kwargs):
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(argv, **kwargs)
        self._procs.append((proc, stop_signal))
        return proc

    def on_cleanup(self, fn):
        self._cleanups.append(fn)

    def close(self):
        errors = []
        for fn in reversed(self._cleanups):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                errors.append(repr(e))
        for proc, sig in reversed(self._procs):
            stop_process(proc, sig)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return errors


def stop_process(proc, sig=signal.SIGTERM, timeout=3.0):
    """Ends one process we started, by its pid: `sig`, then SIGKILL if it lingers."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        except ProcessLookupError:
            pass
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream:
            try:
                stream.close()
            except OSError:
                pass


def run(argv, timeout=30, **kwargs):
    """subprocess.run with a timeout, capturing output as bytes."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    try:
        return subprocess.run(argv, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"{' '.join(map(str, argv))} did not finish within {timeout}s") from e


# ---------------------------------------------------------------------------------------------
# weft


SUMMARY_COUNTS = re.compile(
    r"^weft (?:events|record): (\d+) data, (\d+) connect, (\d+) accept, (\d+) close, (\d+) existing events; "
    r"(\d+) bytes moved, (\d+) captured$")
SUMMARY_LOSSES = re.compile(r"^weft (?:events|record): kernel losses: (.*); stream gaps=(\d+) \((\d+) bytes\) "
                            r"overlaps=(\d+) late=(\d+) malformed=(\d+); "
                            r"order window (\d+) ms$")
# Payload beyond --capture-bytes: by design, so on its own line, not among the losses.
SUMMARY_CAPTURE_LIMIT = re.compile(r"^weft (?:events|record|exchanges|run): capture limit: (\d+) syscalls' payloads cut at "
                                   r"--capture-bytes \(by design, not a loss: byte counts and stream positions stay "
                                   r"exact\)$")
SUMMARY_TLS = re.compile(r"^weft (?:events|record|exchanges|run): tls library calls: ((?:[a-z_]+=\d+ ?)+)$")
CAPTURING = re.compile(r"^weft (events|record|exchanges|run|net): capturing \(Ctrl-C to stop\)$")


def is_summary_line(line):
    return bool(SUMMARY_COUNTS.match(line) or SUMMARY_LOSSES.match(line) or SUMMARY_CAPTURE_LIMIT.match(line) or
                SUMMARY_TLS.match(line))


def parse_summary(lines):
    """The three summary lines as a dict; raises if they are missing or malformed. Kernel losses
    by cause (ringbuf_full, ...), stream counters, and capture_limited: syscalls whose payload
    was cut at --capture-bytes."""
    out = {}
    for line in lines:
        m = SUMMARY_COUNTS.match(line)
        if m:
            keys = ("data", "connect", "accept", "close", "existing", "bytes_moved", "bytes_captured")
            out.update(zip(keys, map(int, m.groups())))
            continue
        m = SUMMARY_LOSSES.match(line)
        if m:
            for item in m.group(1).split():
                k, v = item.split("=")
                out[k] = int(v)
            for k, v in zip(("gaps", "gap_bytes", "overlaps", "late", "malformed"), m.groups()[1:]):
                out[k] = int(v)
            continue
        m = SUMMARY_CAPTURE_LIMIT.match(line)
        if m:
            out["capture_limited"] = int(m.group(1))
            continue
        m = SUMMARY_TLS.match(line)
        if m:
            for item in m.group(1).split():
                k, v = item.split("=")
                out["tls_" + k] = int(v)
    check("data" in out and "ringbuf_full" in out and "capture_limited" in out,
          "weft did not print its three summary lines on stderr; stderr was:\n  " + "\n  ".join(lines))
    return out


# `weft run`'s summary (docs/tracing.md, Counters). The spans line is an equation.
RUN_SPANS = re.compile(
    r"^weft run: spans: (\d+) built = (\d+) exported \+ (\d+) sampled out \+ (\d+) dropped "
    r"\(queue full (\d+), refused (\d+), unsent at exit (\d+)\)(?: \+ (-?\d+) unaccounted)?; "
    r"not built: (\d+) client spans deferred to the context their request carried$")
RUN_TRACES = re.compile(r"^weft run: traces: (\d+) finished, (\d+) kept, (\d+) sampled out; links: (.*)$")
RUN_EXPORT = re.compile(r"^weft run: export attempts: (\d+) failed, (\d+) retries(?:; last error: (.*))?$")


def parse_run_summary(lines):
    """`weft run`'s summary lines as a dict, after checking that the spans line adds up:
    built = exported + sampled out + dropped, and dropped = the sum of its reasons. Link
    counters (same-node, wire, inferred, ambiguous, ...) by their names."""
    out = {}
    for line in lines:
        m = RUN_SPANS.match(line)
        if m:
            keys = ("built", "exported", "sampled_out", "dropped", "dropped_full", "dropped_refused",
                    "unsent_at_exit")
            out.update(zip(keys, map(int, m.groups()[:7])))
            out["unaccounted"] = int(m.group(8) or 0)
            out["deferred"] = int(m.group(9))
            continue
        m = RUN_TRACES.match(line)
        if m:
            out.update(zip(("traces", "traces_kept", "traces_sampled_out"), map(int, m.groups()[:3])))
            for k, v in re.findall(r"([a-z-]+)=(\d+)", m.group(4)):
                out[k] = int(v)
            continue
        m = RUN_EXPORT.match(line)
        if m:
            out["failed_attempts"], out["retries"] = int(m.group(1)), int(m.group(2))
            out["last_error"] = m.group(3)
    check(all(k in out for k in ("built", "traces", "failed_attempts")),
          "weft run did not print its spans, traces and export summary lines; stderr ends with:\n  " +
          "\n  ".join(lines[-8:]))
    eq(out["unaccounted"], 0, f"spans weft built but cannot account for ({out})")
    eq(out["built"], out["exported"] + out["sampled_out"] + out["dropped"],
       f"built vs exported + sampled out + dropped ({out})")
    eq(out["dropped"], out["dropped_full"] + out["dropped_refused"] + out["unsent_at_exit"],
       f"dropped vs the sum of its reasons ({out})")
    eq(out["traces"], out["traces_kept"] + out["traces_sampled_out"], f"traces finished vs kept + sampled out ({out})")
    return out


class Weft:
    """One `weft events` or `weft record` process: stdout to a file, stderr read line by line."""

    def __init__(self, ctx, args, label="weft"):
        self.ctx = ctx
        self.args = [WEFT] + list(args)
        self.out_path = ctx.path(f"{label}.stdout")
        self._out = open(self.out_path, "wb")
        self.stderr_lines = []
        self._capturing = threading.Event()
        self._lock = threading.Lock()
        self.proc = ctx.spawn(self.args, stop_signal=signal.SIGINT, stdout=self._out, stderr=subprocess.PIPE)
        ctx.on_cleanup(self._out.close)
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.returncode = None
        self.stop_seconds = None

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.stderr_lines.append(line)
            if CAPTURING.match(line):
                self._capturing.set()

    def wait_capturing(self, timeout=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        while not self._capturing.wait(0.05):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise TestFailure(f"{' '.join(self.args)} exited with {self.proc.returncode} before capturing; "
                                  f"stderr ends with: {self.stderr_tail()}")
            if time.monotonic() > deadline:
                raise TestFailure(f"weft did not print 'capturing' within {timeout}s; stderr ends with: "
                                  f"{self.stderr_tail()}")
        return self

    def stderr_tail(self, lines=6, width=300):
        with self._lock:
            return [line[:width] for line in self.stderr_lines[-lines:]]

    def stop(self, sig=signal.SIGINT, timeout=5.0):
        """Sends `sig`, waits for the exit; returns the exit code (negative: killed by a signal)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"weft did not exit within {timeout}s of signal {sig}")
        self.stop_seconds = time.monotonic() - t0
        self._reader.join(5)
        self._out.flush()
        return self.returncode

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"weft did not exit by itself within {timeout}s")
        self._reader.join(5)
        self._out.flush()
        return self.returncode

    def expect_clean_exit(self):
        check(self.returncode == 0, f"weft exited with {self.returncode}, expected 0; stderr ends with: "
                                    f"{self.stderr_tail()}")

    def stdout_bytes(self):
        self._out.flush()
        with open(self.out_path, "rb") as f:
            return f.read()

    def events(self):
        raw = self.stdout_bytes()
        if self.proc.poll() is None:  # still writing: a last line without its newline is partial
            raw = raw[:raw.rfind(b"\n") + 1]
        return parse_events(raw)

    def summary(self):
        return parse_summary(self.stderr_lines)


def start_weft(ctx, args, label="weft"):
    return Weft(ctx, args, label).wait_capturing()


def parse_events(raw):
    events = []
    for n, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
        except json.JSONDecodeError as err:
            raise TestFailure(f"line {n} of weft's --json output is not JSON ({err}): {line[:200]!r}")
        check(isinstance(e, dict) and "kind" in e, f"line {n} is not an event object: {line[:200]!r}")
        events.append(e)
    return events


# ---------------------------------------------------------------------------------------------
# Reading events


COMMON_FIELDS = ("kind", "time", "ts_ns", "mono_ns", "cookie", "pid", "tid", "comm", "exe", "fd", "role",
                 "family", "local", "remote")
KIND_FIELDS = {
    "data": ("direction", "syscall", "bytes", "chunk_offset", "stream_pos", "tcp_seq", "captured", "truncated",
             "gap_before", "data"),
    "connect": ("result", "error", "duration_ns"),
    "accept": ("queued_ns",),
    "close": ("closed_by", "bytes_sent", "bytes_received", "duration_ns"),
    "existing": (),
    "tcp": ("tcp",),  # kernel TCP facts (docs/network.md)
}


def check_schema(events):
    for e in events:
        check(e["kind"] in KIND_FIELDS, f"unknown event kind {e['kind']!r}")
        for field in COMMON_FIELDS + KIND_FIELDS[e["kind"]]:
            check(field in e, f"{e['kind']} event lacks field {field!r}: {short(e)}")
        check(e["family"] in ("ipv4", "ipv6"), f"bad family in {short(e)}")
        check(e["role"] in ("client", "server", "unknown"), f"bad role in {short(e)}")
        if e["kind"] == "data":
            eq(len(payload(e)), e["captured"], f"decoded payload length vs captured in {short(e)}")
            check(e["captured"] <= e["bytes"], f"captured more than the syscall moved: {short(e)}")


def short(e):
    """An event without its payload, for messages."""
    if isinstance(e, tuple):  # (first event, chunks) from syscalls()
        e = e[0]
    d = {k: v for k, v in e.items() if k not in ("data", "time", "exe")}
    if "data" in e:
        d["data[:40]"] = payload(e)[:40]
    return json.dumps(d, default=str)[:600]


def payload(e):
    return base64.b64decode(e.get("data", ""))


def tuple_of(e):
    return ((e["local"]["address"], e["local"]["port"]), (e["remote"]["address"], e["remote"]["port"]))


def of_kind(events, kind, **match):
    return [e for e in events if e["kind"] == kind and all(e.get(k) == v for k, v in match.items())]


def with_port(events, port):
    return [e for e in events if port in (e["local"]["port"], e["remote"]["port"])]


def data_events(events, cookie, direction):
    chunks = [e for e in events if e["kind"] == "data" and e["cookie"] == cookie and e["direction"] == direction]
    return sorted(chunks, key=lambda e: (e["stream_pos"] if e["stream_pos"] is not None else -1, e["chunk_offset"]))


def syscalls(events, cookie, direction):
    """Data events grouped per syscall: list of (first_event, [chunks])."""
    out = []
    for e in data_events(events, cookie, direction):
        if e["chunk_offset"] == 0:
            out.append((e, [e]))
        else:
            check(out and out[-1][0]["stream_pos"] + e["chunk_offset"] == e["stream_pos"],
                  f"chunk without its syscall's first chunk: {short(e)}")
            out[-1][1].append(e)
    return out


def check_contiguous(events, cookie, direction, start=0, what=""):
    """Checks one direction of one socket: syscalls start at `start` and follow each other with
    no gap or overlap, chunks of a syscall follow each other, gap_before is 0. Returns the
    total bytes moved."""
    label = f"{what} cookie {cookie} {direction}"
    pos = start
    seq_bases = set()
    for first, chunks in syscalls(events, cookie, direction):
        check(first["stream_pos"] is not None, f"{label}: data event without a position: {short(first)}")
        eq(first["stream_pos"], pos, f"{label}: stream_pos of the syscall after {pos - start} bytes")
        eq(first["gap_before"], 0, f"{label}: gap_before at position {pos}")
        offset = 0
        for c in chunks:
            if direction == "send":  # tcp_seq of sent bytes: write_seq based, one ISN per stream
                seq_bases.add((c["tcp_seq"] - c["stream_pos"]) % (1 << 32))
            if c is not first:
                eq(c["gap_before"], 0, f"{label}: gap_before of a later chunk of the syscall at {pos}")
            eq(c["chunk_offset"], offset, f"{label}: chunk_offset in the syscall at {pos}")
            eq(c["bytes"], first["bytes"], f"{label}: bytes of a later chunk of the syscall at {pos}")
            offset += c["captured"]
        pos += first["bytes"]
    check(len(seq_bases) <= 1, f"{label}: tcp_seq - stream_pos is not constant over the stream "
                               f"({len(seq_bases)} different values)")
    return pos - start


def stream_payload(events, cookie, direction):
    """All captured bytes of one direction, in stream order; requires every syscall to be
    captured in full."""
    out = bytearray()
    for first, chunks in syscalls(events, cookie, direction):
        got = b"".join(payload(c) for c in chunks)
        check(len(got) == first["bytes"] and not first["truncated"],
              f"cookie {cookie} {direction}: syscall at {first['stream_pos']} captured {len(got)} of "
              f"{first['bytes']} bytes (truncated={first['truncated']})")
        out += got
    return bytes(out)


def one(items, what):
    check(len(items) == 1, f"expected exactly one {what}, got {len(items)}: " +
          "; ".join(short(e) for e in items[:4]))
    return items[0]


def describe(events, limit=30):
    lines = []
    for e in events[:limit]:
        extra = ""
        if e["kind"] == "data":
            extra = f" {e['direction']} {e['syscall']} {e['bytes']}B pos={e['stream_pos']} off={e['chunk_offset']}"
        lines.append(f"{e['kind']} cookie={e['cookie']} pid={e['pid']} {e['comm']} role={e['role']} "
                     f"{tuple_of(e)}{extra}")
    return "\n    ".join(lines)


# ---------------------------------------------------------------------------------------------
# Registry


CASES = []  # (name, function, timeout seconds), in the order the tests are defined


def case(timeout=60):
    """Registers a test: a function taking a Context, raising TestFailure when a check fails."""
    def register(fn):
        CASES.append((fn.__name__, fn, timeout))
        return fn
    return register
