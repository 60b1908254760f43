#!/usr/bin/python3
"""How long weft takes to stop on SIGINT (detaching every hook, TLS uprobes included).

    sudo scripts/bench/stop_time.py [--runs 3] BINARY [BINARY...]

Each run starts `BINARY events --port 1` (no output), waits for its "capturing" line and
0.3 s more (the proc stage's first scan hooks the TLS libraries processes map), sends SIGINT
and times the exit. Binaries alternate, so machine noise hits them alike.
"""

import argparse
import signal
import subprocess
import time


def stop_time(binary):
    proc = subprocess.Popen([binary, "events", "--port", "1"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    seen = b""
    deadline = time.time() + 30
    while b"capturing" not in seen:
        chunk = proc.stderr.read1(4096)
        if not chunk or time.time() > deadline:
            proc.kill()
            raise SystemExit(f"{binary} did not start: {seen.decode(errors='replace')}")
        seen += chunk
    time.sleep(0.3)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    if code != 0:
        raise SystemExit(f"{binary} exited with {code}")
    return time.monotonic() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("binaries", nargs="+")
    args = p.parse_args()
    times = {b: [] for b in args.binaries}
    for _ in range(args.runs):
        for b in args.binaries:
            times[b].append(stop_time(b))
    for b, ts in times.items():
        print(f"{b}: stopped in " + " / ".join(f"{t:.3f}" for t in ts) + " s")


if __name__ == "__main__":
    main()
