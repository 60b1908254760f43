#!/usr/bin/env python3
"""tests/e2e/chain_service.py (thread per request: each request read, forwarded to the next
tier and answered on one thread) plus a background thread that calls the next tier's
/bg/{k} every INTERVAL seconds, outside any request.

    threaded_service.py PORT NEXT_HOST:PORT INTERVAL [chain_service options...]
"""
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import chain_service  # noqa: E402


def background(host, port, interval):
    k = 0
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", f"/bg/{k}")
            conn.getresponse().read()
            conn.close()
        except OSError:
            pass
        k += 1
        time.sleep(interval)


def main():
    port, nxt, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    host, p = nxt.rsplit(":", 1)
    threading.Thread(target=background, args=(host, int(p), interval), daemon=True).start()
    sys.argv = [sys.argv[0], port, nxt] + sys.argv[4:]
    chain_service.main()


if __name__ == "__main__":
    main()
