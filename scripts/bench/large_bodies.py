#!/usr/bin/python3
"""What weft costs per megabyte of large HTTP bodies (skip verdicts, issue 11 item 2), in one run.

    sudo scripts/bench/large_bodies.py [--weft build/weft[,OLD/weft...]] [--rounds 3]
        [--clients 8] [--downloads 2] [--size-mib 4] [--rate 8m]

A local nginx (one worker) serves a --size-mib file at --rate per response (nginx's limit_rate,
so a download lasts long enough for weft to parse its head and act on it, as a download over a
real network does); --clients curl processes each fetch it --downloads times over one kept-alive
connection, all at once. Rounds alternate the binaries (--weft NEW,OLD), each traced by
`weft run --exporter otlp-file --output FILE`. For every run, in the same window:
  cpu ms/MiB     weft's CPU time (all threads, first request to exit) per MiB downloaded
  bpf us/MiB     run time of weft's BPF programs (kernel.bpf_stats_enabled) per MiB
  records/MiB    runs of the data programs (data__send, data__recv) per MiB
  uncopied       body bytes the kernel reported without copying (weft's summary), of both ends
Every download's status and size are checked: a run with a failed download is not measured.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def downloads(url, clients, count, size):
    """Runs `clients` curls at once, each fetching `url` `count` times on one connection."""
    procs = [
        subprocess.Popen(
            ["curl", "-s", "-w", "%{http_code} %{size_download}\\n"]
            + sum((["-o", "/dev/null", url] for _ in range(count)), []),
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(clients)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        got = out.split("\n")[:-1]
        if p.returncode != 0 or got != [f"200 {size}"] * count:
            raise SystemExit(f"a download failed ({p.returncode}, {got}); not measuring")
    return clients * count * size


def traced_round(binary, nginx, args, workdir):
    out = os.path.join(workdir, "spans.jsonl")
    weft = benchlib.Weft(binary, ["--exporter", "otlp-file", "--output", out])
    try:
        cpu0, bpf0 = weft.snapshot()
        moved = downloads(nginx.url, args.clients, args.downloads, len(nginx.page))
        _, bpf1 = weft.snapshot()
    finally:
        _, text, cpu_total = weft.stop()
    bpf = benchlib.bpf_delta(bpf0, bpf1)
    mib = moved / (1 << 20)
    data_runs = sum(n for name, (_, n) in bpf.items() if name.startswith("data__"))
    m = re.search(r"(\d+) body bytes left uncopied", text)
    return {
        "weft": binary,
        "mib": mib,
        "cpu_ms_per_mib": (cpu_total - cpu0) / 1e6 / mib,
        "bpf_us_per_mib": sum(ns for ns, _ in bpf.values()) / 1e3 / mib,
        "records_per_mib": data_runs / mib,
        "uncopied_mib": int(m.group(1)) / (1 << 20) if m else 0.0,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weft", default="build/weft")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--downloads", type=int, default=2)
    p.add_argument("--size-mib", type=int, default=4)
    p.add_argument("--rate", default="8m")
    args = p.parse_args()
    benchlib.require_root()
    binaries = args.weft.split(",")
    nginx = benchlib.Nginx(page=os.urandom(args.size_mib << 20), limit_rate=args.rate)
    runs = []
    try:
        with benchlib.BpfStats():
            for r in range(args.rounds):
                for binary in binaries:
                    run = traced_round(binary, nginx, args, nginx.dir)
                    runs.append(run)
                    benchlib.log(
                        f"round {r + 1}: {binary} {run['cpu_ms_per_mib']:.3f} ms CPU/MiB, "
                        f"{run['bpf_us_per_mib']:.0f} us BPF/MiB, uncopied {run['uncopied_mib']:.1f} "
                        f"of {2 * run['mib']:.0f} MiB (both ends)"
                    )
    finally:
        nginx.stop()
    print(f"weft {args.weft} (commit {benchlib.git_commit()}), {args.clients} clients x "
          f"{args.downloads} downloads of {args.size_mib} MiB at {args.rate}/s, {args.rounds} rounds")
    print("| weft | MiB downloaded | weft CPU ms/MiB | BPF µs/MiB | data records/MiB | uncopied MiB (both ends) |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        print(f"| {run['weft']} | {run['mib']:.0f} | {run['cpu_ms_per_mib']:.3f} | "
              f"{run['bpf_us_per_mib']:.0f} | {run['records_per_mib']:.0f} | {run['uncopied_mib']:.1f} |")
    for binary in binaries:
        mine = [r for r in runs if r["weft"] == binary]
        print(f"median {binary}: {statistics.median(r['cpu_ms_per_mib'] for r in mine):.3f} ms CPU/MiB, "
              f"{statistics.median(r['bpf_us_per_mib'] for r in mine):.0f} us BPF/MiB")


if __name__ == "__main__":
    main()
