#!/usr/bin/env python3
"""An asyncio service (standard library streams only, HTTP/1.1 parsed by hand): every GET
PATH awaits a call to the backend's /down PATH on a new asyncio connection, then answers with
the backend's body. Many requests are served at once, all on the event loop's one thread.

    asyncio_service.py PORT BACKEND_HOST:PORT
"""
import asyncio
import sys


async def call_backend(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        raw = await reader.read()  # to EOF: the backend closes after answering
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def serve(reader, writer, backend):
    host, port = backend
    try:
        while True:
            line = await reader.readline()
            if not line.strip():
                break
            method, path, _ = line.decode("latin-1").split(" ", 2)
            length = 0
            while True:
                header = await reader.readline()
                if header in (b"\r\n", b"\n", b""):
                    break
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            try:
                status, body = await call_backend(host, port, "/down" + path)
            except OSError as e:
                status, body = 502, f"error {e}\n".encode()
            reason = b"OK" if status == 200 else b"Bad Gateway"
            writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                         % (status, reason, len(body)) + body)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    host, bport = sys.argv[2].rsplit(":", 1)
    server = await asyncio.start_server(lambda r, w: serve(r, w, (host, int(bport))), "127.0.0.1", port,
                                        backlog=128)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
