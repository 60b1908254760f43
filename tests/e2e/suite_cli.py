"""weft as a command: record and replay, losses under overload, signals, bad arguments."""
import os
import re
import select
import signal
import struct
import subprocess
import time

import harness
from harness import (TestFailure, Weft, case, check, check_contiguous, check_schema, eq, free_port,
                     is_summary_line, of_kind, one, parse_events, parse_summary, run, short, start_weft,
                     stream_payload)
from peers import HttpServer, curl, python_peer, read_line
from suite_traffic import make_site

# Fields that must be equal between a live run and the replay of a recording of the same
# traffic (timestamps and durations are measured by each weft separately; exe depends on
# whether the process was still alive when each weft looked it up).
COMPARED = ("kind", "cookie", "pid", "tid", "comm", "fd", "role", "family", "local", "remote", "direction",
            "syscall", "bytes", "chunk_offset", "stream_pos", "tcp_seq", "captured", "truncated", "gap_before",
            "data", "result", "error", "closed_by", "bytes_sent", "bytes_received")

RECORD_HEADER = 32  # magic[8], file_version u32, event_abi u32, wall_offset i64, reserved u64


def projection(e):
    return tuple((k, repr(e.get(k))) for k in COMPARED)


def record_layout(path):
    """Offsets of the records of a recording: [(start, type, body length)]. The layout is the
    one src/capture/record_file.cpp writes: a 32-byte header, then (type u32, length u32, body)."""
    with open(path, "rb") as f:
        raw = f.read()
    check(raw[:8] == b"WEFTREC\0", f"recording does not start with the weft magic: {raw[:8]!r}")
    out, pos = [], RECORD_HEADER
    while pos < len(raw):
        check(pos + 8 <= len(raw), f"recording ends inside a record header at {pos}")
        rtype, length = struct.unpack_from("<II", raw, pos)
        check(pos + 8 + length <= len(raw), f"recording ends inside a record at {pos}")
        out.append((pos, rtype, length))
        pos += 8 + length
    return raw, out


def replay(ctx, path, *extra, timeout=30):
    return run([harness.WEFT, "events", "--replay", path] + list(extra), timeout=timeout)


def lines_of(data):
    return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]


def make_recording(ctx):
    """Records (and shows live with --json, at the same time) two curl requests to
    http.server. Returns (recording path, live events, live summary, server, port)."""
    port = free_port()
    root, body = make_site(ctx, "r.txt", 2000)
    srv = HttpServer(ctx, root, port)
    rec_path = ctx.path("traffic.weft")
    recorder = start_weft(ctx, ["record", "-o", rec_path], label="record")
    live = start_weft(ctx, ["events", "--json", "--port", str(port)], label="live")
    for _ in range(2):
        _, res = curl(ctx, [f"http://127.0.0.1:{port}/r.txt"])
        eq(res.returncode, 0, "curl exit code")
        eq(res.stdout, body, "body")
    for w in (live, recorder):
        w.stop()
        w.expect_clean_exit()
    check(os.path.getsize(rec_path) > RECORD_HEADER, "the recording is empty")
    events = live.events()
    check_schema(events)
    return rec_path, events, live.summary(), srv, port, body


@case(timeout=90)
def record_and_replay(ctx):
    """`weft record` during traffic, then `weft events --replay --json`: the same events as a
    live `weft events --json` run captured at the same time (kinds, cookies, positions,
    payloads...), in time order, with the server's exe from the recording; text replay too."""
    rec_path, live_events, live_summary, srv, port, body = make_recording(ctx)
    eq(len(of_kind(live_events, "connect")), 2, "live connect events")
    res = replay(ctx, rec_path, "--json", "--port", str(port))
    eq(res.returncode, 0, f"replay exit code (stderr {res.stderr!r})")
    replayed = parse_events(res.stdout)
    check_schema(replayed)
    err_lines = lines_of(res.stderr)
    check(all(is_summary_line(line) for line in err_lines), f"replay stderr has more than the summary: {err_lines}")
    rs = parse_summary(err_lines)

    live_set = sorted(map(projection, live_events))
    replay_set = sorted(map(projection, replayed))
    if live_set != replay_set:
        only_live = [dict(p) for p in live_set if p not in replay_set][:3]
        only_replay = [dict(p) for p in replay_set if p not in live_set][:3]
        raise TestFailure(f"replayed events differ from the live ones ({len(replayed)} vs {len(live_events)}); "
                          f"only live: {only_live}; only replayed: {only_replay}")
    monos = [e["mono_ns"] for e in replayed]
    eq(monos, sorted(monos), "replayed events in time order")
    offsets = {e["ts_ns"] - e["mono_ns"] for e in replayed}
    eq(len(offsets), 1, "one wall-clock offset for all replayed events")
    for e in replayed:
        if e["pid"] == srv.pid:
            eq(e["exe"], srv.exe, "server exe in the replay")
    for k in ("data", "connect", "accept", "close", "existing", "bytes_moved", "bytes_captured"):
        eq(rs[k], live_summary[k], f"replay summary {k} vs live")
    eq(rs["ringbuf_full"], 0, "replayed kernel losses")

    # The replay alone tells the traffic: each connection's request and response bytes.
    connects = of_kind(replayed, "connect")
    eq(len(connects), 2, "replayed connect events")
    for conn in connects:
        c = conn["cookie"]
        accept = one([a for a in of_kind(replayed, "accept") if a["remote"] == conn["local"]],
                     "replayed accept for the connection")
        request = stream_payload(replayed, c, "send")
        check(request.startswith(b"GET /r.txt HTTP/1.1\r\n"), f"replayed request {request[:60]!r}")
        eq(stream_payload(replayed, accept["cookie"], "recv"), request, "replayed request at the server")
        response = stream_payload(replayed, c, "recv")
        check(response.startswith(b"HTTP/1.0 200 OK\r\n") and response.endswith(body),
              f"replayed response {response[:60]!r}...")
        eq(stream_payload(replayed, accept["cookie"], "send"), response, "replayed response at the server")
        for cookie in (c, accept["cookie"]):
            for direction in ("send", "recv"):
                check_contiguous(replayed, cookie, direction, what="replayed")

    text = replay(ctx, rec_path, "--port", str(port))
    eq(text.returncode, 0, "text replay exit code")
    text_lines = lines_of(text.stdout)
    eq(len(text_lines), len(replayed), "text replay lines vs JSON events")
    check(any(" connect " in line and "curl[" in line for line in text_lines),
          f"text replay shows no curl connect: {text_lines[:3]}")


def expect_replay_error(ctx, path, what, words):
    """Replaying `path` fails: exit code 1, and besides weft's summary lines exactly one line
    on stderr, naming the file and saying what is wrong (one of `words`)."""
    res = replay(ctx, path, "--json")
    err = lines_of(res.stderr)
    errors = [line for line in err if not is_summary_line(line)]
    check(res.returncode != 0, f"{what}: replay exited 0 (stderr {err}, {len(lines_of(res.stdout))} events)")
    check(res.returncode > 0, f"{what}: replay died of signal {-res.returncode}")
    eq(res.returncode, 1, f"{what}: replay exit code (docs/events.md: exit code 1)")
    check(len(errors) == 1, f"{what}: expected one error line on stderr, got {err}")
    line = errors[0]
    check(line.startswith("weft: "), f"{what}: error line {line!r} does not start with 'weft: '")
    check(os.path.basename(path) in line, f"{what}: error line {line!r} does not name the file")
    check(any(w in line.lower() for w in words), f"{what}: error line {line!r} does not say {' or '.join(words)}")
    for event_line in lines_of(res.stdout):  # whatever came before the damage is still well formed
        parse_events(event_line.encode())


@case(timeout=90)
def replay_bad_files(ctx):
    """Replaying a file that is not a good recording gives exit code 1 and one clear line:
    random bytes, an empty file, a missing file, another version, a header cut short, a cut
    inside a record's header and inside a record's body."""
    rec_path = make_recording(ctx)[0]
    raw, records = record_layout(rec_path)
    check(len(records) >= 4, f"only {len(records)} records in the recording")

    def write(name, data):
        path = ctx.path(name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    expect_replay_error(ctx, write("random.bin", os.urandom(4096)), "random bytes",
                        ["not a weft recording", "magic"])
    expect_replay_error(ctx, write("empty.weft", b""), "empty file", ["not a weft recording", "empty", "truncated"])
    expect_replay_error(ctx, ctx.path("missing.weft"), "missing file", ["no such file", "cannot open"])
    newer = bytearray(raw)
    struct.pack_into("<I", newer, 8, struct.unpack_from("<I", raw, 8)[0] + 1)
    expect_replay_error(ctx, write("newer.weft", bytes(newer)), "other file version", ["version"])
    expect_replay_error(ctx, write("header-cut.weft", raw[:20]), "header cut at 20 bytes", ["truncated"])
    start, _, length = records[len(records) // 2]
    expect_replay_error(ctx, write("cut-record-header.weft", raw[:start + 4]), "cut inside a record header",
                        ["truncated", "corrupt"])
    body_records = [r for r in records[len(records) // 2:] if r[2] >= 2]
    check(body_records, "no record with a body to cut")
    start, _, length = body_records[0]
    expect_replay_error(ctx, write("cut-record-body.weft", raw[:start + 8 + length // 2]), "cut inside a record body",
                        ["truncated", "corrupt"])
    corrupt = bytearray(raw)
    struct.pack_into("<I", corrupt, records[1][0] + 4, 0x7FFFFFF0)  # absurd record length
    expect_replay_error(ctx, write("bad-length.weft", bytes(corrupt)), "absurd record length",
                        ["truncated", "corrupt"])


@case(timeout=90)
def replay_truncated_at_record_boundary(ctx):
    """A recording cut at a record boundary (what a killed `weft record` or a full disk leaves)
    is still a truncated file: replay must not pass it off as a complete recording."""
    rec_path = make_recording(ctx)[0]
    raw, records = record_layout(rec_path)
    start, _, _ = records[len(records) // 2]
    path = ctx.path("cut-at-boundary.weft")
    with open(path, "wb") as f:
        f.write(raw[:start])
    expect_replay_error(ctx, path, f"recording cut at the record boundary at byte {start} of {len(raw)}",
                        ["truncated", "incomplete", "corrupt"])


# Many connections pushing data as fast as they can, for a bounded number of bytes.
BLAST = r'''
import socket, sys, threading
port, conns, total = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port)); ls.listen(conns)
def serve(c):
    buf = b"x" * 65536
    sent = 0
    while sent < total:
        sent += c.send(buf)
    c.close()
def drain(s):
    while s.recv(1 << 20):
        pass
    s.close()
threads = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    c, _ = ls.accept()
    threads += [threading.Thread(target=serve, args=(c,)), threading.Thread(target=drain, args=(s,))]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
print("done", flush=True)
'''


@case(timeout=90)
def ringbuf_overflow(ctx):
    """--ringbuf-bytes 4096 under heavy traffic: records are dropped and counted
    (ringbuf_full > 0), weft keeps going, prints well-formed events whose gap_before accounts
    for the bytes it lost, and exits 0 on SIGINT."""
    port = free_port()
    weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--ringbuf-bytes", "4096",
                            "--chunk-bytes", "256", "--capture-bytes", "1024"])
    blast = python_peer(ctx, BLAST, port, 4, 16 << 20, label="blast")
    eq(read_line(blast, timeout=60, what="'done'"), "done", "blast finished")
    time.sleep(0.5)  # weft is still working through the overload; it must survive it
    check(weft.proc.poll() is None, f"weft died during the overload: {weft.proc.returncode}, {weft.stderr_lines}")
    weft.stop(timeout=5)
    weft.expect_clean_exit()
    summary = weft.summary()
    check(summary["ringbuf_full"] > 0, f"no ringbuf_full losses reported: {summary}")
    events = weft.events()
    check_schema(events)
    check(of_kind(events, "data"), "no data event got through at all")
    # The printed gap_before values follow from the positions, in output order.
    expected, gap_events, gap_bytes = {}, 0, 0
    for e in events:
        if e["kind"] != "data" or e["stream_pos"] is None:
            continue
        if e["chunk_offset"] != 0:
            eq(e["gap_before"], 0, f"gap_before of a later chunk: {short(e)}")
            continue
        key = (e["cookie"], e["direction"])
        start, end = e["stream_pos"], e["stream_pos"] + e["bytes"]
        want = max(0, start - expected.get(key, 0))
        eq(e["gap_before"], want, f"gap_before of {short(e)}")
        if want:
            gap_events += 1
            gap_bytes += want
        expected[key] = max(expected.get(key, 0), end)
    check(gap_events > 0, "records were dropped but no event reports a gap before it")
    check(summary["gaps"] >= gap_events and summary["gap_bytes"] >= gap_bytes,
          f"summary gaps {summary['gaps']} ({summary['gap_bytes']} bytes) below the printed "
          f"{gap_events} ({gap_bytes} bytes)")


def check_signal_stop(ctx, command, sig, pause):
    """Starts `weft command`, waits for 'capturing' and `pause` seconds, sends `sig`: weft
    must exit 0 within a second, with its summary (a recording must replay)."""
    if command == "events":
        args = ["events", "--json", "--port", str(free_port())]
    else:
        args = ["record", "-o", ctx.path(f"sig-{sig}-{time.monotonic_ns()}.weft")]
    weft = start_weft(ctx, args, label=f"{command}-{int(sig)}-{time.monotonic_ns()}")
    if pause:
        time.sleep(pause)
    weft.stop(sig, timeout=5)
    name = signal.Signals(sig).name
    check(weft.returncode == 0,
          f"weft {command} exited with {weft.returncode} on {name} sent {pause * 1000:.0f} ms after it printed "
          f"'capturing' (negative: killed by the signal); stderr: {weft.stderr_lines}")
    check(weft.stop_seconds <= 1.0, f"weft {command} took {weft.stop_seconds:.2f}s to stop on {name}")
    weft.summary()  # the summary lines are there
    if command == "record":
        res = replay(ctx, args[2], "--json")
        eq(res.returncode, 0, f"replaying the recording stopped by {name} ({res.stderr!r})")


@case(timeout=60)
def signals_stop_cleanly(ctx):
    """SIGINT and SIGTERM stop `weft events` and `weft record` with exit 0 within a second (a
    recording stopped that way replays); --duration stops on time."""
    for command in ("events", "record"):
        for sig in (signal.SIGINT, signal.SIGTERM):
            check_signal_stop(ctx, command, sig, pause=0.2)
    weft = Weft(ctx, ["events", "--json", "--duration", "1", "--port", str(free_port())], label="duration")
    t0 = time.monotonic()
    weft.wait_capturing()
    weft.wait_exit(timeout=10)
    elapsed = time.monotonic() - t0
    weft.expect_clean_exit()
    check(elapsed < 3.0, f"--duration 1 took {elapsed:.2f}s")
    weft.summary()


def signal_at_once(ctx, argv, sig):
    """Starts weft, reads its stderr in this thread and sends `sig` the moment 'capturing'
    arrives. Returns (exit code, seconds to exit, stderr text)."""
    proc = ctx.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stop_signal=signal.SIGKILL)
    fd = proc.stderr.fileno()
    buf = b""
    deadline = time.monotonic() + harness.START_TIMEOUT_S
    while b"capturing" not in buf:
        left = deadline - time.monotonic()
        check(left > 0, f"{' '.join(argv)} did not print 'capturing' in time: {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            check(chunk, f"{' '.join(argv)} exited before capturing: {buf!r}")
            buf += chunk
    proc.send_signal(sig)
    t0 = time.monotonic()
    try:
        rc = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"{' '.join(argv)} did not exit within 5 s of {signal.Signals(sig).name}")
    elapsed = time.monotonic() - t0
    buf += proc.stderr.read()
    proc.stderr.close()
    return rc, elapsed, buf.decode("utf-8", "replace")


@case(timeout=90)
def signal_right_after_capturing(ctx):
    """A signal sent the moment weft prints 'capturing' (as a script that waits for the line
    and then stops weft does) must also stop it cleanly: exit 0 with the summary. Tried up to
    24 times over events/record and SIGINT/SIGTERM, since the window is microseconds wide."""
    for attempt in range(6):
        for command in ("events", "record"):
            for sig in (signal.SIGINT, signal.SIGTERM):
                argv = [harness.WEFT, command]
                argv += ["--port", str(free_port())] if command == "events" else ["-o", ctx.path(f"at-once-{attempt}.weft")]
                rc, elapsed, err = signal_at_once(ctx, argv, sig)
                name = signal.Signals(sig).name
                check(rc == 0, f"weft {command} got {name} right after printing 'capturing' and exited with {rc} "
                               f"(negative: killed by the signal), in attempt {attempt + 1}; stderr: {err!r}")
                check(elapsed <= 1.0, f"weft {command} took {elapsed:.2f}s to stop on {name}")
                parse_summary(err.splitlines())


def bad_argument_cases(out):
    return [
        ["events", "--ringbuf-bytes", "1000"],
        ["events", "--ringbuf-bytes", "12288"],
        ["events", "--ringbuf-bytes", "0"],
        ["events", "--ringbuf-bytes", "99999999999"],
        ["events", "--chunk-bytes", "0"],
        ["events", "--chunk-bytes", "8193"],
        ["events", "--capture-bytes", "99999999"],
        ["events", "--max-connections", "1"],
        ["events", "--bogus"],
        ["events", "--duration", "-1"],
        ["events", "--duration", "soon"],
        ["events", "--pid", "abc"],
        ["events", "--port", "70000"],
        ["events", "--disable-hook", "no_such_hook"],
        ["events", "--disable-hook", "data__send"],
        ["record"],
        ["record", "-o", out, "--chunk-bytes", "0"],
        ["record", "-o", out, "--ringbuf-bytes", "1000"],
        ["doctor", "--ringbuf-bytes", "3"],
        ["no-such-command"],
        [],
    ]


@case(timeout=60)
def bad_arguments(ctx):
    """Bad flags and configuration values: exit 2, one line on stderr, nothing on stdout,
    before loading anything."""
    out = ctx.path("never.weft")
    for args in bad_argument_cases(out):
        t0 = time.monotonic()
        res = run([harness.WEFT] + args, timeout=10)
        elapsed = time.monotonic() - t0
        err = lines_of(res.stderr)
        what = "weft " + " ".join(args)
        eq(res.returncode, 2, f"{what}: exit code (stderr {err})")
        eq(len(err), 1, f"{what}: lines on stderr ({err})")
        check(err[0].startswith("weft: "), f"{what}: stderr {err[0]!r} does not start with 'weft: '")
        eq(res.stdout, b"", f"{what}: stdout")
        check(elapsed < 3, f"{what}: took {elapsed:.1f}s to reject")
    check(not os.path.exists(out), "a rejected `weft record` created its output file")
    res = run([harness.WEFT, "events", "--help"], timeout=10)
    eq(res.returncode, 0, "events --help exit code")
    check(b"--ringbuf-bytes" in res.stdout, "events --help does not list --ringbuf-bytes")


@case(timeout=30)
def bad_argument_messages_readable(ctx):
    """The one line a bad argument gets is short enough to read (under 200 characters)."""
    for args in bad_argument_cases(ctx.path("never.weft")):
        res = run([harness.WEFT] + args, timeout=10)
        for line in lines_of(res.stderr):
            check(len(line) < 200, f"weft {' '.join(args)}: the error line is {len(line)} characters long: "
                                   f"{line[:110]!r}...")


@case(timeout=30)
def record_to_unwritable_path(ctx):
    """`weft record -o` into a directory that does not exist: exit 1 and an error naming the file."""
    path = ctx.path("no-such-dir", "out.weft")
    res = run([harness.WEFT, "record", "-o", path, "--duration", "1"], timeout=20)
    err = lines_of(res.stderr)
    eq(res.returncode, 1, f"exit code (stderr {err})")
    errors = [line for line in err if line.startswith("weft: ")]
    check(len(errors) == 1 and path in errors[0], f"expected one error line naming {path}, got {err}")


@case(timeout=30)
def stops_when_reader_goes_away(ctx):
    """`weft events | head -1`: once the reader has closed the pipe and weft has something to
    write, weft stops by itself (exit 0, not killed by SIGPIPE) within a second or two."""
    port = free_port()
    root, body = make_site(ctx, "p.txt", 100)
    HttpServer(ctx, root, port)
    weft = ctx.spawn([harness.WEFT, "events", "--json", "--port", str(port)], stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, stop_signal=signal.SIGINT)
    fd = weft.stderr.fileno()
    buf = b""
    deadline = time.monotonic() + harness.START_TIMEOUT_S
    while b"capturing" not in buf:
        check(time.monotonic() < deadline, f"weft did not start: {buf!r}")
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            chunk = os.read(fd, 4096)
            check(chunk, f"weft exited before capturing: {buf!r}")
            buf += chunk
    _, res = curl(ctx, [f"http://127.0.0.1:{port}/p.txt"])
    eq(res.returncode, 0, "curl")
    first = weft.stdout.readline()  # like `head -1`
    check(first.startswith(b"{"), f"first line {first[:80]!r}")
    weft.stdout.close()
    t0 = time.monotonic()
    rc = None
    for _ in range(10):  # more traffic, so that weft has something to write
        curl(ctx, [f"http://127.0.0.1:{port}/p.txt"])
        rc = weft.poll()
        if rc is not None:
            break
        time.sleep(0.2)
    try:
        rc = weft.wait(timeout=3)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"weft kept running {time.monotonic() - t0:.1f}s after its reader went away")
    eq(rc, 0, "exit code after the reader went away (negative: killed by a signal)")


# Options that take a quantity: the unit --help shows, a value in that unit that must be
# accepted, and one that must be refused (out of range for that unit).
UNIT_OPTIONS = [
    ("--keep-slower-than", "MS", "250", "-1"),
    ("--trace-wait", "SECONDS", "0.5", "4000"),
    ("--duration", "SECONDS", "0.2", "-1"),
    ("--otlp-timeout", "SECONDS", "2.5", "0"),
    ("--metrics-interval", "SECONDS", "30", "0"),
    ("--export-interval", "SECONDS", "0.2", "0"),
    ("--export-queue-spans", "SPANS", "50", "0"),
    ("--export-queue-bytes", "BYTES", "30000", "0"),
]


@case(timeout=60)
def run_help_units_match_what_is_accepted(ctx):
    """`weft run --help` names each option's unit, the unit docs/tracing.md and docs/export.md
    give, and a value in that unit is accepted: --keep-slower-than takes milliseconds (its help
    once said ms while its check wanted seconds)."""
    res = run([harness.WEFT, "run", "--help"], timeout=10)
    eq(res.returncode, 0, "run --help exit code")
    text = res.stdout.decode()
    missing = "/nonexistent/replay.weft"  # accepted arguments then fail on this file: exit 1
    for option, unit, good, bad in UNIT_OPTIONS:
        check(re.search(rf"{re.escape(option)} {unit}\b", text),
              f"run --help should show {option} {unit}: "
              f"{[line for line in text.splitlines() if option in line]}")
        args = [harness.WEFT, "run", "--metrics-address", "off", "--replay", missing]
        ok = run(args + [option, good], timeout=10)
        eq(ok.returncode, 1, f"{option} {good}: accepted, then the missing recording (stderr {lines_of(ok.stderr)})")
        no = run(args + [option, bad], timeout=10)
        err = lines_of(no.stderr)
        eq(no.returncode, 2, f"{option} {bad}: refused (stderr {err})")
        what = {"MS": "milliseconds", "SECONDS": "seconds"}.get(unit, unit.lower())
        check(len(err) == 1 and option in err[0] and what in err[0],
              f"{option} {bad}: one line naming the option and its unit ({what}): {err}")


@case(timeout=60)
def capture_limit_is_not_a_loss(ctx):
    """Payload beyond --capture-bytes is cut by design: the summary counts those syscalls on
    their own line, not among the kernel losses, and the byte counts stay whole."""
    port = free_port()
    root, body = make_site(ctx, "big.txt", 20000)
    HttpServer(ctx, root, port)
    weft = start_weft(ctx, ["events", "--json", "--port", str(port), "--capture-bytes", "64"])
    _, res = curl(ctx, [f"http://127.0.0.1:{port}/big.txt"])
    eq(res.returncode, 0, "curl exit code")
    weft.stop()
    weft.expect_clean_exit()
    summary = weft.summary()
    cut = [e for e in weft.events() if e["kind"] == "data" and e["truncated"]]
    check(cut, "no data event was cut at --capture-bytes 64 by a 20000-byte response")
    check(summary["capture_limited"] >= 1, f"the capture limit line counts no cut syscall: {summary}")
    losses = [line for line in weft.stderr_lines if "kernel losses:" in line]
    eq(len(losses), 1, f"one kernel losses line: {weft.stderr_lines}")
    check("truncated" not in losses[0], f"payload cut at the capture limit is listed as a loss: {losses[0]}")
    real = {k: summary[k] for k in ("ringbuf_full", "map_full", "read_failed", "gaps")}
    eq(real, {k: 0 for k in real}, "real losses in a quiet run")
