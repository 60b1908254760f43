// ConnectionTracker: connections keyed by socket cookie, their lifetime (close, idle expiry,
// eviction under the memory budget), detection, and the identity exchanges carry.
#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "http1_scenarios.h"

namespace weft::test {
namespace {

constexpr uint64_t kSec = 1'000'000'000;

TEST_CASE("ConnectionTracker: a connection is freed on close, finishing what it holds") {
  Capture cap;
  Socket a(cap, 1, Role::Server);
  Socket b(cap, 2, Role::Server);
  a.request("GET /a HTTP/1.0\r\n\r\n");
  a.response("HTTP/1.0 200 OK\r\n\r\nread until close");
  b.request(open_head("/b", 500));
  CHECK(cap.tracker.connection_count() == 2);
  CHECK(cap.counters().connections == 2);
  const size_t both = cap.tracker.memory_used();
  CHECK(both >= 500);

  a.close();
  CHECK(cap.tracker.connection_count() == 1);
  CHECK(cap.counters().closed == 1);
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].connection->cookie == 1);
  CHECK(http_of(cap.exchanges[0]).response_end_inferred);
  CHECK(cap.exchanges[0].response.body_bytes == 16);
  CHECK(cap.tracker.memory_used() < both);

  b.close();
  CHECK(cap.tracker.connection_count() == 0);
  CHECK(cap.counters().closed == 2);
  CHECK(cap.tracker.memory_used() == 0);

  // A cookie seen again after its close is a new connection.
  a.request(get("/again"));
  a.response(ok("x"));
  CHECK(cap.counters().connections == 3);
  CHECK(cap.tracker.connection_count() == 1);
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(http_of(cap.exchanges[1]).target == "/again");
}

TEST_CASE("ConnectionTracker: close_all finishes every connection") {
  Capture cap;
  Socket a(cap, 1, Role::Client);
  Socket b(cap, 2, Role::Server);
  a.request("GET /a HTTP/1.0\r\n\r\n");
  a.response("HTTP/1.0 200 OK\r\n\r\nuntil close");
  b.request(get("/never-answered"));
  cap.tracker.close_all();
  CHECK(cap.tracker.connection_count() == 0);
  CHECK(cap.tracker.memory_used() == 0);
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].side == Role::Client);
  CHECK(http_of(cap.exchanges[0]).response_end_inferred);
  CHECK(cap.http().unmatched_requests == 1);
}

TEST_CASE("ConnectionTracker: idle connections are freed after the timeout") {
  conn::TrackerConfig config;
  config.idle_timeout_ns = 1 * kSec;
  Capture cap(config);
  Socket a(cap, 1, Role::Server);
  Socket b(cap, 2, Role::Server);
  Socket c(cap, 3, Role::Server);
  a.now_ns = 10 * kSec;
  a.request(get("/a"));  // never answered
  b.now_ns = 10 * kSec + 500'000'000;
  b.request("GET /b HTTP/1.0\r\n\r\n");
  b.response("HTTP/1.0 200 OK\r\n\r\nbody");  // last activity: 10.5 s + 1 us
  c.now_ns = 10 * kSec + 800'000'000;
  c.request(get("/c"));
  c.now_ns = 10 * kSec + 900'000'000;
  c.response(ok("c"));  // last activity: 10.9 s

  cap.tracker.expire_idle(11 * kSec - 1);
  CHECK(cap.tracker.connection_count() == 3);
  CHECK(cap.counters().idle_expired == 0);

  cap.tracker.expire_idle(11 * kSec);  // a: silent for exactly the timeout
  CHECK(cap.tracker.connection_count() == 2);
  CHECK(cap.counters().idle_expired == 1);
  CHECK(cap.http().unmatched_requests == 1);
  CHECK(cap.exchanges.size() == 1);  // c's

  // Activity keeps a connection: c speaks again at 11.2 s.
  c.now_ns = 11 * kSec + 200'000'000;
  c.request(get("/c2"));
  cap.tracker.expire_idle(11 * kSec + 600'000'000);
  CHECK(cap.tracker.connection_count() == 1);  // b went, c stays
  CHECK(cap.counters().idle_expired == 2);
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(http_of(cap.exchanges[1]).target == "/b");
  CHECK(http_of(cap.exchanges[1]).response_end_inferred);
  CHECK(cap.exchanges[1].response.body_bytes == 4);

  cap.tracker.expire_idle(12 * kSec);  // c: silent since 11.2 s only
  CHECK(cap.tracker.connection_count() == 1);
  cap.tracker.expire_idle(12 * kSec + 200'000'000);
  CHECK(cap.tracker.connection_count() == 0);
  CHECK(cap.counters().idle_expired == 3);
  CHECK(cap.http().unmatched_requests == 2);
  CHECK(cap.tracker.memory_used() == 0);
}

// What one connection holding `head` (not yet complete) costs the budget.
size_t cost_of_holding(const std::string& head) {
  Capture probe;
  Socket(probe, 1, Role::Server).request(head);
  return probe.tracker.memory_used();
}

TEST_CASE("ConnectionTracker: the memory budget evicts the least recently active connection") {
  conn::TrackerConfig config;
  // Three connections holding 1000 bytes each fit, not four.
  config.memory_budget_bytes = cost_of_holding(open_head("/three", 1000)) * 7 / 2;
  Capture cap(config);
  Socket s1(cap, 1, Role::Server);
  Socket s2(cap, 2, Role::Server);
  Socket s3(cap, 3, Role::Server);
  Socket s4(cap, 4, Role::Server);
  s1.request(open_head("/one", 1000));
  s2.request(open_head("/two", 1000));
  s3.request(open_head("/three", 1000));
  CHECK(cap.tracker.connection_count() == 3);
  CHECK(cap.counters().evicted == 0);
  s1.request("X-More: 1\r\n");  // s1 is now the most recently active
  s4.request(open_head("/four", 1000));
  CHECK(cap.counters().evicted == 1);
  CHECK(cap.tracker.connection_count() == 3);
  CHECK(cap.tracker.memory_used() <= config.memory_budget_bytes);

  // s1 kept its bytes: its request completes.
  s1.request("\r\n");
  s1.response(ok("1"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/one");
  CHECK(cap.exchanges[0].connection->cookie == 1);
  // s2 was evicted: the end of its head starts a new connection, which is no HTTP it knows.
  s2.request("\r\n");
  CHECK(cap.counters().connections == 5);
  cap.tracker.close_all();
  CHECK(cap.counters().undetected == 1);
}

TEST_CASE("ConnectionTracker: many connections within a tiny budget") {
  conn::TrackerConfig config;
  config.memory_budget_bytes = 16 * 1024;
  Capture cap(config);
  std::vector<Socket> sockets;
  sockets.reserve(200);
  size_t max_memory = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    sockets.emplace_back(cap, 100 + i, Role::Server);
    sockets.back().request(open_head("/" + std::to_string(i), 1000));
    max_memory = std::max(max_memory, cap.tracker.memory_used());
  }
  CHECK(max_memory <= config.memory_budget_bytes);
  CHECK(cap.counters().connections == 200);
  CHECK(cap.counters().evicted > 0);
  CHECK(cap.counters().evicted == 200 - cap.tracker.connection_count());
  CHECK(cap.tracker.connection_count() <= 16 * 1024 / 1000);
  // The survivors are the newest: the last one still completes its exchange.
  sockets.back().request("\r\n");
  sockets.back().response(ok("last"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/199");
}

TEST_CASE("ConnectionTracker: one connection larger than the budget is kept until another speaks") {
  conn::TrackerConfig config;
  config.memory_budget_bytes = 16 * 1024;
  Capture cap(config);
  Socket big(cap, 1, Role::Server);
  Socket other(cap, 2, Role::Server);
  big.request(open_head("/big", 20 * 1024));  // under the 64 KiB header limit: still waiting
  CHECK(cap.tracker.connection_count() == 1);
  CHECK(cap.counters().evicted == 0);
  CHECK(cap.tracker.memory_used() > config.memory_budget_bytes);
  CHECK(cap.tracker.memory_used() <= config.memory_budget_bytes + 20 * 1024 + 4096);
  other.request(get("/small"));
  CHECK(cap.counters().evicted == 1);
  CHECK(cap.tracker.connection_count() == 1);
  CHECK(cap.tracker.memory_used() <= config.memory_budget_bytes);
}

TEST_CASE("ConnectionTracker: exchanges carry the connection identity from the events") {
  Capture cap;
  Socket a(cap, 0x1234, Role::Server);
  a.pid = 3100;
  a.tid = 3101;
  a.fd = 12;
  a.comm = "nginx";
  a.local = endpoint("192.168.1.10", 443);
  a.remote = endpoint("192.168.1.20", 51000);
  Socket b(cap, 0x5678, Role::Client);
  b.pid = 4100;
  b.comm = "curl";
  b.local = endpoint("::1", 40000);
  b.remote = endpoint("::1", 8080);
  a.request(get("/a"));
  b.request(get("/b"));
  b.response(ok("b"));
  a.response(ok("a"));
  REQUIRE(cap.exchanges.size() == 2);

  const Exchange& eb = cap.exchanges[0];
  REQUIRE(eb.connection);
  CHECK(http_of(eb).target == "/b");
  CHECK(eb.side == Role::Client);
  CHECK(eb.connection->cookie == 0x5678);
  CHECK(eb.connection->pid == 4100);
  CHECK(eb.connection->comm == "curl");
  CHECK(eb.connection->remote.addr == endpoint("::1", 8080).addr);
  CHECK(eb.connection->remote.port == 8080);

  const Exchange& ea = cap.exchanges[1];
  REQUIRE(ea.connection);
  CHECK(http_of(ea).target == "/a");
  CHECK(ea.side == Role::Server);
  CHECK(ea.connection->cookie == 0x1234);
  CHECK(ea.connection->pid == 3100);
  CHECK(ea.connection->fd == 12);
  CHECK(ea.connection->comm == "nginx");
  CHECK(ea.connection->family == AF_INET);
  CHECK(ea.connection->local.addr == endpoint("192.168.1.10", 443).addr);
  CHECK(ea.connection->local.port == 443);
  CHECK(ea.connection->remote.addr == endpoint("192.168.1.20", 51000).addr);
  CHECK(ea.connection->remote.port == 51000);
  CHECK(ea.request.start_tid == 3101);
}

TEST_CASE("ConnectionTracker: lifecycle events name the owner over data events") {
  Capture cap;
  Socket s(cap, 9, Role::Server);
  s.pid = 500;
  s.comm = "worker";
  s.request(get("/x"));  // the first data event names the owner while nothing else did
  Event accept = conn_event(EventKind::Accept, 9, s.now_ns);
  accept.pid = 400;
  accept.comm = "master";
  accept.fd = 3;
  s.feed(accept);
  s.pid = 600;  // a later data event from another process does not rename it
  s.comm = "other";
  s.response(ok(""));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].connection->pid == 400);
  CHECK(cap.exchanges[0].connection->comm == "master");
  CHECK(cap.exchanges[0].connection->fd == 3);
  CHECK(cap.exchanges[0].connection->remote.port == 80);  // from the accept event
}

TEST_CASE("ConnectionTracker: a syscall reported in several chunks is one run of bytes") {
  Capture cap;
  Socket s(cap, 1, Role::Client);
  s.request(get("/chunks"));
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 9959\r\n\r\n";
  std::string payload = head + std::string(9959, 'k');
  REQUIRE(payload.size() == 10000);
  s.tid = 77;
  // The kernel's records for one 10000-byte read: 4096 + 4096 + 1808 bytes.
  for (uint32_t off = 0; off < payload.size(); off += 4096)
    s.feed(s.make(Direction::Recv, 0, payload.size(), std::string_view(payload).substr(off, 4096),
                  off));
  REQUIRE(cap.exchanges.size() == 1);
  const Exchange& ex = cap.exchanges[0];
  CHECK(ex.response.wire_bytes == 10000);
  CHECK(ex.response.body_bytes == 9959);
  CHECK(ex.response.tcp_seq == s.isn(Direction::Recv));
  CHECK(ex.response.end_tid == 77);
  s.request(get("/next"));
  s.feed(s.make(Direction::Recv, 10000, ok("").size(), ok("")));
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(http_of(cap.exchanges[1]).target == "/next");
}

// Regression (was a bug): the tracker hands DataStream the end of the whole syscall with its first
// chunk, so the bytes after that chunk count as uncaptured and are skipped at once; the later
// chunks of the same syscall then arrive "late" and are dropped. With --capture-bytes above
// --chunk-bytes, heads spanning a chunk boundary are flagged truncated and messages starting in a
// later chunk (pipelined requests read at once) are lost.
TEST_CASE("ConnectionTracker: bytes in the later chunks of a syscall are parsed") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  std::string first = "GET /first HTTP/1.1\r\nX-Pad: " + std::string(4500, 'p') +
                      "\r\ntraceparent: 00-aa-bb-01\r\n\r\n";
  const std::string reads = first + get("/second") + get("/third");
  // One read of all three requests, captured whole in records of 4096 bytes.
  for (uint32_t off = 0; off < reads.size(); off += 4096)
    s.feed(
        s.make(Direction::Recv, 0, reads.size(), std::string_view(reads).substr(off, 4096), off));
  CHECK(cap.counters().late_bytes == 0);
  s.io(Direction::Send, ok("1") + ok("2") + ok("3"));
  REQUIRE(cap.exchanges.size() == 3);
  CHECK_FALSE(cap.exchanges[0].request.truncated);
  CHECK(*find_header(http_of(cap.exchanges[0]).request_headers, "traceparent") == "00-aa-bb-01");
  CHECK(http_of(cap.exchanges[1]).target == "/second");
  CHECK(http_of(cap.exchanges[2]).target == "/third");
}

TEST_CASE("ConnectionTracker: duplicate records count as late bytes and make no duplicate") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  const std::string req = get("/dup");
  Event e = s.make(Direction::Recv, 0, req.size(), req);
  s.feed(e);
  s.feed(e);
  CHECK(cap.counters().late_bytes == req.size());
  s.io(Direction::Send, ok(""));
  s.close();
  CHECK(cap.exchanges.size() == 1);
  CHECK(cap.http().unmatched_responses == 0);
  CHECK(cap.http().unmatched_requests == 0);
}

TEST_CASE("ConnectionTracker: a data event without a position follows the bytes before it") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  s.io(Direction::Recv, "GET /u HTTP/1.1\r\n");
  Event e = s.make(Direction::Recv, 999999, 11, "Host: h\r\n\r\n");
  e.flags |= WEFT_DATA_NO_POSITION;
  s.feed(e);
  s.io(Direction::Send, ok("u"));
  CHECK(cap.counters().unpositioned == 1);
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/u");
  CHECK(cap.exchanges[0].request.wire_bytes == 28);
}

TEST_CASE("ConnectionTracker: undetected connections hold no bytes") {
  conn::TrackerConfig config;
  config.max_detect_attempts = 2;
  Capture cap(config);
  Socket s(cap, 1, Role::Server);
  cap.tracker.on_event(conn_event(EventKind::Connect, 2, 1));  // a connection without bytes
  const size_t empty = cap.tracker.memory_used();
  s.request(std::string(100, '\x01'));
  s.response(std::string(100, '\x01'));  // a second turn of the conversation
  CHECK(cap.counters().undetected == 1);
  CHECK(cap.counters().detect_bytes == 200);
  const size_t memory = cap.tracker.memory_used();
  CHECK(memory == 2 * empty);
  for (int i = 0; i < 50; ++i) s.request(std::string(1000, '\x02'));
  CHECK(cap.tracker.memory_used() == memory);
  s.close();
  CHECK(cap.tracker.memory_used() == empty);
}

TEST_CASE(
    "ConnectionTracker: while looking for a protocol, a connection holds at most one syscall") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  s.request(std::string(100, '\x01'));
  const size_t one = cap.tracker.memory_used();
  for (int i = 0; i < 20; ++i) s.request(std::string(1000, '\x02'));
  // The latest syscall's bytes, in a buffer that may have room for two.
  const size_t held = cap.tracker.memory_used();
  CHECK(held <= one + 2 * 1000 + 256);
  for (int i = 0; i < 20; ++i) s.request(std::string(1000, '\x02'));
  CHECK(cap.tracker.memory_used() == held);
  CHECK(cap.counters().undetected == 0);  // still looking: the budget is 64 boundaries
}

TEST_CASE(
    "ConnectionTracker: a start line that never ends counts as no protocol at that boundary") {
  conn::TrackerConfig config;
  config.max_detect_bytes = 100;
  config.max_detect_attempts = 1;
  Capture cap(config);
  Socket s(cap, 1, Role::Server);
  s.request("GET /" + std::string(50, 'a'));  // could still become a request line
  CHECK(cap.counters().undetected == 0);
  s.request(std::string(60, 'a'));
  CHECK(cap.counters().undetected == 1);
}

TEST_CASE("ConnectionTracker: a request split before its first line ends is detected later") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  s.request("GE");
  s.request("T /split HTTP/1.1\r\nHost: h\r\n\r\n");
  s.response(ok(""));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/split");
  CHECK(cap.exchanges[0].request.start_ns == 1'000'000'000);
  CHECK(cap.counters().undetected == 0);
}

TEST_CASE("ConnectionTracker: bytes held while undecided are parsed once the other side decides") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  // A first request line longer than the capture limit: no line end, so no decision yet.
  s.request("GET /" + std::string(5000, 'q') + " HTTP/1.1\r\nHost: h\r\n\r\n", 4096);
  CHECK(cap.counters().undetected == 0);
  CHECK(cap.http().parse_errors == 0);
  s.response("HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n");
  CHECK(cap.http().parse_errors == 1);  // the held request bytes were looked at right away
  CHECK(cap.http().unmatched_responses == 1);
  s.request(get("/next"));
  s.response(ok("n"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/next");
  CHECK(cap.exchanges[0].side == Role::Server);
}

// Regression (was a bug): a connection whose bytes are never captured (splice/sendfile both ways:
// events with syscall_len but no data) stays in detection forever; every event appends a syscall
// record to the stream (DataStream::syscalls_) that nothing consumes and memory_used() does not
// count.
TEST_CASE("ConnectionTracker: count-only events do not grow memory without bound") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  const size_t heap_before = mallinfo2().uordblks;
  for (uint64_t i = 0; i < 200000; ++i) {
    Event e = s.make(i % 2 ? Direction::Send : Direction::Recv, i / 2 * 65536, 65536, "");
    e.syscall = WEFT_SYS_SPLICE;
    s.feed(e);
  }
  const size_t heap_growth = mallinfo2().uordblks - heap_before;
  CAPTURE(heap_growth);
  CHECK((heap_growth < 1024 * 1024 || cap.tracker.memory_used() >= heap_growth));
}

// Regression (was a bug): `closed` is documented as "freed on close" but counts every Close event,
// also for a cookie with no tracker (already evicted, expired, or never seen with data).
TEST_CASE("ConnectionTracker: a close of an unknown connection frees nothing") {
  conn::TrackerConfig config;
  config.idle_timeout_ns = 1 * kSec;
  Capture cap(config);
  Socket s(cap, 1, Role::Server);
  s.request(get("/x"));
  cap.tracker.expire_idle(s.now_ns + 2 * kSec);
  CHECK(cap.counters().idle_expired == 1);
  s.close();
  CHECK(cap.counters().closed == 0);
  CHECK(cap.counters().connections ==
        cap.counters().closed + cap.counters().idle_expired + cap.counters().evicted);
}

TEST_CASE(
    "ConnectionTracker: the detection budget counts turns, so a response joined mid-body is waited "
    "out") {
  conn::TrackerConfig config;
  config.max_detect_attempts = 3;
  Capture cap(config);
  Socket s(cap, 1, Role::Client);
  // weft joins while a 4 MB response is being read, 64 KiB at a time: 64 misses, one turn.
  for (int i = 0; i < 64; ++i) s.response(std::string(65536, 'b'));
  CHECK(cap.counters().undetected == 0);
  s.request(get("/next"));
  s.response(ok("n"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/next");
  CHECK(cap.counters().redetected == 1);
  CHECK(cap.counters().detect_bytes == 64u * 65536);
}

TEST_CASE(
    "ConnectionTracker: a one-way stream of no protocol is given up after max_detect_skip_bytes") {
  conn::TrackerConfig config;
  config.max_detect_skip_bytes = 1 << 20;
  Capture cap(config);
  Socket s(cap, 1, Role::Client);
  for (int i = 0; i < 16; ++i) s.response(std::string(65536, 'b'));
  CHECK(cap.counters().undetected == 0);
  s.response(std::string(65536, 'b'));
  CHECK(cap.counters().undetected == 1);
}

// The kernel takes both from the socket at the same moment: when they stop advancing together,
// bytes sit where they do not belong (another writer, a splice) and the connection says so.
TEST_CASE(
    "ConnectionTracker: a TCP sequence number that does not follow the stream position degrades "
    "the connection") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  s.request(get("/a"));
  s.response(ok("a"));
  CHECK(cap.counters().sequence_mismatches == 0);
  Event e = s.make(Direction::Recv, s.pos(Direction::Recv), get("/b").size(), get("/b"));
  e.flags |= WEFT_DATA_LAST_CHUNK;
  e.tcp_seq += 100;  // 100 bytes moved on the socket that the stream position never counted
  s.feed(e);
  s.lose(Direction::Recv, get("/b").size());  // the positions move past the event fed above
  s.response(ok("b"));
  CHECK(cap.counters().sequence_mismatches == 1);
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(cap.exchanges[0].connection->capture_degraded);  // one ConnectionInfo: degraded now
  CHECK(cap.exchanges[1].connection->capture_degraded);
}

// A connection whose TLS library's plaintext arrives is parsed from that alone: its socket
// bytes (the ciphertext) are dropped and the kernel is told to stop copying them.
TEST_CASE("ConnectionTracker: a library's plaintext wins over the socket's bytes") {
  Capture cap;
  std::vector<std::pair<uint64_t, CaptureMode>> verdicts;
  cap.on_verdict = [&](uint64_t cookie, const CaptureVerdict& v) {
    verdicts.push_back({cookie, v.mode});
  };
  Socket s(cap, 1, Role::Server);
  s.request("\x16\x03\x01\x02\x00 ciphertext");
  auto plaintext = [&](Direction dir, uint64_t pos, const std::string& bytes) {
    Event e = s.make(dir, pos, bytes.size(), bytes);
    e.flags |= WEFT_DATA_LAST_CHUNK;
    e.source = ByteSource::TlsLibrary;
    s.feed(e);
  };
  plaintext(Direction::Recv, 0, get("/secret"));
  REQUIRE(verdicts.size() == 1);
  CHECK(verdicts[0].second == CaptureMode::Ignore);
  s.response("\x17\x03\x03 more ciphertext");  // socket bytes: superseded
  CHECK(cap.counters().superseded_bytes > 0);
  plaintext(Direction::Send, 0, ok("s"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http_of(cap.exchanges[0]).target == "/secret");
  CHECK(cap.exchanges[0].request.stream_pos == 0);  // the plaintext's own positions
  CHECK(cap.exchanges[0].connection->tls);          // its spans say https
  CHECK(cap.counters().tls_connections == 1);
}

// A server's socket bytes of a connection weft cannot parse still say who serves (counts only);
// once they are the ciphertext of plaintext weft read, they say nothing more: all of it stops.
TEST_CASE("ConnectionTracker: plaintext of no known protocol stops the ciphertext too") {
  conn::TrackerConfig config;
  config.max_detect_attempts = 1;
  Capture cap(config);
  std::vector<CaptureMode> verdicts;
  cap.on_verdict = [&](uint64_t, const CaptureVerdict& v) { verdicts.push_back(v.mode); };
  Socket s(cap, 1, Role::Server);
  Event e = s.make(Direction::Recv, 0, 12, "\x01\x02 not http");
  e.flags |= WEFT_DATA_LAST_CHUNK;
  e.source = ByteSource::TlsLibrary;
  s.feed(e);
  for (int i = 0; i < 80 && cap.counters().undetected == 0; ++i) {
    Event more = s.make(i % 2 ? Direction::Recv : Direction::Send, 12 + 12 * (i / 2), 12,
                        "\x01\x02 not http");
    more.flags |= WEFT_DATA_LAST_CHUNK;
    more.source = ByteSource::TlsLibrary;
    s.feed(more);
  }
  REQUIRE(cap.counters().undetected == 1);
  REQUIRE(verdicts.size() == 2);
  CHECK(verdicts[0] == CaptureMode::Ignore);  // plaintext took over
  CHECK(verdicts[1] == CaptureMode::Ignore);  // and not CountsOnly, as for a plain server
}

}  // namespace
}  // namespace weft::test
