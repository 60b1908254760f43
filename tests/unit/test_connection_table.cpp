// `weft net`'s table: rows built from lifecycle, data and TCP events; a closed connection shown
// once more with its final figures; receive-queue waits; sorting.
#include <doctest/doctest.h>

#include "net/connection_table.h"

namespace weft::net {
namespace {

constexpr uint64_t kMs = 1'000'000;

Event event(EventKind kind, uint64_t cookie, uint64_t ts, Role role = Role::Client) {
  Event e;
  e.kind = kind;
  e.mono_ns = ts;
  e.cookie = cookie;
  e.pid = 42;
  e.comm = "curl";
  e.role = role;
  e.remote.port = 80;
  return e;
}

Event data(uint64_t cookie, uint64_t ts, Direction direction, uint32_t len) {
  Event e = event(EventKind::Data, cookie, ts);
  e.direction = direction;
  e.syscall_len = len;
  return e;
}

Event tcp(TcpWhat what, uint64_t cookie, uint64_t ts) {
  Event e = event(EventKind::Tcp, cookie, ts);
  e.tcp_what = what;
  e.tcp_state = 1;
  e.tcp.min_rtt_us = ~0u;
  return e;
}

const NetRow* row(const std::vector<NetRow>& rows, uint64_t cookie) {
  for (const NetRow& r : rows)
    if (r.cookie == cookie) return &r;
  return nullptr;
}

}  // namespace

TEST_CASE("weft net: a client connection's connect, bytes, RTT, retransmissions and age") {
  ConnectionTable table;
  Event connect = event(EventKind::Connect, 1, 100 * kMs);
  connect.duration_ns = 2 * kMs;  // SYN sent at 98 ms
  table.on_event(connect);
  table.on_event(data(1, 101 * kMs, Direction::Send, 120));
  table.on_event(data(1, 103 * kMs, Direction::Recv, 4000));
  Event chunk = data(1, 103 * kMs, Direction::Recv, 4000);
  chunk.chunk_offset = 2048;  // the same syscall's second record: counted once
  table.on_event(chunk);
  Event tls = data(1, 103 * kMs, Direction::Recv, 3900);
  tls.source = ByteSource::TlsLibrary;  // plaintext of bytes already counted on the socket
  table.on_event(tls);
  Event retransmit = tcp(TcpWhat::Retransmit, 1, 104 * kMs);
  retransmit.tcp_segs = 2;
  retransmit.tcp.srtt_us = 3000;
  table.on_event(retransmit);
  table.on_event(tcp(TcpWhat::ResetReceived, 1, 105 * kMs));

  std::vector<NetRow> rows = table.take_round(198 * kMs);
  REQUIRE(rows.size() == 1);
  const NetRow& r = rows[0];
  CHECK(r.pid == 42);
  CHECK(r.comm == "curl");
  CHECK_FALSE(r.closed);
  CHECK(r.age_ns == 100 * kMs);
  CHECK(r.age_from_open);
  CHECK(r.connect_seen);
  CHECK(r.connect_ns == 2 * kMs);
  CHECK(r.bytes_sent == 120);
  CHECK(r.bytes_received == 4000);
  CHECK(r.retransmits == 2);
  CHECK(r.resets_received == 1);
  CHECK(r.srtt_us == 3000);
  CHECK(r.srtt_low_us == 2000);  // the connect time was the first sample
  CHECK(r.srtt_high_us == 3000);
  CHECK(table.take_round(200 * kMs).size() == 1);  // open: still there
}

TEST_CASE("weft net: a closed connection is in one more round with its final figures, then gone") {
  ConnectionTable table;
  table.on_event(event(EventKind::Accept, 2, 10 * kMs, Role::Server));
  table.on_event(data(2, 11 * kMs, Direction::Recv, 50));
  Event closing = tcp(TcpWhat::Closed, 2, 20 * kMs);
  closing.tcp.bytes_acked = 700;
  closing.tcp.bytes_received = 51;
  table.on_event(closing);
  Event close = event(EventKind::Close, 2, 20 * kMs, Role::Server);
  close.duration_ns = 10 * kMs;
  close.bytes_sent = 700;
  close.bytes_received = 50;
  table.on_event(close);
  std::vector<NetRow> rows = table.take_round(30 * kMs);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].closed);
  CHECK(rows[0].age_ns == 10 * kMs);  // the lifetime, not the time since
  CHECK(rows[0].bytes_sent == 700);
  CHECK(rows[0].tcp_bytes_acked == 700);
  CHECK(rows[0].tcp_bytes_received == 51);
  CHECK(table.take_round(40 * kMs).empty());
}

TEST_CASE(
    "weft net: a failed connect is a closed row with its error; a close never seen open is no "
    "row") {
  ConnectionTable table;
  Event refused = event(EventKind::Connect, 3, 5 * kMs);
  refused.result = -111;
  refused.duration_ns = kMs;
  table.on_event(refused);
  table.on_event(event(EventKind::Close, 9, 6 * kMs));
  std::vector<NetRow> rows = table.take_round(7 * kMs);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].closed);
  CHECK(rows[0].connect_result == -111);
}

TEST_CASE("weft net: a reset sent after close is the closed row's; after the row left, no row") {
  ConnectionTable table;
  table.on_event(event(EventKind::Accept, 5, kMs, Role::Server));
  table.on_event(event(EventKind::Close, 5, 2 * kMs, Role::Server));
  Event reset = tcp(TcpWhat::ResetSent, 5, 2 * kMs);
  reset.tcp_state = 7;  // CLOSE: the record of an abortive close has no owner
  reset.pid = 0;
  reset.role = Role::Unknown;
  table.on_event(reset);
  std::vector<NetRow> rows = table.take_round(3 * kMs);
  const NetRow* r = row(rows, 5);
  REQUIRE(r);
  CHECK(r->resets_sent == 1);
  CHECK(r->pid == 42);
  table.on_event(reset);
  CHECK(table.take_round(4 * kMs).empty());
}

TEST_CASE("weft net: a receive-queue wait runs from the arrival record to the next read") {
  ConnectionTable table;
  table.on_event(event(EventKind::Accept, 4, 0, Role::Server));
  table.on_event(tcp(TcpWhat::DataQueued, 4, 10 * kMs));
  table.on_event(tcp(TcpWhat::DataQueued, 4, 12 * kMs));  // more of the same batch
  table.on_event(data(4, 510 * kMs, Direction::Recv, 100));
  table.on_event(data(4, 520 * kMs, Direction::Recv, 100));  // no arrival since: no wait
  table.on_event(tcp(TcpWhat::DataQueued, 4, 600 * kMs));
  table.on_event(data(4, 601 * kMs, Direction::Recv, 100));
  std::vector<NetRow> rows = table.take_round(700 * kMs);
  const NetRow* r = row(rows, 4);
  REQUIRE(r);
  CHECK(r->receive_queue_waits == 2);
  CHECK(r->receive_queue_wait_max_ns == 500 * kMs);
  CHECK(r->receive_queue_wait_total_ns == 501 * kMs);
}

TEST_CASE("weft net: rows sort by the field asked, largest first, ties by cookie") {
  std::vector<NetRow> rows(3);
  rows[0] = {.cookie = 1, .comm = "b", .retransmits = 1, .bytes_sent = 10};
  rows[1] = {.cookie = 2, .comm = "a", .retransmits = 5, .bytes_sent = 10};
  rows[2] = {.cookie = 3, .comm = "c", .retransmits = 1, .bytes_sent = 99};
  sort_rows(rows, "retrans");
  CHECK(rows[0].cookie == 2);
  CHECK(rows[1].cookie == 1);
  CHECK(rows[2].cookie == 3);
  sort_rows(rows, "tx");
  CHECK(rows[0].cookie == 3);
  sort_rows(rows, "comm");
  CHECK(rows[0].comm == "a");
  CHECK(is_sort_field("rtt"));
  CHECK_FALSE(is_sort_field("latency"));
}

TEST_CASE("weft net: the table is bounded: one more connection evicts one, counted") {
  ConnectionTable table(2);
  for (uint64_t cookie = 1; cookie <= 3; ++cookie)
    table.on_event(event(EventKind::Accept, cookie, cookie * kMs, Role::Server));
  CHECK(table.take_round(10 * kMs).size() == 2);
  CHECK(table.evicted() == 1);
}

}  // namespace weft::net
