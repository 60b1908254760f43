"""Real servers and clients for the end-to-end tests: python3 http.server, nginx, curl, and
small Python peers whose exact syscalls the tests know."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness import TestFailure, check, children_of, read_comm, run, wait_listening, wait_until

PYTHON = sys.executable
NGINX = "/usr/sbin/nginx"
CURL = "curl"


class HttpServer:
    """`python3 -m http.server` serving `root` on addr:port."""

    def __init__(self, ctx, root, port, addr="127.0.0.1"):
        self.port = port
        self.addr = addr
        self.log = open(ctx.path(f"http-server-{port}.log"), "wb")
        ctx.on_cleanup(self.log.close)
        self.proc = ctx.spawn([PYTHON, "-m", "http.server", "--bind", addr, "--directory", root, str(port)],
                              stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(port, proc=self.proc)
        self.pid = self.proc.pid
        self.comm = read_comm(self.pid)
        self.exe = os.readlink(f"/proc/{self.pid}/exe")


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 128; }}
http {{
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile {sendfile};
    keepalive_timeout 30s;
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
    }}
}}
"""


class Nginx:
    """nginx with its own config in the test's temp dir, listening on 127.0.0.1 and [::1]."""

    def __init__(self, ctx, root, port, sendfile=False):
        self.port = port
        conf = ctx.path(f"nginx-{port}.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=ctx.tmp, port=port, root=root, sendfile="on" if sendfile else "off"))
        self.log = open(ctx.path(f"nginx-{port}.out"), "wb")
        ctx.on_cleanup(self.log.close)
        self.proc = ctx.spawn([NGINX, "-p", ctx.tmp, "-e", ctx.path("nginx-error.log"), "-c", conf],
                              stdout=self.log, stderr=subprocess.STDOUT, stop_signal=signal.SIGTERM)
        try:
            wait_listening(port, proc=self.proc)
            self.workers = wait_until(lambda: children_of(self.proc.pid), 10, "nginx worker process")
        except TestFailure as e:
            raise TestFailure(f"{e}; nginx error log: {self.error_log()}")
        self.master = self.proc.pid

    def error_log(self):
        try:
            with open(os.path.join(os.path.dirname(self.log.name), "nginx-error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""


def curl(ctx, args, timeout=30):
    """Runs curl to completion; returns (pid, CompletedProcess-like with returncode/stdout/stderr)."""
    proc = ctx.spawn([CURL, "--silent", "--show-error", "--max-time", str(timeout - 5)] + list(args),
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=5)
        raise TestFailure(f"curl {' '.join(args)} did not finish within {timeout}s")
    return proc.pid, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def python_peer(ctx, code, *args, label="peer"):
    """A Python process running `code`, with pipes on stdin/stdout for lockstep control."""
    err = open(ctx.path(f"{label}.stderr"), "wb")
    ctx.on_cleanup(err.close)
    proc = ctx.spawn([PYTHON, "-u", "-c", code] + [str(a) for a in args], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=err, stop_signal=signal.SIGKILL)
    proc.err_path = err.name
    return proc


def read_line(proc, timeout=10.0, what="a line"):
    """One line from a peer's stdout, with a timeout."""
    import select
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure(f"peer did not print {what} within {timeout}s (got {buf!r}); stderr: {peer_stderr(proc)}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 1)
            if not chunk:
                raise TestFailure(f"peer exited before printing {what} (got {buf!r}); stderr: {peer_stderr(proc)}")
            buf += chunk
    return buf.decode().strip()


def peer_stderr(proc):
    try:
        with open(proc.err_path, "rb") as f:
            return f.read()[-1500:].decode("utf-8", "replace")
    except (OSError, AttributeError):
        return ""


def tell(proc, line):
    proc.stdin.write((line + "\n").encode())
    proc.stdin.flush()
