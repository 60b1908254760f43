#!/usr/bin/python3
"""BPF time of weft's kernel TCP hooks (docs/network.md) per request, when every request opens
its own connection (the case where per-connection hooks cost the most): one curl fetches a small
page N times with `Connection: close` from python3 http.server on loopback while `weft run`
traces; kernel.bpf_stats_enabled=1; run_time_ns/run_cnt of the weft process's own programs are
read from /proc/PID/fdinfo (another weft on the machine is not counted).

    sudo scripts/bench/tcp_hooks_cost.py [--requests N] [--rounds R] [--weft-args=FLAGS]
        [--keep-alive] WEFT...

--keep-alive: one connection for all requests (the server speaks HTTP/1.1), the case of hooks
that cost per request rather than per connection (--ack-wait).

Binaries are interleaved round by round. Prints, per round and program, ns per run and runs per
request, and all programs' ns per request."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def program_stats(pid):
    names = {p["id"]: p.get("name", "?")
             for p in json.loads(subprocess.check_output(["bpftool", "prog", "show", "--json"]))}
    out, seen = {}, set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            info = dict(l.split(":", 1) for l in open(f"/proc/{pid}/fdinfo/{fd}").read().splitlines() if ":" in l)
        except OSError:
            continue
        prog = int(info["prog_id"])
        if prog in seen:
            continue
        seen.add(prog)
        out[names.get(prog, "?")] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return out


def wait_capturing(proc):
    for raw in iter(proc.stderr.readline, b""):
        if b"capturing" in raw:
            return
    sys.exit(f"weft exited before capturing ({proc.wait()})")


def one_round(weft, url, requests, extra, keep_alive):
    proc = subprocess.Popen([weft, "run", "--exporter", "otlp-file", "--output", "/dev/null"] + extra,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_capturing(proc)
        before = program_stats(proc.pid)
        close = [] if keep_alive else ["-H", "Connection: close"]
        subprocess.run(["curl", "-s"] + close + [url] * requests, check=True, stdout=subprocess.DEVNULL)
        time.sleep(0.5)  # closes (TIME_WAIT is after TCP_CLOSE) and the last arrivals
        after = program_stats(proc.pid)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    return {name: (after[name][0] - before.get(name, (0, 0))[0], after[name][1] - before.get(name, (0, 0))[1])
            for name in after}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--weft-args", default="", help="more flags for weft run, e.g. --receive-queue-wait")
    parser.add_argument("--keep-alive", action="store_true", help="one connection for all requests")
    parser.add_argument("wefts", nargs="+")
    args = parser.parse_args()
    stats_before = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    subprocess.run(["sysctl", "-q", "-w", "kernel.bpf_stats_enabled=1"], check=True)
    www = tempfile.mkdtemp(prefix="weft-tcp-cost-")
    with open(os.path.join(www, "page.txt"), "w") as f:
        f.write("page\n")
    port = free_port()
    protocol = ["--protocol", "HTTP/1.1"] if args.keep_alive else []
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", www] + protocol, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        url = f"http://127.0.0.1:{port}/page.txt"
        for r in range(args.rounds):
            for weft in args.wefts:
                stats = one_round(weft, url, args.requests, args.weft_args.split(), args.keep_alive)
                total = sum(t for t, _ in stats.values())
                print(f"round {r + 1} {weft}: all programs {total / args.requests:.0f} ns per request")
                for name, (t, n) in sorted(stats.items()):
                    if n:
                        print(f"  {name:22s} {t / n:7.0f} ns/run {n / args.requests:6.2f} runs/request")
    finally:
        server.terminate()
        server.wait()
        # As it was: another measurement on the machine may rely on it.
        subprocess.run(["sysctl", "-q", "-w", f"kernel.bpf_stats_enabled={stats_before}"])
        shutil.rmtree(www, ignore_errors=True)


if __name__ == "__main__":
    main()
