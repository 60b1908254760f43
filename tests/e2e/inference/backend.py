#!/usr/bin/env python3
"""The inference tests' backend: a thread-per-request HTTP/1.1 server (keep-alive honoured)
that answers every GET with its path. Paths containing /slow/ are answered after SLOW seconds.

    backend.py PORT [--slow SECONDS] [--announce]

--announce: print 'got PATH' on stdout (flushed) when a /slow/ request arrives, so a test can
wait for it instead of sleeping.
"""
import http.server
import socketserver
import sys
import time


def main():
    port = int(sys.argv[1])
    slow = float(sys.argv[sys.argv.index("--slow") + 1]) if "--slow" in sys.argv else 0.5
    announce = "--announce" in sys.argv

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if "/slow/" in self.path:
                if announce:
                    print(f"got {self.path}", flush=True)
                time.sleep(slow)
            body = f"backend {self.path}\n".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        request_queue_size = 128

        def handle_error(self, request, client_address):
            pass  # a client gone mid-request (a service stopped by the test) is not news

    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
