"""Adaptive sampling under load: `weft run --max-traces-per-second` while wrk drives a few
thousand requests a second through nginx. weft exports about the limit's worth of traces a
second, each one whole (nginx's server span under wrk's client span), keeps every trace with an
error, reports the root ratio it fell to (/metrics and the summary) and raises it again when the
load stops, while the request-duration histograms count every request.

Run alone: python3 tests/e2e/run.py --weft build/weft -k sampling_"""
import collections
import os
import re
import shutil
import signal
import subprocess
import time

import harness
from harness import TestFailure, case, check, eq, free_port, wait_until
from peers import Nginx, curl, wrk_completed
from suite_metrics import samples, scrape, total
from suite_tracing import otlp_spans

LIMIT = 50
LOAD_SECONDS = 6
CONNECTIONS = 4
ERRORS = 20
# Paths no other test asks for: the duration histograms are compared by route, so traffic of
# other programs on the machine cannot add to the counts.
PAGE = "/sampling-load-page.txt"
MISSING = "/sampling-missing/"
RUN_SAMPLING = re.compile(r"; sampling: root ratio (\S+) rate-limited=(\d+)$")


def gauge(metrics_port, name):
    values = [v for n, _, v in samples(scrape(metrics_port)) if n == name]
    check(len(values) == 1, f"{name} on /metrics: {values}")
    return values[0]


@case(timeout=150)
def sampling_max_traces_per_second_under_load(ctx):
    """About LIMIT whole traces a second under wrk; every error kept; every request counted."""
    check(shutil.which("wrk"), "wrk is missing (Debian package wrk; scripts/setup.sh installs it)")
    root = ctx.path("www")
    os.makedirs(root)
    with open(os.path.join(root, PAGE.lstrip("/")), "w") as f:
        f.write("page\n")
    nginx = Nginx(ctx, root, free_port())
    out = ctx.path("traces.jsonl")
    metrics_port = free_port()
    weft = harness.start_weft(ctx, ["run", "--exporter", "otlp-file", "--output", out, "--trace-wait", "0.5",
                                    "--metrics-address", f"127.0.0.1:{metrics_port}",
                                    "--max-traces-per-second", str(LIMIT),
                                    # Room for bursts: this test counts requests, not ring losses.
                                    "--ringbuf-bytes", str(64 << 20)], label="run")
    eq(gauge(metrics_port, "weft_traces_sampling_ratio"), 1.0, "the root ratio before any load")

    started = time.monotonic()
    wrk = ctx.spawn(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{LOAD_SECONDS}s", f"http://127.0.0.1:{nginx.port}{PAGE}"],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stop_signal=signal.SIGINT)
    # Requests nginx answers 404 during the load: an error on curl's side, so kept whatever the ratio.
    missing = [f"{MISSING}{n}" for n in range(ERRORS)]
    _, r = curl(ctx, [a for p in missing for a in ("-o", "/dev/null", f"http://127.0.0.1:{nginx.port}{p}")])
    eq(r.returncode, 0, "curl exit status")
    # The ratio falls while the load lasts (the metric is published about once a second).
    wait_until(lambda: gauge(metrics_port, "weft_traces_sampling_ratio") < 0.5, LOAD_SECONDS + 5,
               "the root ratio on /metrics to fall under load", interval=0.2)
    requests = wrk_completed(wrk, LOAD_SECONDS + 30)
    load_seconds = time.monotonic() - started
    check(requests / load_seconds > 5 * LIMIT, f"only {requests} requests in {load_seconds:.1f}s: not a flood")

    # Every request counted, sampled or not (wrk does not count requests in flight when it stops).
    def server_count():
        return total(samples(scrape(metrics_port)), "http_server_request_duration_seconds_count",
                     http_route=PAGE, http_response_status_code="200")
    try:
        counted = wait_until(lambda: (lambda n: n if n >= requests else None)(server_count()), 10,
                             f"{requests} nginx requests counted on /metrics", interval=0.5)
    except TestFailure as e:
        lost = {l.get("cause"): v for n, l, v in samples(scrape(metrics_port)) if n == "weft_events_lost_total"}
        raise TestFailure(f"{e}: {server_count()} counted; events lost: {lost}")
    check(counted <= requests + CONNECTIONS, f"{counted} requests counted on /metrics, wrk made {requests}")
    items = samples(scrape(metrics_port))
    eq(total(items, "http_server_request_duration_seconds_count", http_route=MISSING + "{id}",
             http_response_status_code="404"), ERRORS,
       "404s counted on /metrics")

    # The load falls to a trickle (curl, 10 requests a second): the ratio climbs back to 1, at
    # most doubling each second.
    trickle = ctx.spawn(["curl", "--silent", "--fail", "--rate", "10/s", "-o", "/dev/null",
                         f"http://127.0.0.1:{nginx.port}{PAGE}?n=[1-400]"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: gauge(metrics_port, "weft_traces_sampling_ratio") == 1.0, 25,
               "the root ratio on /metrics to rise back to 1 once the load fell", interval=0.5)
    harness.stop_process(trickle, signal.SIGTERM)

    weft.stop(timeout=20)
    weft.expect_clean_exit()
    summary = harness.parse_run_summary(weft.stderr_lines)
    sampling = [m for m in map(RUN_SAMPLING.search, weft.stderr_lines) if m]
    check(sampling, f"no sampling figures in the traces line; stderr ends with {weft.stderr_tail()}")
    check(summary["traces_sampled_out"] > requests // 2, f"too few traces sampled out: {summary}")

    traces = collections.defaultdict(list)
    for s in otlp_spans(out):
        traces[s["traceId"]].append(s)
    page, errors, broken, cut = [], [], [], []
    for trace_id, spans in traces.items():
        path = {s["attrs"].get("url.path") for s in spans}
        if not any(p and (p == PAGE or p.startswith(MISSING)) for p in path):
            continue  # other programs on the machine
        server = [s for s in spans if s["kind"] == 2]
        client = [s for s in spans if s["kind"] == 3]
        if not server and len(client) == 1 and client[0]["service"] == "wrk":
            # Seen so far only at wrk's stop, once per connection at most: wrk's span of the
            # request in flight when it closed its connections, with no nginx span to join
            # (a trace of its own, not half of one).
            cut.append(client[0])
            continue
        if len(spans) != 2 or len(server) != 1 or len(client) != 1 or \
                server[0].get("parentSpanId") != client[0]["spanId"] or client[0].get("parentSpanId"):
            broken.append((trace_id, [(s["kind"], s["attrs"].get("url.path"), s.get("parentSpanId")) for s in spans]))
            continue
        if path != {PAGE}:
            errors.append(client[0])
        elif client[0]["service"] == "wrk":  # not the trickle's curl
            page.append(client[0])
    check(not broken, f"{len(broken)} traces not whole (one wrk/curl client span, nginx's server span under it): "
                      f"{broken[:4]}")
    eq(sorted(s["attrs"]["url.path"] for s in errors), sorted(missing), "the traces of the 404s, all kept")
    check(len(cut) <= CONNECTIONS, f"{len(cut)} wrk requests without nginx's span, more than one per connection: "
                                   f"{[(c['attrs'], c['startTimeUnixNano']) for c in cut[:4]]}")

    # About LIMIT a second: the bucket lets one extra second's worth through before the ratio
    # adapts; the tail of the load leaves with the last trace wait. The sampler's clock is the
    # events' time, so a pipeline running behind on a loaded machine decides fewer seconds'
    # worth: the floor is one second's worth, the ceiling is what the limit allows.
    kept = len(page)
    check(LIMIT <= kept <= LIMIT * (load_seconds + 2) + LIMIT,
          f"{kept} traces of {requests} requests exported in {load_seconds:.1f}s of load at "
          f"--max-traces-per-second {LIMIT}")
    per_second = collections.Counter(int(s["startTimeUnixNano"]) // 1_000_000_000 for s in page)
    check(max(per_second.values()) <= 2 * LIMIT + 5,
          f"traces per second of request start: {sorted(per_second.items())}")
