#!/usr/bin/python3
"""What weft's TLS uprobes cost the process whose TLS calls they hook (issue 12: "uprobes are not
free: measure them per call"), in one run.

    sudo scripts/bench/tls_call_cost.py [--weft build/weft] [--requests 100000] [--rounds 3]

scripts/bench/tls_call_loop.c (compiled here against the system's libssl) makes HTTP/1.1
requests over one TLS connection on loopback, client and server threads in one process: per
request the client's SSL_write and SSL_read, the server's SSL_read and SSL_write. Rounds
alternate three runs of it: untraced; under `weft run --no-tls` (socket hooks only: the
ciphertext is seen, no uprobe is placed); under `weft run` (TLS uprobes on libssl and
libcrypto). The process's own CPU time per request, the difference the uprobes make, the BPF
run time of the TLS programs per request (kernel.bpf_stats_enabled) and their runs per request
give, per uprobe hit, what the trap into the kernel and back costs on top of the program.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The socket hooks run in both traced runs; what the uprobes add is everything else.
SOCKET_PROGRAMS = ("data__send", "data__recv", "conn__state", "conn__accept")


def build(workdir):
    exe = os.path.join(workdir, "tls_call_loop")
    subprocess.run(["gcc", "-O2", "-o", exe, os.path.join(HERE, "tls_call_loop.c"), "-lssl", "-lcrypto",
                    "-lpthread"], check=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-keyout", os.path.join(workdir, "key.pem"), "-out",
                    os.path.join(workdir, "cert.pem")], check=True, capture_output=True)
    return exe


def loop(exe, workdir, requests):
    out = subprocess.run([exe, os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem"),
                          str(requests)], capture_output=True, text=True, check=True).stdout
    m = re.search(r"requests (\d+) cpu_ns (\d+) wall_ns (\d+)", out)
    return int(m.group(2)) / requests, int(m.group(3)) / requests


def traced(args, exe, workdir, extra):
    weft = benchlib.Weft(args.weft, ["--exporter", "otlp-file", "--output", "/dev/null"] + extra)
    try:
        _, bpf0 = weft.snapshot()
        cpu, wall = loop(exe, workdir, args.requests)
        _, bpf1 = weft.snapshot()
    finally:
        weft.stop()
    uprobes = {name: v for name, v in benchlib.bpf_delta(bpf0, bpf1).items() if name not in SOCKET_PROGRAMS}
    return cpu, wall, uprobes


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weft", default="build/weft")
    p.add_argument("--requests", type=int, default=100000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    benchlib.require_root()
    rows = []
    with tempfile.TemporaryDirectory() as workdir, benchlib.BpfStats():
        exe = build(workdir)
        loop(exe, workdir, 1000)  # warm the page cache and the library
        for r in range(args.rounds):
            untraced_cpu, untraced_wall = loop(exe, workdir, args.requests)
            socket_cpu, socket_wall, _ = traced(args, exe, workdir, ["--no-tls"])
            tls_cpu, tls_wall, uprobes = traced(args, exe, workdir, [])
            runs = sum(cnt for _, cnt in uprobes.values()) / args.requests
            bpf_ns = sum(ns for ns, _ in uprobes.values()) / args.requests
            added = tls_cpu - socket_cpu
            row = {
                "untraced_cpu_ns": untraced_cpu, "socket_hooks_cpu_ns": socket_cpu, "tls_cpu_ns": tls_cpu,
                "uprobe_added_ns": added, "uprobe_runs": runs, "uprobe_bpf_ns": bpf_ns,
                "per_hit_ns": added / runs if runs else 0,
                "trap_ns": (added - bpf_ns) / runs if runs else 0,
                "wall_ratio": tls_wall / untraced_wall,
            }
            rows.append(row)
            benchlib.log(f"round {r + 1}: CPU per request untraced {untraced_cpu:.0f} ns, socket hooks "
                         f"{socket_cpu:.0f}, TLS uprobes too {tls_cpu:.0f}; uprobes add {added:.0f} ns over "
                         f"{runs:.2f} hits ({bpf_ns:.0f} ns of it BPF programs): {row['per_hit_ns']:.0f} ns per "
                         f"hit, {row['trap_ns']:.0f} ns of it the trap")
            if r == 0:
                for name, (ns, cnt) in sorted(uprobes.items()):
                    benchlib.log(f"    {name}: {cnt / args.requests:.2f} runs/request, {ns / cnt:.0f} ns/run")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"weft {args.weft} (commit {benchlib.git_commit()}), {args.requests} requests x {args.rounds} rounds, "
          "one TLS connection, client and server in one process (4 TLS calls per request)")
    print("| CPU per request untraced | socket hooks only | with TLS uprobes | added by the uprobes | "
          "uprobe hits per request | of which BPF programs | per hit | trap per hit |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {med['untraced_cpu_ns']:.0f} ns | {med['socket_hooks_cpu_ns']:.0f} ns | {med['tls_cpu_ns']:.0f} ns | "
          f"{med['uprobe_added_ns']:.0f} ns | {med['uprobe_runs']:.2f} | {med['uprobe_bpf_ns']:.0f} ns | "
          f"{med['per_hit_ns']:.0f} ns | {med['trap_ns']:.0f} ns |")


if __name__ == "__main__":
    main()
