"""Shared pieces of the request-cost benchmarks (saturated.py, fixed_rate.py).

A local nginx serving one small page (checked before anything is measured), an OTLP/HTTP sink
that answers 200 to every export, `weft run` started and stopped around a measured window, and
the three costs of that window: weft's CPU time (all its threads, from /proc schedstat, in ns),
the run time of weft's BPF programs (kernel.bpf_stats_enabled, deltas of run_time_ns), and the
counters of weft's exit summary (spans exported and dropped, records lost).
"""

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PAGE = b"hello from weft's benchmark"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """One worker (the setting of the issue's measurements), keep-alive without a request limit,
    no access log: the server's own cost per request stays small and constant."""

    def __init__(self, page=None, limit_rate=None):
        """page: the bytes served (default PAGE); limit_rate: nginx's per-response send rate
        ("8m"), unlimited when None."""
        self.page = PAGE if page is None else page
        self.dir = tempfile.mkdtemp(prefix="weft-bench-")
        # mkdtemp makes the directory 0700: nginx's worker (www-data) could not read the page and
        # every request would measure a 403.
        os.chmod(self.dir, 0o755)
        os.makedirs(os.path.join(self.dir, "www"))
        with open(os.path.join(self.dir, "www", "index.html"), "wb") as f:
            f.write(self.page)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(
                f"daemon on; worker_processes 1; pid {self.dir}/nginx.pid; "
                f"error_log {self.dir}/error.log;\n"
                "events { worker_connections 4096; }\n"
                "http { access_log off; keepalive_requests 100000000; keepalive_timeout 300s;\n"
                + (f"  limit_rate {limit_rate};\n" if limit_rate else "")
                + f"  server {{ listen 127.0.0.1:{self.port}; root {self.dir}/www; }} }}\n"
            )
        subprocess.run(["nginx", "-c", conf], check=True)
        self.url = f"http://127.0.0.1:{self.port}/index.html"
        self._check_page()

    def _check_page(self):
        deadline = time.time() + 5
        while True:
            out = subprocess.run(
                ["curl", "-s", "-w", " %{http_code}", self.url], capture_output=True
            ).stdout
            if out == self.page + b" 200":
                return
            if time.time() > deadline:
                raise SystemExit(f"nginx does not serve the page (got {out!r}); not measuring")
            time.sleep(0.05)

    def stop(self):
        try:
            with open(os.path.join(self.dir, "nginx.pid")) as f:
                os.kill(int(f.read()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class OtlpSink:
    """Answers 200 to every OTLP/HTTP export and counts the bytes; one request per batch of
    spans, so its own CPU is small next to the load."""

    def __init__(self):
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                self.rfile.read(n)
                sink.requests += 1
                sink.bytes += n
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.requests = 0
        self.bytes = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


def thread_cpu_ns(pid):
    """CPU time of every thread of `pid` so far, in ns (schedstat: exact, unlike clock ticks)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # the thread ended between listdir and open
    return total


def bpf_run_ns(pid):
    """{program name: (run_time_ns, run_cnt)} of the BPF programs loaded by `pid`."""
    ids = set()
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = re.search(r"^prog_id:\s*(\d+)", f.read(), re.M)
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    out = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, check=True)
    progs = {}
    for p in json.loads(out.stdout):
        if p["id"] in ids:
            progs[p.get("name", str(p["id"]))] = (p.get("run_time_ns", 0), p.get("run_cnt", 0))
    return progs


class BpfStats:
    def __enter__(self):
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            self.old = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.old)


SUMMARY_PATTERNS = {
    "spans_built": r"spans: (\d+) built",
    "spans_exported": r"= (\d+) exported",
    "spans_sampled_out": r"exported \+ (\d+) sampled out",
    "spans_dropped": r"sampled out \+ (\d+) dropped",
    "ringbuf_full": r"ringbuf_full=(\d+)",
    "stream_gaps": r"stream gaps=(\d+)",
}


class Weft:
    """`weft run` with the given extra arguments, stopped with SIGINT (it flushes and prints its
    summary on stderr)."""

    def __init__(self, binary, args, command=None):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            command or [binary, "run", "--metrics-address", "off", *args],
            stdout=subprocess.DEVNULL,
            stderr=self.err,
        )
        deadline = time.time() + 30
        while b"capturing" not in self._stderr():
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit("weft did not start: " + self._stderr().decode(errors="replace"))
            time.sleep(0.05)
        self.pid = self.proc.pid

    def _stderr(self):
        self.err.seek(0)
        return self.err.read()

    def snapshot(self):
        return thread_cpu_ns(self.pid), bpf_run_ns(self.pid)

    def stop(self):
        """Stops weft and returns its summary counters, its stderr, and the CPU time (ns) all its
        threads used over its whole life (from wait4's rusage: the flush at exit included)."""
        self.proc.send_signal(signal.SIGINT)
        deadline = time.time() + 60
        while True:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                break
            if time.time() > deadline:
                self.proc.kill()
                pid, status, usage = os.wait4(self.pid, 0)
                break
            time.sleep(0.02)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        cpu_ns = int((usage.ru_utime + usage.ru_stime) * 1e9)
        text = self._stderr().decode(errors="replace")
        summary = {}
        for key, pattern in SUMMARY_PATTERNS.items():
            m = re.search(pattern, text)
            summary[key] = int(m.group(1)) if m else None
        return summary, text, cpu_ns


def bpf_delta(before, after):
    """(ns, runs) per program between two bpf_run_ns snapshots."""
    out = {}
    for name, (ns, cnt) in after.items():
        ns0, cnt0 = before.get(name, (0, 0))
        if cnt > cnt0:
            out[name] = (ns - ns0, cnt - cnt0)
    return out


def capture_only(binary):
    """`weft record` to /dev/null: the same kernel hooks and ring buffer as `weft run`, read and
    written away with no pipeline behind them. Next to a `weft run` arm it splits weft's cost
    into what capturing costs and what the pipeline adds."""
    return Weft(binary, [], command=[binary, "record", "-o", "/dev/null"])


def exporter_args(kind, workdir, sink):
    if kind == "otlp-file":
        return ["--exporter", "otlp-file", "--output", os.path.join(workdir, "spans.jsonl")]
    if kind == "otlp-protobuf":
        return [
            "--exporter",
            "otlp",
            "--otlp-protocol",
            "http/protobuf",
            "--otlp-endpoint",
            f"http://127.0.0.1:{sink.port}",
            "--metrics-interval",
            "3600",
        ]
    raise SystemExit(f"unknown exporter {kind}")


def require_root():
    if os.geteuid() != 0:
        raise SystemExit("run as root: weft loads BPF programs")


def git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        ["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def log(*args):
    print(*args, file=sys.stderr, flush=True)
