// Kernel TCP facts: the Tcp record's codec, per-connection facts, what falls inside an exchange
// and how a span shows it.
#include <doctest/doctest.h>

#include <memory>

#include "net/ack_wait.h"
#include "net/span_facts.h"
#include "net/tcp_facts.h"
#include "trace/span_builder.h"
#include "weft/event.h"
#include "weft/exchange.h"

namespace weft::net {
namespace {

constexpr uint64_t kCookie = 77;
constexpr uint64_t kMs = 1'000'000;

Event lifecycle(EventKind kind, uint64_t ts) {
  Event e;
  e.kind = kind;
  e.mono_ns = ts;
  e.cookie = kCookie;
  e.pid = 10;
  e.comm = "curl";
  e.role = Role::Client;
  return e;
}

Event tcp(TcpWhat what, uint64_t ts, uint8_t state, uint32_t srtt_us = 0) {
  Event e = lifecycle(EventKind::Tcp, ts);
  e.tcp_what = what;
  e.tcp_state = state;
  e.tcp.srtt_us = srtt_us;
  e.tcp.min_rtt_us = ~0u;
  return e;
}

Event retransmit(uint64_t ts, uint8_t state, uint32_t seq, uint16_t segs) {
  Event e = tcp(TcpWhat::Retransmit, ts, state);
  e.tcp_seq = seq;
  e.tcp_end_seq = seq + 1000;
  e.tcp_segs = segs;
  return e;
}

Exchange client_exchange(uint64_t start, uint64_t end, uint64_t request_pos) {
  Exchange ex;
  ex.side = Role::Client;
  auto info = std::make_shared<ConnectionInfo>();
  info->cookie = kCookie;
  ex.connection = info;
  ex.request.start_ns = start;
  ex.request.stream_pos = request_pos;
  ex.response.end_ns = end;
  return ex;
}

TEST_CASE("a Tcp record survives encoding and decoding") {
  Event e = retransmit(123, 1, 4000, 3);
  e.tcp.total_retrans = 5;
  e.tcp.bytes_acked = 1 << 20;
  e.tcp_detail = 7;
  std::string error;
  auto back = decode_event(encode_event(e), &error);
  REQUIRE_MESSAGE(back, error);
  CHECK(back->kind == EventKind::Tcp);
  CHECK(back->tcp_what == TcpWhat::Retransmit);
  CHECK(back->tcp_seq == 4000);
  CHECK(back->tcp_end_seq == 5000);
  CHECK(back->tcp_segs == 3);
  CHECK(back->tcp_detail == 7);
  CHECK(back->tcp.total_retrans == 5);
  CHECK(back->tcp.bytes_acked == 1u << 20);
}

TEST_CASE("a Tcp record of an unknown type is rejected, not guessed") {
  Event e = tcp(TcpWhat::Closed, 1, 7);
  auto raw = encode_event(e);
  e.tcp_what = static_cast<TcpWhat>(9);
  raw = encode_event(e);
  std::string error;
  CHECK_FALSE(decode_event(raw, &error));
  CHECK(error.find("unknown type") != std::string::npos);
}

TEST_CASE("a connect with a SYN sent twice: its first exchange carries both, a later one neither") {
  TcpFacts facts;
  facts.on_event(retransmit(1000 * kMs, 2, 100, 1));
  Event est = tcp(TcpWhat::Established, 1010 * kMs, 1, 400);
  est.tcp.total_retrans = 1;
  facts.on_event(est);
  Event connect = lifecycle(EventKind::Connect, 1010 * kMs);
  connect.duration_ns = 1010 * kMs;
  facts.on_event(connect);

  ExchangeFacts first = facts.for_exchange(client_exchange(1011 * kMs, 1020 * kMs, 0));
  CHECK(first.opened_connection);
  CHECK(first.connect_duration_ns == 1010 * kMs);
  CHECK(first.handshake_retransmits == 1);  // not two: the record and the kernel's total agree
  CHECK(first.retransmitted_segments == 0);
  CHECK(first.srtt_us == 400);
  ExchangeFacts later = facts.for_exchange(client_exchange(1030 * kMs, 1040 * kMs, 50));
  CHECK_FALSE(later.opened_connection);
  CHECK(facts.counters().handshake_retransmits == 1);
}

TEST_CASE("a clean handshake sends no TCP record: its connect time is the first RTT sample") {
  TcpFacts facts;
  Event connect = lifecycle(EventKind::Connect, 10 * kMs);
  connect.duration_ns = 250'000;
  facts.on_event(connect);
  CHECK(facts.find(kCookie)->srtt_us == 250);
  CHECK(facts.for_exchange(client_exchange(11 * kMs, 12 * kMs, 0)).srtt_us == 250);
}

Exchange with_request_bytes(Exchange ex, uint32_t seq, uint64_t bytes) {
  ex.request.tcp_seq = seq;
  ex.request.wire_bytes = bytes;
  return ex;
}

TEST_CASE("retransmissions count in the exchange whose bytes they carried, not by time") {
  TcpFacts facts;
  facts.on_event(lifecycle(EventKind::Connect, 1 * kMs));
  // Sent again while the first exchange was in flight, but bytes of the second request
  // (pipelined): they belong to the second.
  facts.on_event(retransmit(15 * kMs, 1, 5100, 2));
  facts.on_event(retransmit(16 * kMs, 1, 4990, 1));  // [4990, 5990): the end of the first too
  ExchangeFacts a =
      facts.for_exchange(with_request_bytes(client_exchange(10 * kMs, 20 * kMs, 0), 5000, 100));
  ExchangeFacts b =
      facts.for_exchange(with_request_bytes(client_exchange(12 * kMs, 40 * kMs, 100), 5100, 300));
  CHECK(a.sent_bytes_known);
  CHECK(a.retransmitted_segments == 1);
  REQUIRE(a.retransmissions.size() == 1);
  CHECK(a.retransmissions[0].seq == 4990);
  CHECK(b.retransmitted_segments == 3);
  CHECK(b.retransmissions.size() == 2);
  // After the second request's bytes: none of its own.
  ExchangeFacts c =
      facts.for_exchange(with_request_bytes(client_exchange(13 * kMs, 41 * kMs, 400), 6100, 50));
  CHECK(c.retransmitted_segments == 0);
  CHECK(facts.find(kCookie)->retransmitted_segments == 3);
}

TEST_CASE("a server span counts retransmissions of its response; ranges wrap around 2^32") {
  TcpFacts facts;
  facts.on_event(retransmit(15 * kMs, 1, 0xfffffe00, 1));  // [0xfffffe00, 0x1e8): wraps
  Exchange ex = with_request_bytes(client_exchange(10 * kMs, 12 * kMs, 0), 0xfffffe00, 100);
  ex.side = Role::Server;  // its request bytes were the peer's: not this end's retransmission
  CHECK(facts.for_exchange(ex).retransmitted_segments == 0);
  ex.response.tcp_seq = 0x10;
  ex.response.wire_bytes = 4000;
  CHECK(facts.for_exchange(ex).retransmitted_segments == 1);
  ex.response.tcp_seq = 0xfffff000;
  ex.response.wire_bytes = 0xe00;  // ends where the retransmitted segment starts
  CHECK(facts.for_exchange(ex).retransmitted_segments == 0);
}

TEST_CASE("bytes weft cannot place in sequence space get no retransmissions, not guessed ones") {
  TcpFacts facts;
  facts.on_event(retransmit(15 * kMs, 1, 5000, 1));
  Exchange ex = with_request_bytes(client_exchange(10 * kMs, 20 * kMs, 0), 5000, 100);
  auto tls = std::make_shared<ConnectionInfo>(*ex.connection);
  tls->tls = true;  // plaintext lengths are not the ciphertext's
  ex.connection = tls;
  ExchangeFacts f = facts.for_exchange(ex);
  CHECK_FALSE(f.sent_bytes_known);
  CHECK(f.retransmitted_segments == 0);
  ex = with_request_bytes(client_exchange(10 * kMs, 20 * kMs, 0), 0, 100);  // no sequence number
  CHECK_FALSE(facts.for_exchange(ex).sent_bytes_known);
}

TEST_CASE("receive-queue wait: from the arrival that holds the request's first byte to its read") {
  TcpFacts facts;
  Event accept = lifecycle(EventKind::Accept, 1 * kMs);
  accept.role = Role::Server;
  facts.on_event(accept);
  Event queued = tcp(TcpWhat::DataQueued, 100 * kMs, 1);
  queued.tcp_seq = 0xfffffff0;  // the range wraps around 2^32
  queued.tcp_end_seq = 0x40;
  facts.on_event(queued);
  Exchange ex = client_exchange(600 * kMs, 601 * kMs, 0);
  ex.side = Role::Server;
  ex.request.tcp_seq = 0xfffffff0;
  ExchangeFacts f = facts.for_exchange(ex);
  CHECK(f.has_receive_queue_wait);
  CHECK(f.receive_queue_wait_ns == 500 * kMs);

  ex.request.tcp_seq = 0x50;  // came in a later segment of the batch: unknown, not guessed
  CHECK_FALSE(facts.for_exchange(ex).has_receive_queue_wait);
  ex.request.tcp_seq = 0xfffffff0;
  ex.request.start_ns = 50 * kMs;  // read before any recorded arrival
  CHECK_FALSE(facts.for_exchange(ex).has_receive_queue_wait);
}

TEST_CASE("a failed connect ends the connection's facts; closed ones are forgotten after a grace") {
  TcpFacts facts;
  int closed = 0;
  facts.on_closed([&](const ConnectionFacts& f) {
    ++closed;
    CHECK(f.connect_result == -110);
  });
  facts.on_event(retransmit(1 * kMs, 2, 1, 1));
  Event failed = lifecycle(EventKind::Connect, 3000 * kMs);
  failed.result = -110;
  facts.on_event(failed);
  CHECK(closed == 1);
  CHECK(facts.counters().failed_connects == 1);
  facts.expire(3000 * kMs + TcpFacts::kClosedGraceNs - 1);
  CHECK(facts.size() == 1);
  facts.expire(3000 * kMs + TcpFacts::kClosedGraceNs + 1);
  CHECK(facts.size() == 0);
}

TEST_CASE("the table is bounded: one more connection than it holds evicts one, counted") {
  TcpFacts facts(2);
  for (uint64_t cookie = 1; cookie <= 3; ++cookie) {
    Event e = lifecycle(EventKind::Connect, cookie * kMs);
    e.cookie = cookie;
    facts.on_event(e);
  }
  CHECK(facts.size() == 2);
  CHECK(facts.counters().evicted == 1);
  CHECK(facts.counters().connections == 3);
}

TEST_CASE("the span carries connect time, retransmissions and one event per retransmission") {
  ExchangeFacts f;
  f.opened_connection = true;
  f.connect_duration_ns = 1'500'000'000;
  f.handshake_retransmits = 1;
  f.retransmitted_segments = 2;
  f.retransmissions.push_back({5 * kMs, 4000, 5000, 2, 1});
  f.srtt_us = 250;
  trace::Span span;
  annotate_span(f, 1000, span);
  auto value = [&](const char* key) {
    const Attribute* a = trace::find_attribute(span, key);
    REQUIRE_MESSAGE(a, key);
    return a->value;
  };
  CHECK(std::get<double>(value("weft.tcp.connect.duration")) == doctest::Approx(1.5));
  CHECK(std::get<int64_t>(value("weft.tcp.connect.syn_retransmits")) == 1);
  CHECK(std::get<int64_t>(value("weft.tcp.retransmits")) == 2);
  CHECK(std::get<double>(value("weft.tcp.rtt")) == doctest::Approx(0.00025));
  REQUIRE(span.events.size() == 1);
  CHECK(span.events[0].name == "tcp.retransmit");
  CHECK(span.events[0].time_ns == 5 * kMs + 1000);
}

TEST_CASE("an exchange the kernel did nothing to gets no TCP attribute") {
  trace::Span span;
  annotate_span(ExchangeFacts{}, 0, span);
  CHECK(span.attributes.empty());
  CHECK(span.events.empty());
}

}  // namespace
}  // namespace weft::net

namespace weft::net {
namespace {

Event acked(uint64_t ts, uint32_t una_before, uint32_t ack) {
  Event e = tcp(TcpWhat::Acked, ts, 1, 300);
  e.role = Role::Server;
  e.tcp_seq = una_before;
  e.tcp_end_seq = ack;
  return e;
}

std::shared_ptr<const Exchange> server_response(uint64_t end, uint32_t seq, uint64_t bytes) {
  Exchange ex = client_exchange(end - kMs, end, 0);
  ex.side = Role::Server;
  ex.response.tcp_seq = seq;
  ex.response.wire_bytes = bytes;
  return std::make_shared<const Exchange>(std::move(ex));
}

TEST_CASE("last-ACK wait: from the response's last write to the ACK that first covered it") {
  TcpFacts facts;
  auto ex = server_response(100 * kMs, 1000, 500);  // bytes [1000, 1500)
  CHECK(facts.response_ack(*ex) == ResponseAck::Pending);
  facts.on_event(acked(101 * kMs, 900, 1000));  // the previous response's
  CHECK(facts.response_ack(*ex) == ResponseAck::Pending);
  facts.on_event(acked(103 * kMs, 1000, 1500));
  uint64_t at = 0;
  CHECK(facts.response_ack(*ex, &at) == ResponseAck::Seen);
  CHECK(at == 103 * kMs);
  ExchangeFacts f = facts.for_exchange(*ex);
  CHECK(f.has_last_ack_wait);
  CHECK(f.last_ack_wait_ns == 3 * kMs);
  trace::Span span;
  annotate_span(f, 0, span);
  const Attribute* a = trace::find_attribute(span, "weft.tcp.last_ack.wait");
  REQUIRE(a);
  CHECK(std::get<double>(a->value) == doctest::Approx(0.003));
}

TEST_CASE("an ACK weft was not told of: the wait is unknown, not the next drain's") {
  TcpFacts facts;
  auto ex = server_response(100 * kMs, 1000, 500);
  // The next response was in flight when [1000, 1500) was acknowledged: no record then; the
  // next record starts beyond the response's end.
  facts.on_event(acked(120 * kMs, 1600, 2000));
  CHECK(facts.response_ack(*ex) == ResponseAck::Unseen);
  CHECK_FALSE(facts.for_exchange(*ex).has_last_ack_wait);
  Exchange client = *ex;
  client.side = Role::Client;
  CHECK(facts.response_ack(client) == ResponseAck::Unknown);
}

TEST_CASE("a zero window belongs to the exchange whose byte the peer awaited") {
  TcpFacts facts;
  auto ex = server_response(100 * kMs, 1000, 500);  // bytes [1000, 1500)
  Event zero = acked(90 * kMs, 1000, 1200);         // acknowledged up to 1200, then stopped
  zero.tcp_what = TcpWhat::ZeroWindow;
  facts.on_event(zero);
  zero.mono_ns = 95 * kMs;
  zero.tcp_end_seq = 1500;  // everything acknowledged: the next message waits, not this one
  facts.on_event(zero);
  ExchangeFacts f = facts.for_exchange(*ex);
  CHECK(f.zero_windows == std::vector<uint64_t>{90 * kMs});
  CHECK(facts.find(kCookie)->zero_windows == 2);
  CHECK(facts.counters().zero_windows == 2);
  CHECK(facts.for_exchange(*server_response(200 * kMs, 1500, 10)).zero_windows.size() == 1);
  trace::Span span;
  annotate_span(f, 1000, span);
  const Attribute* a = trace::find_attribute(span, "weft.tcp.zero_windows");
  REQUIRE(a);
  CHECK(std::get<int64_t>(a->value) == 1);
  REQUIRE(span.events.size() == 1);
  CHECK(span.events[0].name == "tcp.zero_window");
  CHECK(span.events[0].time_ns == 90 * kMs + 1000);
}

trace::Span span_of(std::shared_ptr<const Exchange> ex) {
  trace::Span s;
  s.exchange = std::move(ex);
  return s;
}

TEST_CASE("held server spans leave at their ACK, in order, at close, or after the bound") {
  TcpFacts facts;
  std::vector<uint32_t> released;  // response start sequence numbers, in release order
  AckWait wait(facts, 50 * kMs,
               [&](trace::Span&& s) { released.push_back(s.exchange->response.tcp_seq); });
  wait.add(span_of(server_response(100 * kMs, 1000, 500)));
  wait.add(span_of(server_response(101 * kMs, 1500, 500)));
  CHECK(wait.size() == 2);
  Event ack = acked(102 * kMs, 1000, 1500);
  facts.on_event(ack);
  wait.on_event(ack);
  CHECK(released == std::vector<uint32_t>{1000});
  wait.expire(151 * kMs + 1);  // the second waited past the bound
  CHECK(released == std::vector<uint32_t>{1000, 1500});
  CHECK(wait.counters().acked == 1);
  CHECK(wait.counters().timed_out == 1);

  wait.add(span_of(server_response(200 * kMs, 2000, 10)));
  Event close = lifecycle(EventKind::Close, 201 * kMs);
  facts.on_event(close);
  wait.on_event(close);
  CHECK(released.size() == 3);
  CHECK(wait.counters().closed_first == 1);

  Exchange tls = *server_response(300 * kMs, 3000, 10);
  auto info = std::make_shared<ConnectionInfo>(*tls.connection);
  info->tls = true;
  tls.connection = info;
  wait.add(span_of(std::make_shared<const Exchange>(tls)));  // cannot be placed: not held
  CHECK(released.size() == 4);
  CHECK(wait.counters().not_held == 1);
  CHECK(wait.size() == 0);
}

}  // namespace
}  // namespace weft::net
