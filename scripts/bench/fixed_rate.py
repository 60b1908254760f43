#!/usr/bin/python3
"""Latency weft adds at a fixed request rate, and whether it loses anything at that rate
(issue 11's latency and no-loss goals), in one run.

    sudo scripts/bench/fixed_rate.py [--weft build/weft] [--rate 15000] [--connections 20]
        [--seconds 10] [--rounds 3] [--exporter otlp-file] [-- extra weft run flags]

tests/bench/http_load.cpp (weft_http_load, built next to weft) sends --rate requests per second
in total over --connections keep-alive connections to a local nginx (one worker, small page).
It is open-loop: each request has a scheduled time and its latency counts from then, so time
weft takes from the server shows as latency instead of as a lower rate. Rounds alternate
untraced and traced (`weft run` exporting to a local OTLP sink or file). Per traced round:
p50/p99 added over the untraced round next to it, and what weft lost: records lost to a full
ring buffer, spans dropped by the export queue, exported spans against the 2 per request
expected (nginx's server span and the client's).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def load(tool, port, rate, connections, seconds):
    out = subprocess.run(
        [tool, "127.0.0.1", str(port), "/index.html", str(rate), str(connections), str(seconds)],
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout)
    if result["not_2xx"] or result["errors"] or result["unanswered"]:
        raise SystemExit(f"the load did not complete cleanly; not measuring: {result}")
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weft", default="build/weft")
    p.add_argument("--load-tool", help="weft_http_load (default: next to --weft, in tests/)")
    p.add_argument("--rate", type=int, default=15000)
    p.add_argument("--connections", type=int, default=20)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--exporter", default="otlp-file")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("extra", nargs="*", help="extra `weft run` flags (after --)")
    args = p.parse_args()
    benchlib.require_root()
    tool = args.load_tool or os.path.join(os.path.dirname(args.weft), "tests", "weft_http_load")

    nginx = benchlib.Nginx()
    sink = benchlib.OtlpSink()
    rows = []
    try:
        for r in range(args.rounds):
            base = load(tool, nginx.port, args.rate, args.connections, args.seconds)
            weft = benchlib.Weft(
                args.weft, benchlib.exporter_args(args.exporter, nginx.dir, sink) + args.extra
            )
            try:
                traced = load(tool, nginx.port, args.rate, args.connections, args.seconds)
            finally:
                summary, text, _ = weft.stop()
            if args.verbose:
                benchlib.log(text)
            row = {
                "untraced": base,
                "traced": traced,
                "p50_added_us": traced["p50_us"] - base["p50_us"],
                "p99_added_us": traced["p99_us"] - base["p99_us"],
                "spans_expected": 2 * traced["answered"],
                **summary,
            }
            rows.append(row)
            benchlib.log(
                f"round {r + 1}: p50 {base['p50_us']} -> {traced['p50_us']} us, p99 "
                f"{base['p99_us']} -> {traced['p99_us']} us; spans {summary['spans_exported']}"
                f"/{row['spans_expected']}, dropped {summary['spans_dropped']}, ring losses "
                f"{summary['ringbuf_full']}"
            )
    finally:
        sink.stop()
        nginx.stop()

    print(f"weft {args.weft} (commit {benchlib.git_commit()}), {args.rate} req/s over "
          f"{args.connections} connections for {args.seconds} s, exporter {args.exporter}")
    print("| round | untraced p50 / p99 µs | traced p50 / p99 µs | added p50 / p99 µs "
          "| spans exported / expected | dropped | ring losses |")
    print("|---|---|---|---|---|---|---|")
    for i, row in enumerate(rows, 1):
        b, t = row["untraced"], row["traced"]
        print(
            f"| {i} | {b['p50_us']} / {b['p99_us']} | {t['p50_us']} / {t['p99_us']} | "
            f"{row['p50_added_us']} / {row['p99_added_us']} | {row['spans_exported']} / "
            f"{row['spans_expected']} | {row['spans_dropped']} | {row['ringbuf_full']} |"
        )
    print(
        f"median added: p50 {statistics.median(r['p50_added_us'] for r in rows)} us, p99 "
        f"{statistics.median(r['p99_added_us'] for r in rows)} us (goal: at most 50 us each); "
        f"losses: {sum(r['ringbuf_full'] or 0 for r in rows)} ring records, "
        f"{sum(r['spans_dropped'] or 0 for r in rows)} spans (goal: none)"
    )


if __name__ == "__main__":
    main()
