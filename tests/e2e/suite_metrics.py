"""weft's Prometheus endpoint during `weft run`: `promtool check metrics` (Debian package
prometheus) accepts what it serves, the request-duration histograms count exactly the requests
made (server side and client side), the scrape itself is neither counted nor traced, and a bad
or taken address is one clear message.

Run alone: python3 tests/e2e/run.py --weft build/weft -k metrics_"""
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import harness
from harness import TestFailure, case, check, eq, free_port, wait_until
from peers import HttpServer, curl

REQUESTS = 30
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        eq(r.status, 200, "status of GET /metrics")
        check(r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
              f"Content-Type of /metrics: {r.headers.get('Content-Type')}")
        return r.read().decode()


def samples(text):
    """[(name, {label: value}, float value)] of every sample line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        check(m, f"not a sample line: {line!r}")
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def total(items, name, **labels):
    return sum(v for n, l, v in items if n == name and all(l.get(k) == w for k, w in labels.items()))


def promtool_accepts(ctx, text):
    promtool = shutil.which("promtool")
    check(promtool, "promtool is missing (Debian package prometheus; scripts/setup.sh installs it)")
    path = ctx.path("metrics.prom")
    with open(path, "w") as f:
        f.write(text)
    with open(path) as f:
        r = subprocess.run([promtool, "check", "metrics"], stdin=f, capture_output=True, text=True, timeout=30)
    eq((r.returncode, r.stdout.strip(), r.stderr.strip()), (0, "", ""), "promtool check metrics")


def start_run(ctx, *args):
    return harness.start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", ctx.path("traces.jsonl"),
                                    "--trace-wait", "0.5"] + list(args), label="run")


@case(timeout=90)
def metrics_prometheus_counts_every_request(ctx):
    """Histogram counts equal the requests made, per side and route; promtool accepts the page;
    scraping does not count or trace itself."""
    root = ctx.path("www")
    os.makedirs(os.path.join(root, "items"))
    for n in range(REQUESTS):
        with open(os.path.join(root, "items", str(n)), "w") as f:
            f.write("item\n")
    server = HttpServer(ctx, root, free_port())
    port = free_port()
    weft = start_run(ctx, "--metrics-address", f"127.0.0.1:{port}")

    urls = [f"http://127.0.0.1:{server.port}/items/{n}" for n in range(REQUESTS)]
    urls += [f"http://127.0.0.1:{server.port}/missing/{n}" for n in range(5)]  # 404s
    _, r = curl(ctx, ["--output", "/dev/null"] + [a for u in urls for a in ("--output", "/dev/null", u)])
    eq(r.returncode, 0, "curl exit status")

    def counted():
        s = samples(scrape(port))
        n = total(s, "http_server_request_duration_seconds_count", http_route="/items/{id}",
                  http_response_status_code="200")
        return s if n >= REQUESTS else None
    try:
        items = wait_until(counted, 10, f"{REQUESTS} server requests counted on /metrics", interval=0.2)
    except TestFailure as e:
        raise TestFailure(f"{e}; last scrape:\n{scrape(port)[:3000]}")
    time.sleep(1.0)  # scrapes keep coming in; none of them may be counted
    text = scrape(port)
    promtool_accepts(ctx, text)
    items = samples(text)
    # service.name: the executable's name (the process sets no OTEL_SERVICE_NAME).
    server_labels = dict(service_name=os.path.basename(server.exe), http_request_method="GET", http_route="/items/{id}",
                         http_response_status_code="200")
    eq(total(items, "http_server_request_duration_seconds_count", **server_labels), REQUESTS,
       "server request count for GET /items/{id} 200")
    eq(total(items, "http_server_request_duration_seconds_bucket", le="+Inf", **server_labels), REQUESTS,
       "the +Inf bucket of GET /items/{id} 200")
    eq(total(items, "http_server_request_duration_seconds_count", http_route="/missing/{id}",
             http_response_status_code="404"), 5, "server request count for the 404s")
    eq(total(items, "http_client_request_duration_seconds_count", service_name="curl",
             url_template="/items/{id}", http_response_status_code="200"), REQUESTS,
       "curl's client request count for /items/{id}")
    buckets = sorted((float(l["le"]), v) for n, l, v in items
                     if n == "http_server_request_duration_seconds_bucket" and l.get("http_route") == "/items/{id}")
    check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), f"buckets not cumulative: {buckets}")
    check(total(items, "http_server_request_duration_seconds_sum", **server_labels) > 0, "duration sum is zero")
    # Every request made above, and nothing else: the scrapes (GET /metrics) are not requests.
    eq(total(items, "http_server_request_duration_seconds_count", service_name=server_labels["service_name"]),
       REQUESTS + 5, "all requests the server answered")
    check(not [l for n, l, v in items if l.get("http_route") == "/metrics" or l.get("url_template") == "/metrics"],
          "a scrape of /metrics was counted as a request")
    check(total(items, "weft_spans_total") >= 2 * (REQUESTS + 5), "weft_spans_total below the spans made")
    check(any(n == "weft_events_total" and v > 0 for n, _, v in items), "weft_events_total missing or zero")
    # Each curl call and the server's span of it were both seen here with nothing left to join
    # them: their traces leave at once, and say so.
    check(total(items, "weft_traces_settled_early_total") >= REQUESTS,
          f"weft_traces_settled_early_total below the {REQUESTS} same-node calls")
    check(any(n == "weft_tls_calls_total" and l.get("kind") == "unmapped" for n, l, _ in items),
          "weft_tls_calls_total{kind=unmapped} missing")
    check(any(n == "weft_capture_skipped_bytes_total" for n, _, _ in items),
          "weft_capture_skipped_bytes_total missing")

    weft.stop()
    weft.expect_clean_exit()
    with open(ctx.path("traces.jsonl")) as f:
        check("/metrics" not in f.read(), "a scrape of weft's /metrics was traced")


@case(timeout=60)
def metrics_endpoint_only_serves_metrics(ctx):
    """Only GET /metrics answers; it listens on loopback by default."""
    port = free_port()
    weft = start_run(ctx, "--metrics-address", f"127.0.0.1:{port}")
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        raise TestFailure("GET / on the metrics endpoint did not answer 404")
    except urllib.error.HTTPError as e:
        eq(e.code, 404, "status of GET / on the metrics endpoint")
    weft.stop()
    weft.expect_clean_exit()


@case(timeout=60)
def metrics_address_mistakes(ctx):
    """A malformed address exits 2 with one line; a taken explicit address exits 1 with one
    line; `off` serves nothing."""
    r = subprocess.run([harness.WEFT, "run", "--metrics-address", "localhost"], capture_output=True,
                       text=True, timeout=20)
    eq(r.returncode, 2, "exit code for --metrics-address localhost")
    lines = r.stderr.strip().splitlines()
    eq(len(lines), 1, f"lines of error output: {lines}")
    check("--metrics-address" in lines[0], f"the error names the flag: {lines[0]}")

    holder = HttpServer(ctx, ctx.path(), free_port())  # something else has the port
    r = subprocess.run([harness.WEFT, "run", "--metrics-address", f"127.0.0.1:{holder.port}", "--duration", "1"],
                       capture_output=True, text=True, timeout=30)
    eq(r.returncode, 1, f"exit code when the metrics address is taken; stderr: {r.stderr.strip()}")
    check(str(holder.port) in r.stderr, f"the error names the address: {r.stderr.strip()}")
