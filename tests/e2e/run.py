#!/usr/bin/env python3
"""weft's end-to-end tests: the real weft binary against the real kernel, with real servers
(python3 http.server, nginx) and clients (curl, small Python peers) on loopback.

    python3 tests/e2e/run.py --weft build/weft [-k SUBSTRING]... [--list]

Needs root (weft loads BPF programs). Prints PASS/FAIL per test with the reason and time, then
'N passed, N failed'; exits 1 if any test failed.
"""
import argparse
import os
import shutil
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import TestFailure  # noqa: E402

# Importing the suites registers their tests, in this order.
import suite_traffic  # noqa: E402,F401
import suite_sockets  # noqa: E402,F401
import suite_cli  # noqa: E402,F401
import suite_tracing  # noqa: E402,F401
import suite_exchanges  # noqa: E402,F401
import suite_otlp  # noqa: E402,F401
import suite_metrics  # noqa: E402,F401
import suite_inference  # noqa: E402,F401
import suite_capture  # noqa: E402,F401
import suite_redis  # noqa: E402,F401
import suite_postgres  # noqa: E402,F401
import suite_mysql  # noqa: E402,F401
import suite_http2  # noqa: E402,F401
import suite_robustness  # noqa: E402,F401
import suite_sampling  # noqa: E402,F401
import suite_tls  # noqa: E402,F401
import suite_go_tls  # noqa: E402,F401
import suite_net  # noqa: E402,F401
import suite_net_view  # noqa: E402,F401


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout()


def root_required():
    """Fails (never skips) when not root: every other test loads BPF programs."""
    if os.geteuid() != 0:
        raise TestFailure(f"e2e tests need root: they load BPF programs (running as uid {os.geteuid()})")


def preflight(weft):
    if not (os.path.isfile(weft) and os.access(weft, os.X_OK)):
        raise TestFailure(f"weft binary {weft!r} does not exist or is not executable (build it first)")
    missing = [tool for tool in ("curl", "/usr/sbin/nginx") if not shutil.which(tool)]
    if missing:
        raise TestFailure(f"missing test peers: {', '.join(missing)} (Debian packages: curl, nginx-light; "
                          "scripts/setup.sh installs them)")
    # weft must be able to load and attach at all; otherwise every test would wait for it in turn.
    ctx = harness.Context("preflight")
    try:
        weft = harness.start_weft(ctx, ["events", "--port", str(harness.free_port())], label="preflight")
        time.sleep(0.2)  # a signal right at 'capturing' is tested (and may fail) in its own test
        weft.stop()
        weft.expect_clean_exit()
    finally:
        ctx.close()


def run_one(name, fn, timeout):
    ctx = harness.Context(name)
    t0 = time.monotonic()
    status, reason = "PASS", ""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(timeout)
    try:
        fn(ctx)
    except TestFailure as e:
        status, reason = "FAIL", str(e)
    except TestTimeout:
        status, reason = "FAIL", f"test did not finish within its {timeout}s limit"
    except Exception:
        status, reason = "FAIL", "unexpected error:\n" + traceback.format_exc()
    finally:
        signal.alarm(0)
        try:
            errors = ctx.close()
        except TestTimeout:
            errors = ["cleanup interrupted"]
        if errors and status == "PASS":
            status, reason = "FAIL", "cleanup failed: " + "; ".join(errors)
    elapsed = time.monotonic() - t0
    line = f"{status} {name} ({elapsed:.1f}s)"
    if reason:
        line += ": " + reason.replace("\n", "\n    ")
    print(line, flush=True)
    return status == "PASS"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weft", required=True, help="path to the weft binary")
    parser.add_argument("-k", action="append", default=[], help="run only tests whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the tests and exit")
    args = parser.parse_args()
    harness.WEFT = os.path.abspath(args.weft)

    cases = [("root_required", lambda ctx: root_required(), 5)] + harness.CASES
    if args.k:
        cases = [c for c in cases if c[0] == "root_required" or any(k in c[0] for k in args.k)]
    if args.list:
        for name, _, _ in cases:
            print(name)
        return 0

    t0 = time.monotonic()
    passed = failed = 0
    if os.geteuid() != 0:
        run_one(*cases[0])
        print(f"FAIL not run: {len(cases) - 1} tests (they need root)")
        print(f"e2e: 0 passed, {len(cases)} failed")
        return 1
    try:
        preflight(harness.WEFT)
    except TestFailure as e:
        print(f"FAIL preflight (weft cannot run here, no test run): {e}")
        print(f"e2e: 0 passed, {len(cases)} failed")
        return 1

    for name, fn, timeout in cases:
        if run_one(name, fn, timeout):
            passed += 1
        else:
            failed += 1
    print(f"e2e finished in {time.monotonic() - t0:.1f}s")
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
