#!/usr/bin/env python3
"""Records the event streams that tests/unit/test_inference_replay.cpp replays (issue 9: unit
tests for each inference rule, with recorded event streams).

Each fixture is a `weft record` file made while real services from tests/e2e/inference/ ran
(started with tests/e2e/suite_inference.py's own starters), cut down to the connections of the
scenario's ports (the machine's other TCP traffic is dropped, record by record), and written to
tests/data/inference/NAME.weftrec. Truth is carried in the URL paths, as in the e2e suite.

    node_timer       node_timer.js (setInterval calling the backend's /timer/{k} every 100 ms)
                     serving /slow/{n} (300-500 ms, then a call to /down/{n}): ten requests
                     alone, back to back from the moment it listens (so every timer call of
                     that phase lands inside a lone request, and the phase outlasts the
                     stitcher's 2 s wait), then ten, five at a time
    nginx_tls_mix    one nginx worker proxying an HTTPS and a plain listener to backend.py:
                     while a slow plain request (/plain/slow/{i}, 0.5 s at the backend) is in
                     flight, three HTTPS requests (/tls/fast/{..}) pass through; four rounds
    go_chain         Go front (/front/{n} calls the back's /down/{n}) and back, 100 requests
                     from five keep-alive clients at once
    python_threaded  threaded_service.py --keepalive (thread per request; /req/{n} calls
                     /hop/req/{n}) with a background thread calling /bg/{k} every 0.2 s:
                     40 requests from four clients at once, then 10 one at a time

Run as root from anywhere, after building weft (scripts/build.sh); needs node, nginx, openssl,
curl and Go (scripts/setup.sh installs them):

    sudo /usr/bin/python3 scripts/record_inference_fixtures.py [--weft build/weft]
        [--out tests/data/inference] [--capture-bytes 512] [NAME ...]

Without NAMEs every fixture is recorded again. Each takes a few seconds (go_chain builds the Go
service first: about a minute the first time). The weft binary must be one that records each
process's runtime (commit 134155e or later): the Node, nginx and Go fixtures are useless
without it, and the script refuses to keep a recording whose service processes carry none.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
E2E = os.path.join(ROOT, "tests", "e2e")
sys.path.insert(0, E2E)

import harness  # noqa: E402
from harness import (SETTLE_S, Context, TestFailure, check, eq, free_port, start_weft,  # noqa: E402
                     wait_listening)
import suite_inference as si  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Recording files (src/capture/record_file.h, bpf/weft_events.h)

FILE_HEADER = 32  # magic[8], u32 file version, u32 event ABI, i64 wall offset, u64 reserved
EVENT_RECORD, PROCESS_RECORD, LOSS_RECORD = 1, 2, 3
# struct weft_event_header: ts u64, cookie u64, pid u32, tid u32, fd s32, kind u16, role u8,
# pad u8, comm[16], then struct weft_tuple: saddr[16], daddr[16], sport u16, dport u16, ...
PID_OFFSET = 16
SPORT_OFFSET = 80


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    check(data[:8] == b"WEFTREC\0", f"{path} is not a weft recording")
    records, at = [], FILE_HEADER
    while at + 8 <= len(data):
        kind, length = struct.unpack_from("<II", data, at)
        check(at + 8 + length <= len(data), f"{path} ends inside a record")
        records.append((kind, data[at + 8:at + 8 + length]))
        at += 8 + length
    return data[:FILE_HEADER], records


def process_fields(body):
    """(pid, [exe, service name, command line, runtime]) of a process record."""
    pid = struct.unpack_from("<I", body, 0)[0]
    fields = body[4:].split(b"\0")
    fields += [b""] * (4 - len(fields))
    return pid, [x.decode(errors="replace") for x in fields[:4]]


# struct weft_data_event: the header (88 bytes), stream_pos u64, tcp_seq, syscall_len,
# chunk_offset, captured (u32 each), syscall u16, direction u8, flags u8, pad u32, data[]
KIND_OFFSET = 28
DATA_EVENT = 1
DATA_OFFSET = 120


def data_events(records, pid):
    """(ts, cookie, payload prefix) of the data events of `pid`, in order."""
    for kind, body in records:
        if kind != EVENT_RECORD or len(body) < DATA_OFFSET:
            continue
        if struct.unpack_from("<H", body, KIND_OFFSET)[0] != DATA_EVENT:
            continue
        if struct.unpack_from("<I", body, PID_OFFSET)[0] != pid:
            continue
        ts, cookie = struct.unpack_from("<QQ", body, 0)
        yield ts, cookie, body[DATA_OFFSET:DATA_OFFSET + 16]


def node_timer_usable(path, processes):
    """The Node fixture must show what only the runtime tells apart: timer calls landing inside
    lone requests, judged before the thread shows anything else. The first timer call that falls
    between two requests (the client takes a few ms to send the next one) marks the thread as
    calling outside requests, and once requests overlap the process is concurrent: a request
    whose calls are judged before either (its span ends before both) has timer calls only the
    runtime keeps from being linked to it. Returns (usable, how many such timer calls)."""
    pid = next(p for p, f in processes.items() if f[1] == "inf-node")
    _, records = read_records(path)
    windows, open_at, timer_calls = [], {}, []
    for ts, cookie, head in data_events(records, pid):
        if head.startswith(b"GET /slow/"):
            open_at[cookie] = ts
        elif head.startswith(b"HTTP/") and cookie in open_at:
            windows.append((open_at.pop(cookie), ts))
        elif head.startswith(b"GET /timer/"):
            timer_calls.append(ts)
    windows.sort()
    concurrent_from = next((b[0] for a, b in zip(windows, windows[1:]) if b[0] < a[1]), None)
    if concurrent_from is None:
        return False, 0
    outside = [t for t in timer_calls if not any(a <= t <= b for a, b in windows)]
    evidence_from = min([concurrent_from] + outside)
    early = [t for t in timer_calls if any(a <= t <= b < evidence_from for a, b in windows)]
    return len(early) >= 8, len(early)


def cut_to_ports(src, dst, ports):
    """Writes to dst the records of src that belong to connections with a local or remote port
    in `ports` (both ends of loopback traffic), the process records of their pids and the loss
    counters. Returns (events kept, events dropped, {pid: fields})."""
    header, records = read_records(src)
    keep_pids, kept, dropped = set(), [], 0
    for kind, body in records:
        if kind == EVENT_RECORD:
            sport, dport = struct.unpack_from("<HH", body, SPORT_OFFSET)
            if sport in ports or dport in ports:
                keep_pids.add(struct.unpack_from("<I", body, PID_OFFSET)[0])
    processes = {}
    for kind, body in records:
        if kind == EVENT_RECORD:
            sport, dport = struct.unpack_from("<HH", body, SPORT_OFFSET)
            if sport in ports or dport in ports:
                kept.append((kind, body))
            else:
                dropped += 1
        elif kind == PROCESS_RECORD:
            pid, fields = process_fields(body)
            if pid in keep_pids:
                processes[pid] = fields
                kept.append((kind, body))
        elif kind == LOSS_RECORD:
            kept.append((kind, body))
    with open(dst, "wb") as f:
        f.write(header)
        for kind, body in kept:
            f.write(struct.pack("<II", kind, len(body)))
            f.write(body)
    events = sum(1 for kind, _ in kept if kind == EVENT_RECORD)
    return events, dropped, processes


# ---------------------------------------------------------------------------------------------
# Scenarios: each returns (ports to keep, {service name or exe suffix: expected runtime})


def start_record(ctx, args):
    raw = ctx.path("raw.weftrec")
    weft = start_weft(ctx, ["record", "-o", raw, "--capture-bytes", str(args.capture_bytes)], label="record")
    return weft, raw


def node_timer(ctx, args):
    check(shutil.which("node"), "node is not installed")
    backend, _ = si.start_backend(ctx)
    # weft first: node's agent keeps backend connections alive, and a connection opened before
    # weft started gets no spans. The timer's first call comes 100 ms after node starts; the
    # first request is sent as soon as node listens, so every timer call of the lone phase
    # lands inside a request: only the runtime tells those calls from the handler's.
    weft, raw = start_record(ctx, args)
    port = free_port()
    proc = ctx.spawn(["node", os.path.join(si.INFERENCE_DIR, "node_timer.js"), str(port), f"127.0.0.1:{backend}",
                      "100"], env=si.service_env("inf-node"), stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    si.get_all(port, [f"/slow/{n}" for n in range(10)], concurrency=1)
    si.get_all(port, [f"/slow/{n}" for n in range(10, 20)], concurrency=5)
    return weft, raw, {port, backend}, {"inf-node": "libuv"}


def nginx_tls_mix(ctx, args):
    backend, backend_proc = si.start_backend(ctx, announce=True)
    tls_port, plain_port = free_port(), free_port()
    workers = si.start_nginx_proxy(ctx, backend, tls_port, plain_port, upstream_keepalive=False)
    eq(len(workers), 1, "nginx workers")
    weft, raw = start_record(ctx, args)
    si.drive_tls_mix(ctx, backend_proc, tls_port, plain_port, rounds=4, per_round=3)
    return weft, raw, {tls_port, plain_port, backend}, {"/nginx": "nginx"}


def go_chain(ctx, args):
    binary = si.build_go(ctx)
    back, front = free_port(), free_port()
    proc = ctx.spawn([binary, "back", str(back)], env=si.service_env("inf-go-back"), stdout=subprocess.DEVNULL)
    wait_listening(back, proc=proc)
    proc = ctx.spawn([binary, "front", str(front), f"127.0.0.1:{back}"], env=si.service_env("inf-go-front"),
                     stdout=subprocess.DEVNULL)
    wait_listening(front, proc=proc)
    weft, raw = start_record(ctx, args)
    si.get_all(front, [f"/front/{n}" for n in range(100)], concurrency=5)
    return weft, raw, {front, back}, {"inf-go-front": "go", "inf-go-back": "go"}


def python_threaded(ctx, args):
    backend, _ = si.start_backend(ctx)
    port = free_port()
    weft, raw = start_record(ctx, args)
    proc = ctx.spawn([sys.executable, os.path.join(si.INFERENCE_DIR, "threaded_service.py"), str(port),
                      f"127.0.0.1:{backend}", "0.2", "--keepalive"],
                     env=si.service_env("inf-threaded"), stdout=subprocess.DEVNULL)
    wait_listening(port, proc=proc)
    si.get_all(port, [f"/req/{n}" for n in range(40)], concurrency=4)
    si.get_all(port, [f"/req/{n}" for n in range(40, 50)], concurrency=1)
    return weft, raw, {port, backend}, {"inf-threaded": ""}


FIXTURES = {"node_timer": node_timer, "nginx_tls_mix": nginx_tls_mix, "go_chain": go_chain,
            "python_threaded": python_threaded}


def record(name, args, attempts=5):
    """Records `name`, up to `attempts` times for a fixture whose timing must come out right."""
    for attempt in range(1, attempts + 1):
        if record_once(name, args):
            return
        print(f"{name}: attempt {attempt} not usable, recording again", flush=True)
    raise TestFailure(f"{name}: no usable recording in {attempts} attempts")


def record_once(name, args):
    ctx = Context(f"fixture-{name}")
    try:
        weft, raw, ports, runtimes = FIXTURES[name](ctx, args)
        time.sleep(SETTLE_S)
        weft.stop(timeout=15)
        weft.expect_clean_exit()
        out = os.path.join(args.out, f"{name}.weftrec")
        tmp = out + ".tmp"
        events, dropped, processes = cut_to_ports(raw, tmp, ports)
        for who, runtime in runtimes.items():
            matching = [f for f in processes.values() if f[1] == who or f[0].endswith(who)]
            check(matching, f"{name}: no process record for {who} (processes: {processes})")
            bad = [f for f in matching if f[3] != runtime]
            if bad:
                raise TestFailure(f"{name}: {who} recorded with runtime {bad[0][3]!r}, expected {runtime!r}: "
                                  f"is {harness.WEFT} older than the runtime in recordings?")
        if name == "node_timer":
            usable, inside = node_timer_usable(tmp, processes)
            print(f"{name}: {inside} timer calls inside lone requests that end before any other "
                  f"evidence (at least 8 needed)", flush=True)
            if not usable:
                os.unlink(tmp)
                return False
        os.replace(tmp, out)
        print(f"{name}: {out}: {os.path.getsize(out)} bytes, {events} events kept, {dropped} of other "
              f"connections dropped; processes: " +
              ", ".join(f"{pid} {f[1] or os.path.basename(f[0])} runtime={f[3] or '-'}"
                        for pid, f in sorted(processes.items())), flush=True)
        return True
    finally:
        for err in ctx.close():
            print(f"{name}: cleanup: {err}", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weft", default=os.path.join(ROOT, "build", "weft"))
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "inference"))
    parser.add_argument("--capture-bytes", type=int, default=512)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(FIXTURES))
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in FIXTURES]
    if unknown:
        parser.error(f"unknown fixture {unknown[0]!r} (known: {', '.join(FIXTURES)})")
    check(os.geteuid() == 0, "weft record needs root")
    harness.WEFT = os.path.abspath(args.weft)
    os.makedirs(args.out, exist_ok=True)
    failed = 0
    for name in args.names or list(FIXTURES):
        try:
            record(name, args)
        except TestFailure as e:
            failed += 1
            print(f"{name}: FAILED: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
