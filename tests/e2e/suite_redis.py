"""Redis: the real redis-server from Debian, with redis-cli, redis-benchmark (pipelining) and a
Python client (python3-redis) on loopback; `weft exchanges --json` counts and reads the Redis
exchanges of both ends, `weft run` exports their spans and the db.client.operation.duration
metric.

Each test starts its own redis-server on a free loopback port (no persistence, no unix socket)
and filters weft's output on that port, so other traffic on the machine does not count.
"""
import json
import os
import shutil
import signal
import subprocess
import urllib.request

import harness
from harness import TestFailure, case, check, eq, free_port, start_weft, wait_listening, wait_until
from peers import read_line, tell
from suite_tracing import otlp_spans

SYSTEM_PYTHON = "/usr/bin/python3"  # where python3-redis is installed


def start_redis(ctx):
    """A redis-server of this test on a free loopback port; returns the port."""
    for tool in ("redis-server", "redis-cli", "redis-benchmark"):
        check(shutil.which(tool), f"{tool} is not installed (Debian: redis-server, redis-tools; "
                                          "scripts/setup.sh installs them)")
    port = free_port()
    log = open(ctx.path("redis.log"), "wb")
    ctx.on_cleanup(log.close)
    proc = ctx.spawn(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--unixsocket", "", "--daemonize", "no",
                      "--dir", ctx.tmp], stdout=log, stderr=subprocess.STDOUT)
    wait_listening(port, proc=proc)
    return port


def redis_cli(ctx, port, commands, timeout=20):
    """One redis-cli process sending `commands` (lists of words) on one connection; returns
    (pid, output lines)."""
    stdin = "".join(" ".join(words) + "\n" for words in commands).encode()
    proc = ctx.spawn(["redis-cli", "-p", str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE)
    out, err = proc.communicate(stdin, timeout=timeout)
    eq(proc.returncode, 0, f"redis-cli exit status ({err.decode(errors='replace').strip()})")
    return proc.pid, out.decode(errors="replace").splitlines()


def exchanges_json(weft):
    out = []
    raw = weft.stdout_bytes().decode("utf-8", "replace")
    for line in raw[:raw.rfind("\n") + 1].splitlines():  # whole lines only: weft may be writing
        if line.strip():
            out.append(json.loads(line))
    return out


def redis_of(xs, side=None, pid=None, comm=None):
    return [x for x in xs if x.get("protocol") == "redis" and (side is None or x["side"] == side) and
            (pid is None or x["pid"] == pid) and (comm is None or x["comm"] == comm)]


def start_exchanges(ctx, port):
    return start_weft(ctx, ["exchanges", "--json", "--port", str(port)], label="exchanges")


def wait_for(weft, what, predicate, timeout=15):
    """Waits until predicate(exchanges) holds; returns the exchanges."""
    wait_until(lambda: predicate(exchanges_json(weft)), timeout, what)
    return exchanges_json(weft)


def commands(xs):
    return [x["command"] for x in xs]


def listing(xs):
    return "\n    ".join(f"{x['side']} {x['comm']}[{x['pid']}] {x['query_text']} -> {x['reply_type']} "
                         f"{x.get('error_prefix', '')}" for x in xs) or "(none)"


@case(timeout=60)
def redis_cli_commands_are_exchanges_on_both_ends(ctx):
    port = start_redis(ctx)
    weft = start_exchanges(ctx, port)
    issued = [["SET", "k", "hello"], ["GET", "k"], ["INCR", "n"], ["INCR", "n"], ["LPUSH", "k", "x"],
              ["SELECT", "2"], ["GET", "k"]]
    pid, out = redis_cli(ctx, port, issued)
    check(any("WRONGTYPE" in line for line in out), f"redis-cli did not print the WRONGTYPE error: {out}")
    xs = wait_for(weft, "the server's and the client's exchanges",
                  lambda xs: len(redis_of(xs, "server")) >= len(issued) and
                  len(redis_of(xs, "client", pid=pid)) >= len(issued))
    weft.stop()
    weft.expect_clean_exit()
    xs = exchanges_json(weft)
    client = redis_of(xs, "client", pid=pid)
    server = redis_of(xs, "server", comm="redis-server")
    want = [w[0] for w in issued]
    for what, got in (("client (redis-cli)", client), ("server (redis-server)", server)):
        # Reading commands from stdin, redis-cli first asks for the command table (COMMAND DOCS)
        # for its hints: commands it issued too, before the test's own.
        lead = 0
        while lead < len(got) and got[lead]["command"] == "COMMAND":
            lead += 1
        check(lead <= 2, f"{what}: {lead} COMMAND exchanges before the test's own")
        got = got[lead:]
        eq(commands(got), want, f"{what} Redis exchanges, in order:\n    {listing(got)}\n  ")
        eq(got[0]["query_text"], "SET ? ?", f"{what} redacted query text")
        eq((got[1]["reply_type"], got[1]["reply_length"]), ("$", 5), f"{what} GET's reply")
        eq((got[3]["reply_type"]), ":", f"{what} INCR's reply type")
        eq((got[4]["reply_type"], got[4]["error_prefix"]), ("-", "WRONGTYPE"), f"{what} LPUSH's error")
        eq([x["db"] for x in got], [0, 0, 0, 0, 0, 0, 2], f"{what} database index per command")
        for x in got:
            check(x["request"]["start_ns"] <= x["request"]["end_ns"] <= x["response"]["start_ns"] <=
                  x["response"]["end_ns"], f"{what}: timings out of order in {x}")
    lines = [line for line in weft.stderr_lines if line.startswith("weft exchanges: redis:")]
    check(lines, f"no redis summary line on stderr: {weft.stderr_tail(10)}")


@case(timeout=120)
def redis_benchmark_pipelined_requests_are_exact(ctx):
    port = start_redis(ctx)
    weft = start_exchanges(ctx, port)
    n = 2000
    r = subprocess.run(["redis-benchmark", "-p", str(port), "-P", "16", "-n", str(n), "-c", "4", "-t", "set,get",
                        "-q"], capture_output=True, timeout=60)
    eq(r.returncode, 0, f"redis-benchmark exit status ({r.stderr.decode(errors='replace').strip()})")

    def done(xs):
        server = redis_of(xs, "server", comm="redis-server")
        return sum(1 for x in server if x["command"] in ("SET", "GET")) >= 2 * n
    try:
        wait_for(weft, f"{2 * n} SET and GET exchanges on the server side", done, timeout=30)
    finally:
        weft.stop()
    xs = exchanges_json(weft)
    # The server's view: every SET and GET redis-benchmark pipelined, exactly once.
    server = [x for x in redis_of(xs, "server", comm="redis-server") if x["command"] in ("SET", "GET")]
    eq(sum(1 for x in server if x["command"] == "SET"), n, "server-side SET exchanges")
    eq(sum(1 for x in server if x["command"] == "GET"), n, "server-side GET exchanges")
    # The client's view (the redis-benchmark process): the same requests.
    client = [x for x in redis_of(xs, "client", comm="redis-benchmark") if x["command"] in ("SET", "GET")]
    eq(len(client), 2 * n, "client-side (redis-benchmark) SET and GET exchanges")
    check(all(x["reply_type"] in ("+", "$") for x in server), "a SET or GET with an unexpected reply")


PY_CLIENT = r'''
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
r.ping()
p = r.pipeline(transaction=False)
for i in range(5):
    p.set(f"p{i}", i)
p.execute()
t = r.pipeline(transaction=True)
t.incr("t"); t.incr("t"); t.get("t")
print(t.execute(), flush=True)
'''


@case(timeout=60)
def python_redis_pipeline_and_transaction(ctx):
    check(os.path.exists(SYSTEM_PYTHON), "no /usr/bin/python3")
    port = start_redis(ctx)
    weft = start_exchanges(ctx, port)
    proc = ctx.spawn([SYSTEM_PYTHON, "-c", PY_CLIENT, str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=20)
    eq(proc.returncode, 0, f"python3-redis client exit status ({err.decode(errors='replace').strip()[-500:]})")
    pid = proc.pid
    # redis-py sends incr() as INCRBY.
    want_tail = ["PING"] + ["SET"] * 5 + ["MULTI", "INCRBY", "INCRBY", "GET", "EXEC"]
    try:
        wait_for(weft, "the Python client's exchanges",
                 lambda xs: commands(redis_of(xs, "client", pid=pid))[-len(want_tail):] == want_tail)
    except TestFailure as e:
        raise TestFailure(f"{e}; the client's exchanges:\n    {listing(redis_of(exchanges_json(weft), 'client'))}")
    finally:
        weft.stop()
    xs = redis_of(exchanges_json(weft), "client", pid=pid)
    got = commands(xs)
    # redis-py may introduce itself first (CLIENT SETINFO): those are commands it issued too.
    check(all(c in ("CLIENT", "HELLO") for c in got[:-len(want_tail)]),
          f"unexpected commands before the test's own:\n    {listing(xs)}")
    tx = xs[-5:]
    eq([x["in_transaction"] for x in tx], [False, True, True, True, False], "in_transaction of MULTI..EXEC")
    eq([x["reply_type"] for x in tx[1:4]], ["+"] * 3, "queued commands' reply type (+QUEUED)")
    eq(tx[4]["reply_type"], "*", "EXEC's reply type")
    eq(tx[4]["reply_length"], 3, "EXEC's reply elements")


PRE_CONNECTED = r'''
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), single_connection_client=True)
r.ping()
print("connected", flush=True)
sys.stdin.readline()
r.set("before", "x"); r.get("before"); r.incr("counter")
print("done", flush=True)
sys.stdin.readline()
'''


@case(timeout=60)
def redis_connection_opened_before_weft_is_traced_from_its_next_command(ctx):
    port = start_redis(ctx)
    err = open(ctx.path("pre.stderr"), "wb")
    ctx.on_cleanup(err.close)
    proc = ctx.spawn([SYSTEM_PYTHON, "-u", "-c", PRE_CONNECTED, str(port)], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, stderr=err, stop_signal=signal.SIGKILL)
    proc.err_path = err.name
    eq(read_line(proc, 15, "connected"), "connected", "client")
    weft = start_exchanges(ctx, port)
    tell(proc, "go")
    eq(read_line(proc, 15, "done"), "done", "client")
    try:
        wait_for(weft, "the pre-connected client's exchanges",
                 lambda xs: len(redis_of(xs, "client", pid=proc.pid)) >= 3)
    finally:
        weft.stop()
    xs = redis_of(exchanges_json(weft), "client", pid=proc.pid)
    eq(commands(xs), ["SET", "GET", "INCRBY"], f"exchanges of the connection opened before weft:\n    {listing(xs)}\n  ")
    # It may have run SELECT before weft started: its database is not assumed.
    eq([x["db"] for x in xs], [None] * 3, "the database of a connection opened before weft")
    server = [x for x in redis_of(exchanges_json(weft), "server", comm="redis-server")
              if x["remote"]["port"] == xs[0]["local"]["port"]]
    eq(commands(server), ["SET", "GET", "INCRBY"], "the server's view of that connection")
    tell(proc, "bye")


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


@case(timeout=60)
def redis_spans_and_duration_metric(ctx):
    port = start_redis(ctx)
    out_path = ctx.path("spans.jsonl")
    metrics_port = free_port()
    weft = start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out_path, "--trace-wait", "0.3",
                            "--export-interval", "0.1", "--metrics-address", f"127.0.0.1:{metrics_port}"],
                      label="run")
    pid, _ = redis_cli(ctx, port, [["SET", "secret-key", "secret-value"], ["GET", "secret-key"],
                                   ["LPUSH", "secret-key", "x"]])

    def redis_spans():
        return [s for s in otlp_spans(out_path) if s["attrs"].get("db.system.name") == "redis" and
                s["attrs"].get("server.port") in (port, str(port))]
    wait_until(lambda: len([s for s in redis_spans() if s["pid"] == pid and
                            s["attrs"]["db.operation.name"] != "COMMAND"]) >= 3, 20, "the redis-cli spans")
    text = wait_until(lambda: (lambda t: t if 'db_system_name="redis"' in t else None)(scrape(metrics_port)),
                      10, "db_client_operation_duration_seconds on /metrics")
    weft.stop()
    client = [s for s in redis_spans() if s["pid"] == pid and s["attrs"]["db.operation.name"] != "COMMAND"]
    for s in client:
        eq(s["kind"], 3, f"span kind of {s['name']} (client)")
        check("secret" not in s["attrs"].get("db.query.text", ""), f"db.query.text not redacted: {s['attrs']}")
    by_op = {s["attrs"]["db.operation.name"]: s for s in client}
    eq(sorted(by_op), ["GET", "LPUSH", "SET"], "db.operation.name of the client spans")
    eq(by_op["SET"]["name"], "SET", "span name")
    eq(by_op["SET"]["attrs"]["db.query.text"], "SET ? ?", "db.query.text")
    eq(by_op["GET"]["attrs"]["db.namespace"], "0", "db.namespace")
    eq(by_op["LPUSH"]["attrs"]["db.response.status_code"], "WRONGTYPE", "db.response.status_code")
    eq(by_op["LPUSH"]["status"].get("code"), 2, "status of the failed command")
    check(any(line.startswith("db_client_operation_duration_seconds_count{") and 'db_operation_name="GET"' in line
              for line in text.splitlines()),
          "no db_client_operation_duration_seconds series for GET:\n" +
          "\n".join(line for line in text.splitlines() if "db_" in line)[:2000])
