#!/usr/bin/env python3
"""One tier of an uninstrumented chain of HTTP services, thread per request: each request is
read, forwarded to the next tier (if any) and answered on one thread.

    chain_service.py PORT [NEXT_HOST:PORT] [--keepalive] [--delay SECONDS]

--keepalive: each serving thread keeps one connection to the next tier and reuses it;
otherwise every call opens a new connection. --delay: wait after the call to the next tier,
before answering (slow work done after the downstream call returned).
"""
import http.client
import http.server
import socketserver
import sys
import threading
import time


def main():
    port = int(sys.argv[1])
    nxt = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else ""
    keepalive = "--keepalive" in sys.argv
    delay = float(sys.argv[sys.argv.index("--delay") + 1]) if "--delay" in sys.argv else 0.0
    local = threading.local()

    def call_next(path):
        host, p = nxt.rsplit(":", 1)
        if not keepalive:
            conn = http.client.HTTPConnection(host, int(p), timeout=10)
            conn.request("GET", path)
            body = conn.getresponse().read()
            conn.close()
            return body
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection(host, int(p), timeout=10)
        conn.request("GET", path)
        return conn.getresponse().read()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            body = f"{port}\n".encode()
            if nxt:
                body += call_next(f"/hop{self.path}")
            if delay:
                time.sleep(delay)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", port), Handler)
    print(f"listening {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
