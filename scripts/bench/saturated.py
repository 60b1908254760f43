#!/usr/bin/python3
"""What weft costs a saturated HTTP server, in one run (issue 11's first goal).

    sudo scripts/bench/saturated.py [--weft build/weft[,OLD/weft...]] [--rounds 3] [--seconds 5]
        [--exporters otlp-protobuf,otlp-file,capture-only] [--connections 4] [-- extra weft run flags]

wrk (one thread, --connections keep-alive connections) against a local nginx with one worker
serving a small page; rounds alternate untraced and traced (one traced run per exporter per
round: `weft run` exporting OTLP/HTTP protobuf to a local sink, or the OTLP JSON file), so
machine noise hits both sides alike. For every traced run, in the same window:
  ratio        wrk's request rate traced / the untraced round next to it
  cpu us/req   weft's CPU time (all threads, from the first request to its exit, flush
               included) per request
  bpf ns/req   run time of all of weft's BPF programs (kernel.bpf_stats_enabled) per request
  exported     spans weft exported / server spans expected (one per request; the client spans
               of wrk's requests too: 2 per request), and what it lost (ring, export queue)
Several binaries (--weft NEW,OLD) are measured in the same rounds, each next to the same
untraced run: new against old in one run. The exporter `capture-only` is `weft record` to
/dev/null instead of `weft run`: the same kernel hooks and ring buffer with no pipeline behind
them, so that one run shows how much of the loss is capturing and how much the pipeline. Prints a table and one JSON object per run (--json).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def wrk(url, seconds, connections):
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise SystemExit("wrk saw non-2xx answers; not measuring:\n" + out)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return rate, requests


def traced_round(args, binary, nginx, sink, exporter, workdir):
    if exporter == "capture-only":
        weft = benchlib.capture_only(binary)
    else:
        weft = benchlib.Weft(binary, benchlib.exporter_args(exporter, workdir, sink) + args.extra)
    try:
        cpu0, bpf0 = weft.snapshot()
        rate, requests = wrk(nginx.url, args.seconds, args.connections)
        _, bpf1 = weft.snapshot()
    finally:
        summary, text, cpu_total = weft.stop()
    if args.verbose:
        benchlib.log(text)
    bpf = benchlib.bpf_delta(bpf0, bpf1)
    bpf_ns = sum(ns for ns, _ in bpf.values())
    out = {
        "weft": binary,
        "exporter": exporter,
        "rate": rate,
        "requests": requests,
        "cpu_us_per_request": (cpu_total - cpu0) / 1000 / requests,
        "bpf_ns_per_request": bpf_ns / requests,
        "bpf_programs": {k: {"ns_per_run": ns / n, "runs": n} for k, (ns, n) in bpf.items()},
        "spans_expected": 2 * requests,
        **summary,
    }
    if exporter == "capture-only":  # no spans: records only
        out.update(spans_exported=0, spans_expected=0, spans_dropped=0)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weft", default="build/weft")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--exporters", default="otlp-protobuf,otlp-file,capture-only")
    p.add_argument("--json", action="store_true", help="also print one JSON object per run")
    p.add_argument("--verbose", action="store_true", help="print weft's exit summary of each run")
    p.add_argument("extra", nargs="*", help="extra `weft run` flags (after --)")
    args = p.parse_args()
    benchlib.require_root()
    exporters = args.exporters.split(",")
    binaries = args.weft.split(",")

    nginx = benchlib.Nginx()
    sink = benchlib.OtlpSink()
    runs = []
    try:
        with benchlib.BpfStats():
            for r in range(args.rounds):
                untraced, _ = wrk(nginx.url, args.seconds, args.connections)
                benchlib.log(f"round {r + 1}: untraced {untraced:.0f} req/s")
                for binary, exporter in ((b, e) for b in binaries for e in exporters):
                    run = traced_round(args, binary, nginx, sink, exporter, nginx.dir)
                    run["untraced_rate"] = untraced
                    run["ratio"] = run["rate"] / untraced
                    runs.append(run)
                    benchlib.log(
                        f"round {r + 1}: {binary} {exporter} {run['rate']:.0f} req/s, ratio "
                        f"{run['ratio']:.3f}, {run['cpu_us_per_request']:.2f} us CPU/req, "
                        f"{run['bpf_ns_per_request']:.0f} ns BPF/req"
                    )
    finally:
        sink.stop()
        nginx.stop()

    if args.json:
        for run in runs:
            print(json.dumps(run))
    print(f"weft {args.weft} (commit {benchlib.git_commit()}), wrk -t1 -c{args.connections} "
          f"-d{args.seconds}s, {args.rounds} rounds")
    print("| weft | exporter | untraced req/s | traced req/s | ratio | weft CPU µs/req | BPF ns/req "
          "| spans exported / expected | dropped | ring losses |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(
            f"| {run['weft']} | {run['exporter']} | {run['untraced_rate']:.0f} | {run['rate']:.0f} | "
            f"{run['ratio']:.3f} | {run['cpu_us_per_request']:.2f} | "
            f"{run['bpf_ns_per_request']:.0f} | {run['spans_exported']} / "
            f"{run['spans_expected']} | {run['spans_dropped']} | {run['ringbuf_full']} |"
        )
    for binary, exporter in ((b, e) for b in binaries for e in exporters):
        mine = [r for r in runs if r["exporter"] == exporter and r["weft"] == binary]
        print(
            f"median {binary} {exporter}: ratio {statistics.median(r['ratio'] for r in mine):.3f}, "
            f"{statistics.median(r['cpu_us_per_request'] for r in mine):.2f} us CPU/req, "
            f"{statistics.median(r['bpf_ns_per_request'] for r in mine):.0f} ns BPF/req "
            "(goals: ratio >= 0.97, first milestone 0.90; <= 1.5 us; <= 400 ns)"
        )


if __name__ == "__main__":
    main()
