"""Real servers and clients for the end-to-end tests: python3 http.server, nginx, curl, and
small Python peers whose exact syscalls the tests know."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from harness import TestFailure, check, children_of, eq, read_comm, run, stop_process, wait_listening, wait_until

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


def nginx_conf(tmp, http, worker_connections=128, main=""):
    """A whole nginx.conf for one worker running as root from the test's temp dir: pid, error
    log and every temp path inside it (nginx's defaults are not writable here); `main` goes in
    the main context, `http` inside the http block (settings, upstreams, servers)."""
    temp_paths = "".join(f"    {kind}_temp_path {tmp}/{kind};\n"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (f"daemon off;\nmaster_process on;\nworker_processes 1;\nuser root root;\n{main}"
            f"pid {tmp}/nginx.pid;\nerror_log {tmp}/nginx-error.log warn;\n"
            f"events {{ worker_connections {worker_connections}; }}\n"
            f"http {{\n    access_log off;\n{temp_paths}{http}}}\n")


def start_nginx(ctx, name, conf_text, ports, env=None):
    """Runs nginx on `conf_text` (nginx_conf(): one worker) until the test ends, once every port
    of `ports` (one or several) listens and its worker is up; returns the worker pids. Stopped
    master first, then any worker it left behind."""
    conf = ctx.path(f"{name}.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    log = open(ctx.path(f"{name}.out"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([NGINX, "-p", ctx.tmp, "-e", ctx.path("nginx-error.log"), "-c", conf],
                     env=env, stdout=log, stderr=subprocess.STDOUT)
    workers = []
    try:
        for port in ports if isinstance(ports, (list, tuple)) else [ports]:
            wait_listening(port, proc=proc)
        workers = wait_until(lambda: children_of(proc.pid), 10, "nginx worker process")
    except TestFailure as e:
        try:
            with open(ctx.path("nginx-error.log")) as f:
                error_log = f.read()[-1500:]
        except OSError:
            error_log = ""
        raise TestFailure(f"{e}; nginx error log: {error_log}")

    def stop():
        stop_process(proc, signal.SIGTERM)
        for pid in workers:
            try:
                if read_comm(pid) == "nginx":
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
    ctx.on_cleanup(stop)
    return workers


APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"


def apache_conf(tmp, port, modules, body):
    """A whole apache2.conf for the test's temp dir: ServerRoot, runtime dir, PidFile and
    ErrorLog inside it, children as www-data, one Listen on 127.0.0.1:port and the event MPM;
    `modules` are the further modules to load (names: "proxy" loads mod_proxy.so as
    proxy_module), `body` the rest of the configuration."""
    loads = "".join(f"LoadModule {name}_module {APACHE_MODULES}/mod_{name}.so\n"
                    for name in ("mpm_event", "authz_core", *modules))
    return (f"ServerRoot {tmp}\nDefaultRuntimeDir {tmp}\nPidFile {tmp}/apache2.pid\n"
            f"ErrorLog {tmp}/apache-error.log\nLogLevel warn\nServerName 127.0.0.1\n"
            f"User www-data\nGroup www-data\nListen 127.0.0.1:{port}\n{loads}{body}")


def start_apache(ctx, conf_text, port, env=None):
    """Debian's apache2 in the foreground on `conf_text` (ServerRoot, PidFile and ErrorLog in
    ctx.tmp) until the test ends, once `port` listens and a child is up; returns (parent, child
    pids). Stopped parent first (it stops its children), then any child it left behind."""
    check(os.path.exists(APACHE), "apache2 is not installed (scripts/setup.sh installs it)")
    os.chmod(ctx.tmp, 0o755)  # the children run as www-data; mkdtemp makes 0700
    conf = ctx.path("apache.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    r = run([APACHE, "-f", conf, "-t"])
    eq(r.returncode, 0, f"apache2 -t exit status ({r.stderr.decode(errors='replace')[-600:]})")
    log = open(ctx.path("apache.out"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn([APACHE, "-f", conf, "-DFOREGROUND"], stop_signal=signal.SIGTERM, env=env, stdout=log,
                     stderr=subprocess.STDOUT)

    def error_log():
        try:
            with open(ctx.path("apache-error.log")) as f:
                return f.read()[-1500:]
        except OSError:
            return ""
    try:
        wait_listening(port, proc=proc)
        children = wait_until(lambda: [p for p in children_of(proc.pid) if read_comm(p) == "apache2"] or None,
                              10, "apache2 child processes")
    except TestFailure as e:
        raise TestFailure(f"{e}; apache error log: {error_log()}")

    def stop():
        stop_process(proc, signal.SIGTERM, timeout=10)
        for pid in children:
            try:
                if read_comm(pid) == "apache2":
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
    ctx.on_cleanup(stop)
    return proc, children


NGINX_HTTP = """\
    default_type application/octet-stream;
    sendfile {sendfile};
    limit_rate {limit_rate};
    keepalive_timeout 30s;
    keepalive_requests 1000;
    server {{
        listen 127.0.0.1:{port};
        listen [::1]:{port};
        root {root};
    }}
"""


class Nginx:
    """nginx with its own config in the test's temp dir, listening on 127.0.0.1 and [::1]."""

    def __init__(self, ctx, root, port, sendfile=False, limit_rate="0"):
        """limit_rate: bytes per second nginx sends per response (nginx's syntax, "2m"); 0: no limit."""
        self.port = port
        conf = ctx.path(f"nginx-{port}.conf")
        with open(conf, "w") as f:
            f.write(nginx_conf(ctx.tmp, NGINX_HTTP.format(port=port, root=root, sendfile="on" if sendfile else "off",
                                                          limit_rate=limit_rate)))
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
        ctx.on_cleanup(self.stop)

    def stop(self):
        """Stops the master (SIGTERM, then SIGKILL), then any worker it left behind, by pid."""
        stop_process(self.proc, signal.SIGTERM)
        for pid in self.workers:
            try:
                if read_comm(pid) == "nginx":
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass  # already gone

    def error_log(self):
        try:
            with open(os.path.join(os.path.dirname(self.log.name), "nginx-error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""


def wrk_completed(proc, timeout):
    """Waits for a wrk process; returns how many requests it completed, all answered 2xx."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"wrk did not finish within {timeout}s")
    text = out.decode(errors="replace")
    eq(proc.returncode, 0, f"wrk exit status; output:\n{text}")
    check("Non-2xx" not in text and "Socket errors" not in text, f"wrk saw errors:\n{text}")
    m = re.search(r"(\d+) requests in", text)
    check(m and int(m.group(1)) > 0, f"wrk made no request:\n{text}")
    return int(m.group(1))


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


# A TCP server driven line by line on stdin, so a test knows exactly which syscall moves which
# bytes. Each command prints one line: the bytes moved, in hex (or the accepted fd).
#   accept | read N | recv N | recvall N | recvmsg N1 N2.. | readv N1 N2.. | write HEX | send HEX
#   | sendmsg HEX|- .. | writev HEX .. | eof | close       ('-' is an empty buffer)
SOCKET_PEER = r'''
import os, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
ls = socket.socket(family, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2])))
ls.listen(8)
print("listening", flush=True)
conn = None
def unhex(a):
    return b"" if a == "-" else bytes.fromhex(a)
for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "accept":
        conn, _ = ls.accept()
        print(conn.fileno(), flush=True)
        continue
    fd = conn.fileno()
    data = b""
    if cmd == "read":
        data = os.read(fd, int(args[0]))
    elif cmd == "recv":
        data = conn.recv(int(args[0]))
    elif cmd == "recvall":
        want = int(args[0])
        while len(data) < want:
            more = conn.recv(want - len(data))
            if not more:
                break
            data += more
    elif cmd == "recvmsg":
        bufs = [bytearray(int(a)) for a in args]
        n = conn.recvmsg_into(bufs)[0]
        data = b"".join(bufs)[:n]
    elif cmd == "readv":
        bufs = [bytearray(int(a)) for a in args]
        n = os.readv(fd, bufs)
        data = b"".join(bufs)[:n]
    elif cmd == "write":
        data = unhex(args[0])
        assert os.write(fd, data) == len(data)
    elif cmd == "send":
        data = unhex(args[0])
        assert conn.send(data) == len(data)
    elif cmd == "sendmsg":
        parts = [unhex(a) for a in args]
        data = b"".join(parts)
        assert conn.sendmsg(parts) == len(data)
    elif cmd == "writev":
        parts = [unhex(a) for a in args]
        data = b"".join(parts)
        assert os.writev(fd, parts) == len(data)
    elif cmd == "eof":
        data = conn.recv(1)
        data = b"EOF" if not data else b"NOT-EOF:" + data
    elif cmd == "close":
        conn.close()
        conn = None
    print(data.hex() or "-", flush=True)
'''


class SocketPeer:
    """SOCKET_PEER on addr:port, in its own process."""

    def __init__(self, ctx, port, addr="127.0.0.1", label="socket-peer"):
        self.port = port
        self.proc = python_peer(ctx, SOCKET_PEER, addr, port, label=label)
        first = read_line(self.proc, what="'listening'")
        if first != "listening":
            raise TestFailure(f"socket peer said {first!r}; stderr: {peer_stderr(self.proc)}")
        self.pid = self.proc.pid
        self.comm = read_comm(self.pid)

    def start(self, *words):
        """Sends a command without waiting for its result (for reads that block). Words are
        strings, numbers or bytes (sent as hex)."""
        def word(w):
            if isinstance(w, bytes):
                return w.hex() or "-"
            return str(w)
        tell(self.proc, " ".join(word(w) for w in words))

    def result(self, what="a result", timeout=10.0):
        """The bytes the last command moved."""
        line = read_line(self.proc, timeout=timeout, what=what)
        return b"" if line == "-" else bytes.fromhex(line)

    def do(self, *words, timeout=10.0):
        """Runs one command; returns the bytes it moved (the fd, for accept)."""
        self.start(*words)
        if words[0] == "accept":
            return int(read_line(self.proc, timeout=timeout, what="the accepted fd"))
        return self.result(f"the result of {words[0]}", timeout)
