#!/usr/bin/env python3
"""Writes the seed corpora of the stream fuzzers (tests/fuzz/stream_fuzz.cpp) in its input
format: per syscall u8 control, u8 arg, u16 length (little endian), payload.
Run from anywhere: python3 tests/fuzz/make_corpus.py (rewrites tests/fuzz/corpus/{http1,redis,http2,postgres,mysql})."""
import os
import struct

SEND, RECV = 0, 1
LOST, PREFIX, CHUNKS, SWAP, CLOSE, PAUSE = 2, 4, 8, 16, 32, 64


def syscall(data, direction, flags=0, arg=0):
    if isinstance(data, str):
        data = data.encode("latin-1")
    return struct.pack("<BBH", direction | flags, arg, len(data)) + data


def conversation(pairs, client=True, **kw):
    """Requests then responses, one syscall each; client: requests on Send."""
    req, resp = (SEND, RECV) if client else (RECV, SEND)
    out = b""
    for q, a in pairs:
        out += syscall(q, req, **kw) + syscall(a, resp, **kw)
    return out


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


HERE = os.path.dirname(os.path.abspath(__file__))

# ---- HTTP/1 ----
get = "GET /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
get_b = "GET /b HTTP/1.1\r\n\r\n"
chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
no_content = "HTTP/1.1 204 OK\r\n\r\n"
ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
big_put = "PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\n\r\n" + "p" * 3000
big_get = "HTTP/1.1 200 OK\r\nContent-Length: 3000\r\n\r\n" + "g" * 3000
http = os.path.join(HERE, "corpus", "http1")
write(http, "keepalive", syscall(get + get_b, SEND) + syscall(chunked, RECV) + syscall(no_content, RECV))
write(http, "server", conversation([(get, ok), (get_b, chunked)], client=False))
write(http, "one_byte_segments",
      b"".join(syscall(c, SEND) for c in get_b) + b"".join(syscall(c, RECV) for c in ok))
write(http, "chunk_records",
      syscall(get, SEND, CHUNKS, 0x30) + syscall(chunked, RECV, CHUNKS | SWAP, 0x20) + syscall(get_b, SEND) +
      syscall(ok, RECV))
write(http, "truncated_bodies",
      syscall(big_put, SEND, PREFIX, 4) + syscall(ok, RECV) + syscall(get_b, SEND) +
      syscall(big_get, RECV, PREFIX | CHUNKS, 0x14) + syscall(get_b, SEND) + syscall(ok, RECV))
write(http, "lost_and_swapped",
      syscall(get[:20], SEND) + syscall(get[20:30], SEND, LOST) + syscall(get[30:], SEND) + syscall(ok, RECV) +
      syscall(get_b[:8], SEND, SWAP | PAUSE) + syscall(get_b[8:], SEND) + syscall(ok, RECV) +
      syscall(get_b, SEND, CLOSE) + syscall(get_b, SEND) + syscall(ok[:10], RECV, CLOSE))
write(http, "garbage_first",
      syscall(b"\x00\x01\x02\xff\xfe\x80 binary\n", SEND) + conversation([(get_b, ok), (get, no_content)]))

# ---- Redis (RESP2 and RESP3) ----
set_kv = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
get_k = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
incr = "*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"
big_set = "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$3000\r\n" + "v" * 3000 + "\r\n"
big_value = "$3000\r\n" + "v" * 3000 + "\r\n"
redis = os.path.join(HERE, "corpus", "redis")
write(redis, "set_get_err", conversation([(set_kv, "+OK\r\n"), (get_k, "$1\r\nv\r\n"), (incr, "-ERR x\r\n")]))
write(redis, "server", conversation([(set_kv, "+OK\r\n"), (get_k, "$-1\r\n")], client=False))
write(redis, "pipelined",
      syscall(set_kv + get_k + incr + "*1\r\n$4\r\nPING\r\n", SEND) +
      syscall("+OK\r\n$1\r\nv\r\n-ERR x\r\n+PONG\r\n", RECV))
write(redis, "inline", conversation([("PING\r\n", "+PONG\r\n"), ("SET a 1\r\n", "+OK\r\n"),
                                     ("GET a\r\n", "$1\r\n1\r\n")]))
write(redis, "multi_exec",
      conversation([("*1\r\n$5\r\nMULTI\r\n", "+OK\r\n"), (set_kv, "+QUEUED\r\n"), (incr, "+QUEUED\r\n"),
                    ("*1\r\n$4\r\nEXEC\r\n", "*2\r\n+OK\r\n:1\r\n")]))
write(redis, "pubsub",
      syscall("*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n", SEND) +
      syscall("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", RECV) +
      syscall("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n", RECV) +
      syscall(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", RECV))
write(redis, "resp3",
      conversation([("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n",
                     "%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n"),
                    ("*2\r\n$7\r\nHGETALL\r\n$1\r\nh\r\n", "%1\r\n$1\r\nf\r\n$1\r\nv\r\n"),
                    ("*2\r\n$6\r\nEXISTS\r\n$1\r\nk\r\n", "#t\r\n"),
                    ("*2\r\n$3\r\nGET\r\n$1\r\nz\r\n", "_\r\n"),
                    ("*2\r\n$11\r\nINCRBYFLOAT\r\n$1\r\nf\r\n", ",1.5\r\n"),
                    ("*1\r\n$4\r\nTIME\r\n", "|1\r\n+ttl\r\n:3\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n"),
                    ("*2\r\n$3\r\nGET\r\n$1\r\nb\r\n", "!5\r\nERR x\r\n"),
                    ("*1\r\n$4\r\nINFO\r\n", "=9\r\ntxt:hello\r\n"),
                    ("*1\r\n$4\r\nBIG\r\n", "(12345678901234567890\r\n"),
                    ("*1\r\n$4\r\nSMEM\r\n", "~2\r\n+a\r\n+b\r\n")]))
write(redis, "truncated_bodies",
      syscall(big_set, SEND, PREFIX, 3) + syscall("+OK\r\n", RECV) + syscall("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n", SEND) +
      syscall(big_value, RECV, PREFIX | CHUNKS, 0x22) + syscall(get_k, SEND) + syscall("$1\r\nv\r\n", RECV))
write(redis, "lost_and_swapped",
      syscall(set_kv[:9], SEND) + syscall(set_kv[9:15], SEND, LOST) + syscall(set_kv[15:], SEND) +
      syscall("+OK\r\n", RECV) + syscall(get_k[:6], SEND, SWAP | PAUSE) + syscall(get_k[6:], SEND) +
      syscall("$1\r\nv\r\n", RECV, CHUNKS, 0x00) + syscall(get_k, SEND, CLOSE) + syscall(incr, SEND) +
      syscall("-ERR", RECV, CLOSE))
write(redis, "one_byte_segments",
      b"".join(syscall(c, SEND) for c in set_kv) + b"".join(syscall(c, RECV) for c in "+OK\r\n"))

# ---- HTTP/2 (frames and HPACK) ----


def frame(ftype, flags, stream, payload=b""):
    if isinstance(payload, str):
        payload = payload.encode("latin-1")
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hstr(s):
    s = s.encode("latin-1") if isinstance(s, str) else s
    return bytes([len(s)]) + s


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H_DATA, H_HEADERS, H_PRIORITY, H_RST, H_SETTINGS, H_PUSH, H_PING, H_GOAWAY, H_WINDOW, H_CONT = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO = 1, 4, 8, 0x20
# :method GET, :scheme http, :path literal with incremental indexing, :authority literal.
req1 = b"\x82\x86\x44" + hstr("/a/1") + b"\x01" + hstr("x")
req2 = b"\x82\x86\xbe\x01" + hstr("x")  # :path by the dynamic index 62
# :path in Huffman ("/b" = 0x61 0x83 ... via the code), and a table size update first.
req3 = b"\x3f\xe1\x1f\x83\x86\x44\x82\x60\x5f"
resp_ok = b"\x88\x5f" + hstr("application/grpc")
trailers = b"\x40" + hstr("grpc-status") + hstr("0")
settings = frame(H_SETTINGS, 0, 0, b"\x00\x01\x00\x00\x10\x00\x00\x05\x00\x00\x40\x00")
h2 = os.path.join(HERE, "corpus", "http2")
write(h2, "preface_and_streams",
      syscall(PREFACE + settings + frame(H_WINDOW, 0, 0, b"\x00\x01\x00\x00"), SEND) +
      syscall(settings + frame(H_SETTINGS, 1, 0), RECV) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 1, req1) +
              frame(H_HEADERS, END_HEADERS | END_STREAM, 3, req2), SEND) +
      syscall(frame(H_HEADERS, END_HEADERS, 3, resp_ok) + frame(H_DATA, 0, 3, b"\x00\x00\x00\x00\x01z") +
              frame(H_HEADERS, END_HEADERS | END_STREAM, 3, trailers) +
              frame(H_HEADERS, END_HEADERS, 1, b"\x8d") + frame(H_DATA, END_STREAM, 1, "nope"), RECV) +
      syscall(frame(H_PING, 0, 0, "12345678") + frame(H_GOAWAY, 0, 0, b"\x00\x00\x00\x03\x00\x00\x00\x00"), SEND))
write(h2, "continuation_padding_priority",
      conversation([(frame(H_HEADERS, PADDED | PRIO, 1, b"\x02" + b"\x00\x00\x00\x00\x10" + req1[:4] + b"\x00\x00") +
                     frame(H_CONT, END_HEADERS, 1, req1[4:]) + frame(H_PRIORITY, 0, 1, b"\x00\x00\x00\x00\x10") +
                     frame(H_DATA, PADDED | END_STREAM, 1, b"\x01ab\x00"),
                     frame(H_HEADERS, END_HEADERS | END_STREAM, 1, b"\x88"))], client=False))
write(h2, "late_join_unknown_entries",
      conversation([(frame(H_HEADERS, END_HEADERS | END_STREAM, 41, req2 + b"\xc0"),
                     frame(H_HEADERS, END_HEADERS | END_STREAM, 41, b"\x88\xbf")),
                    (frame(H_HEADERS, END_HEADERS | END_STREAM, 43, req3),
                     frame(H_RST, 0, 43, b"\x00\x00\x00\x08"))]))
write(h2, "lost_and_cut_blocks",
      syscall(PREFACE + settings, SEND) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 1, req1)[:12], SEND, PREFIX, 12) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 3, req2), SEND, LOST) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 3, b"\x88"), RECV) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 5, req1), SEND, CHUNKS | SWAP, 0x07) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 5, b"\x88"), RECV, CLOSE))
# h2c by HTTP/1.1 Upgrade: the HTTP/1 handler hands the connection to HTTP/2 at the 101, the
# server's SETTINGS in the same write; stream 1 answers the upgrade request, stream 3 follows.
write(h2, "h2c_upgrade",
      syscall("GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
              "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n", SEND) +
      syscall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n" + settings, RECV) +
      syscall(PREFACE + settings + frame(H_SETTINGS, 1, 0), SEND) +
      syscall(frame(H_HEADERS, END_HEADERS, 1, b"\x88") + frame(H_DATA, END_STREAM, 1, "hi"), RECV) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 3, req1), SEND) +
      syscall(frame(H_HEADERS, END_HEADERS | END_STREAM, 3, b"\x8d"), RECV))
# A gRPC call joined late: :path, content-type and grpc-status are entries weft never saw; the
# call is gRPC by its framing (length-prefixed messages, trailers).
write(h2, "late_join_grpc_framing",
      conversation([(frame(H_HEADERS, END_HEADERS, 41, b"\x83\x86\xbe\xbf") +
                     frame(H_DATA, END_STREAM, 41, b"\x00\x00\x00\x00\x02hi"),
                     frame(H_HEADERS, END_HEADERS, 41, b"\x88\xc0") + frame(H_DATA, 0, 41, b"\x00\x00\x00\x00\x01z") +
                     frame(H_HEADERS, END_HEADERS | END_STREAM, 41, b"\xc1"))]))

# ---- PostgreSQL (protocol 3) ----


def pgmsg(t, body=b""):
    body = body.encode("latin-1") if isinstance(body, str) else body
    return t.encode() + struct.pack(">I", len(body) + 4) + body


def pgstr(s):
    return s.encode("latin-1") + b"\x00"


pg_startup = struct.pack(">II", 8 + len(b"user\x00app\x00database\x00shop\x00\x00"), 196608) + \
    b"user\x00app\x00database\x00shop\x00\x00"
pg_ready = pgmsg("Z", "I")
pg_auth = pgmsg("R", struct.pack(">I", 0)) + pgmsg("S", pgstr("server_version") + pgstr("15")) + \
    pgmsg("K", struct.pack(">II", 7, 9)) + pg_ready
pg_q = pgmsg("Q", pgstr("SELECT name FROM users WHERE id = 42"))
pg_rows = pgmsg("T", b"\x00\x01" + pgstr("name") + b"\x00" * 18) + pgmsg("D", b"\x00\x01\x00\x00\x00\x03ann") + \
    pgmsg("C", pgstr("SELECT 1")) + pg_ready
pg_err = pgmsg("E", b"SERROR\x00VERROR\x00C42601\x00Msyntax\x00\x00") + pg_ready
pg_ext = pgmsg("P", pgstr("s1") + pgstr("UPDATE t SET a = $1 WHERE id = $2") + b"\x00\x00") + \
    pgmsg("B", pgstr("") + pgstr("s1") + b"\x00\x00\x00\x02\x00\x00\x00\x011\x00\x00\x00\x012\x00\x00") + \
    pgmsg("E", pgstr("") + b"\x00\x00\x00\x00") + \
    pgmsg("B", pgstr("") + pgstr("s1") + b"\x00\x00\x00\x00\x00\x00") + pgmsg("E", pgstr("") + b"\x00\x00\x00\x00") + \
    pgmsg("S")
pg_ext_reply = pgmsg("1") + pgmsg("2") + pgmsg("C", pgstr("UPDATE 1")) + pgmsg("2") + \
    pgmsg("E", b"SERROR\x00C23505\x00\x00") + pg_ready
pg_big_row = pgmsg("T", b"\x00\x01" + pgstr("d") + b"\x00" * 18) + \
    pgmsg("D", b"\x00\x01" + struct.pack(">I", 3000) + b"r" * 3000) + pgmsg("C", pgstr("SELECT 1")) + pg_ready
pg = os.path.join(HERE, "corpus", "postgres")
write(pg, "startup_simple_error",
      conversation([(pg_startup, pg_auth), (pg_q, pg_rows), (pgmsg("Q", pgstr("SELEC 1")), pg_err)]))
write(pg, "server_extended", conversation([(pg_ext, pg_ext_reply), (pg_q, pg_rows)], client=False))
write(pg, "ssl_then_plain",
      conversation([(struct.pack(">II", 8, 80877103), "N"), (pg_startup, pg_auth), (pg_q, pg_rows)]))
write(pg, "copy_and_notify",
      conversation([(pgmsg("Q", pgstr("COPY t FROM STDIN")), pgmsg("G", b"\x00\x00\x00"))]) +
      syscall(pgmsg("d", "1\tx\n" * 500) + pgmsg("c"), SEND) +
      syscall(pgmsg("C", pgstr("COPY 500")) + pg_ready + pgmsg("A", b"\x00\x00\x00\x01" + pgstr("ch") + pgstr("p")), RECV))
write(pg, "truncated_and_lost",
      syscall(pg_q, SEND) + syscall(pg_big_row, RECV, PREFIX | CHUNKS, 0x21) + syscall(pg_q[:7], SEND) +
      syscall(pg_q[7:20], SEND, LOST) + syscall(pg_q[20:], SEND) + syscall(pg_rows, RECV, SWAP) +
      syscall(pg_ext, SEND, CLOSE) + syscall(pg_ext_reply[:9], RECV))
write(pg, "mid_connection", syscall(pg_rows, RECV) + conversation([(pg_ext, pg_ext_reply), (pg_q, pg_rows)]))

# ---- MySQL ----


def mypkt(seq, payload):
    if isinstance(payload, str):
        payload = payload.encode("latin-1")
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xff]) + payload


def lenenc(n):
    return bytes([n]) if n < 0xfb else b"\xfc" + struct.pack("<H", n)


def lenstr(s):
    s = s.encode("latin-1") if isinstance(s, str) else s
    return lenenc(len(s)) + s


def my_column(seq, name):
    return mypkt(seq, lenstr("def") + lenstr("shop") + lenstr("t") + lenstr("t") + lenstr(name) + lenstr(name) +
                 b"\x0c\x21\x00\xff\x00\x00\x00\xfd\x00\x00\x00\x00\x00")


def my_ok(seq, affected=0, status=2, header=b"\x00"):
    return mypkt(seq, header + lenenc(affected) + b"\x00" + struct.pack("<HH", status, 0))


def my_eof(seq, status=2):
    return mypkt(seq, b"\xfe\x00\x00" + struct.pack("<H", status))


my_greeting = mypkt(0, b"\x0a5.5.5-10.11.6-MariaDB\x00" + struct.pack("<I", 7) + b"abcdefgh\x00" +
                    struct.pack("<H", 0xf7fe) + b"\x21\x02\x00" + struct.pack("<H", 0x81bf) + b"\x15" +
                    b"\x00" * 10 + b"ijklmnopqrst\x00mysql_native_password\x00")
my_login = mypkt(1, struct.pack("<II", 0x012aa20f, 1 << 24) + b"\x21" + b"\x00" * 23 + b"app\x00" +
                 lenstr(b"x" * 20) + b"shop\x00mysql_native_password\x00")
my_q = mypkt(0, b"\x03SELECT name FROM users WHERE id = 42")
my_rows_classic = mypkt(1, b"\x01") + my_column(2, "name") + my_eof(3) + mypkt(4, lenstr("ann")) + my_eof(5)
my_rows_ok = mypkt(1, b"\x01") + my_column(2, "name") + mypkt(3, lenstr("ann")) + my_ok(4, header=b"\xfe")
my_err = mypkt(1, b"\xff\x28\x04#42000You have an error")
my_prep = mypkt(0, b"\x16UPDATE t SET a = ? WHERE id = ?")
my_prep_ok = mypkt(1, b"\x00" + struct.pack("<IHHBH", 1, 0, 2, 0, 0)) + my_column(2, "?") + my_column(3, "?") + \
    my_eof(4)
my_exec = mypkt(0, b"\x17" + struct.pack("<IBI", 1, 0, 1) + b"\x00\x01\xfd\x00\xfd\x00" + lenstr("x") + lenstr("7"))
my_big_row = mypkt(1, b"\x01") + my_column(2, "d") + my_eof(3) + mypkt(4, lenstr(b"r" * 3000)) + my_eof(5)
my_multi = mypkt(1, b"\x01") + my_column(2, "a") + mypkt(3, lenstr("1")) + my_ok(4, status=10, header=b"\xfe") + \
    my_ok(5, 3, status=2)
my = os.path.join(HERE, "corpus", "mysql")
write(my, "handshake_query_error",
      syscall(my_greeting, RECV) + syscall(my_login, SEND) +
      syscall(my_ok(2), RECV) + conversation([(my_q, my_rows_classic), (mypkt(0, b"\x03SELEC 1"), my_err)]))
write(my, "server_prepared", conversation([(my_prep, my_prep_ok), (my_exec, my_ok(1, 1)),
                                           (mypkt(0, b"\x19\x01\x00\x00\x00") + my_q, my_rows_ok)], client=False))
write(my, "multi_and_infile",
      conversation([(mypkt(0, b"\x03SELECT 1; UPDATE t SET a = 1"), my_multi),
                    (mypkt(0, b"\x03LOAD DATA LOCAL INFILE 'f' INTO TABLE t"), mypkt(1, b"\xfbf"))]) +
      syscall(mypkt(2, b"1,2\n" * 100) + mypkt(3, b""), SEND) + syscall(my_ok(4, 100), RECV))
write(my, "truncated_and_lost",
      syscall(my_q, SEND) + syscall(my_big_row, RECV, PREFIX | CHUNKS, 0x21) + syscall(my_q[:7], SEND) +
      syscall(my_q[7:20], SEND, LOST) + syscall(my_q[20:], SEND) + syscall(my_rows_ok, RECV, SWAP) +
      syscall(my_exec, SEND, CLOSE) + syscall(my_ok(1)[:5], RECV))
write(my, "mid_connection",
      syscall(mypkt(5, lenstr("x")) + my_eof(6), RECV) + conversation([(my_exec, my_rows_ok), (my_q, my_rows_classic)]))
write(my, "ssl_request", syscall(my_greeting, RECV) +
      syscall(mypkt(1, struct.pack("<II", 0x012aaa0f, 1 << 24) + b"\x21" + b"\x00" * 23), SEND) +
      syscall(b"\x16\x03\x01\x00\x10" + b"c" * 16, SEND) + syscall(b"\x16\x03\x03\x00\x10" + b"s" * 16, RECV))
