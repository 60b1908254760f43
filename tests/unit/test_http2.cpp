// HTTP/2 and gRPC through the connection tracker, as the kernel reports real traffic: one data
// event per syscall, both ends of a connection, connections joined late, lost records, floods.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http1_scenarios.h"
#include "http2_wire.h"
#include "protocols/http2/http2.h"
#include "span_description_helpers.h"

namespace weft::test {
namespace {

using namespace h2;
using protocols::http2::http2_of;

const protocols::ProtocolCounters& h2_counters(const Capture& cap) {
  return cap.tracker.protocol_counters().at(
      protocols::registry_index(&protocols::http2::protocol()));
}

bool battr(const protocols::SpanDescription& d, std::string_view key) {
  const AttributeValue* v = attr(d, key);
  return v && std::holds_alternative<bool>(*v) && std::get<bool>(*v);
}

std::string text(const Exchange& ex) {
  return ex.protocol->render_text(ex);
}

// The start of a connection as a client writes it and a server answers it.
void handshake(Socket& s) {
  s.request(std::string(kPreface) + settings(setting(0x3, 100)) +
            frame(kWindowUpdate, 0, 0, u32(1 << 20)));
  s.response(settings(setting(0x5, 16384)) + frame(kSettings, kAck, 0, ""));
  s.request(frame(kSettings, kAck, 0, ""));
}

TEST_CASE("http2: a connection from its preface: every frame type, interleaved streams") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 7, side);
    s.open();
    handshake(s);
    // Stream 1: HEADERS with padding and priority, then CONTINUATION, then a padded DATA body.
    std::string block = request_block("POST", "/orders/7?x=1");
    std::string headers_payload = std::string(1, '\x03') + u32(0) + std::string(1, '\x10') +
                                  block.substr(0, 10) + std::string(3, '\0');
    const uint64_t t_request = s.now_ns;
    s.request(frame(kHeaders, kPadded | kPrio, 1, headers_payload));
    s.request(frame(kContinuation, kEndHeaders, 1, block.substr(10)));
    // Stream 3 begins before stream 1's body: streams interleave.
    s.request(frame(kHeaders, kEndHeaders | kEndStream, 3, request_block("GET", "/")));
    s.request(frame(kPriority, 0, 3, u32(1) + std::string(1, '\x20')));
    s.request(frame(kData, kPadded | kEndStream, 1,
                    std::string(1, '\x02') + "body!" + std::string(2, '\0')));
    s.response(frame(kPing, 0, 0, "12345678"));
    s.request(frame(kPing, kAck, 0, "12345678"));
    // Stream 3 is answered first.
    s.response(frame(kHeaders, kEndHeaders, 3, indexed(kStatus200)));
    s.response(frame(kWindowUpdate, 0, 1, u32(100)));
    s.response(frame(kHeaders, kEndHeaders, 1, indexed(kStatus500)));
    s.response(frame(kData, 0, 3, "abc"));
    s.response(frame(kData, kEndStream, 3, "de"));
    REQUIRE(cap.exchanges.size() == 1);
    const uint64_t t_end = s.now_ns;
    s.response(frame(kData, kEndStream, 1, "oops"));
    s.response(frame(kGoaway, 0, 0, u32(3) + u32(0)));
    s.close();

    REQUIRE(cap.exchanges.size() == 2);
    const Exchange& get = cap.exchanges[0];
    const Exchange& post = cap.exchanges[1];
    CHECK(text(get) == "GET / -> 200");
    CHECK(text(post) == "POST /orders/7?x=1 -> 500");
    CHECK(get.response.body_bytes == 5);
    CHECK(post.request.body_bytes == 5);  // padding and its length byte are not body
    CHECK(post.response.body_bytes == 4);
    CHECK(post.request.start_ns == t_request);
    CHECK(post.response.end_ns == t_end);
    CHECK(post.request.wire_bytes == 9 + headers_payload.size() + 9 + block.size() - 10 + 9 + 8);
    CHECK(get.side == side);
    CHECK(http2_of(post).stream_id == 1);
    const auto& c = h2_counters(cap);
    CHECK(c.exchanges == 2);
    CHECK(c.parse_errors == 0);
    CHECK(c.unmatched_requests == 0);
    CHECK(c.unmatched_responses == 0);

    auto d = describe(post);
    CHECK(d.name == "POST /orders/{id}");
    CHECK(d.kind == (side == Role::Server ? SpanKind::Server : SpanKind::Client));
    CHECK(sattr(d, "network.protocol.version") == "2");
    CHECK(sattr(d, "http.request.method") == "POST");
    CHECK(sattr(d, "url.path") == "/orders/7");
    CHECK(sattr(d, "url.query") == "x=REDACTED");
    CHECK(iattr(d, "http.response.status_code") == 500);
    CHECK(sattr(d, "server.address") == "shop.example");
    CHECK(d.status == StatusCode::Error);
    if (side == Role::Client)
      CHECK(sattr(d, "url.full") == "http://shop.example/orders/7?x=REDACTED");
  }
}

TEST_CASE("http2: the dynamic table carries across requests, per direction, with evictions") {
  Capture cap;
  Socket s(cap, 8, Role::Server);
  s.open();
  handshake(s);
  // Request 1 inserts :path and a traceparent; request 2 refers to both by index.
  const std::string tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  s.request(
      frame(kHeaders, kEndHeaders | kEndStream, 1,
            indexed(kGet) + indexed(kHttp) + inc(kPathName, "/a/b") + inc("traceparent", tp)));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 1, inc(8, "201")));
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 3,
                  indexed(kGet) + indexed(kHttp) + indexed(63) + indexed(62)));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 3, indexed(62)));
  // The client shrinks its table to one entry: the oldest (:path) is evicted; index 63 is now
  // an entry weft cannot have.
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 5,
                  size_update(100) + indexed(kGet) + indexed(63) + indexed(62)));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 5, indexed(kStatus204)));
  s.close();
  REQUIRE(cap.exchanges.size() == 3);
  CHECK(text(cap.exchanges[0]) == "GET /a/b -> 201");
  CHECK(text(cap.exchanges[1]) == "GET /a/b -> 201");
  CHECK(text(cap.exchanges[2]) == "GET ? -> 204 [1 fields unknown]");
  auto d = describe(cap.exchanges[1]);
  REQUIRE(d.context_carrier != nullptr);
  const std::string* carried = find_header(*d.context_carrier, "traceparent");
  REQUIRE(carried != nullptr);
  CHECK(*carried == tp);
  CHECK(battr(describe(cap.exchanges[2]), "weft.http2.path_unknown"));
}

TEST_CASE("http2: joined mid-connection, static fields decode and learnt entries are used") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 9, side);  // no handshake seen: weft started after the connection
    s.lose(s.request_dir(), 5000);
    s.lose(s.response_dir(), 7000);
    // The first request names its :path by a dynamic entry from before weft started.
    s.request(frame(kHeaders, kEndHeaders | kEndStream, 41,
                    indexed(kGet) + indexed(kHttp) + indexed(63) + indexed(62)));
    s.response(frame(kHeaders, kEndHeaders, 41, indexed(kStatus200)) +
               frame(kData, kEndStream, 41, "x"));
    // The next one inserts its path: learnt. The third refers to it.
    s.request(frame(kHeaders, kEndHeaders | kEndStream, 43,
                    indexed(kPost) + inc(kPathName, "/learnt") + indexed(64)));
    s.response(frame(kHeaders, kEndHeaders | kEndStream, 43, indexed(kStatus404)));
    s.request(frame(kHeaders, kEndHeaders | kEndStream, 45, indexed(kGet) + indexed(62)));
    s.response(frame(kHeaders, kEndHeaders | kEndStream, 45, indexed(kStatus200)));
    s.close();
    REQUIRE(cap.exchanges.size() == 3);
    CHECK(text(cap.exchanges[0]) == "GET ? -> 200 [2 fields unknown]");
    CHECK(text(cap.exchanges[1]) == "POST /learnt -> 404 [1 fields unknown]");
    CHECK(text(cap.exchanges[2]) == "GET /learnt -> 200");
    auto d = describe(cap.exchanges[0]);
    CHECK(battr(d, "weft.http2.path_unknown"));
    CHECK(iattr(d, "weft.http2.unknown_fields") == 2);
    CHECK(sattr(d, "http.request.method") == "GET");
    CHECK(iattr(d, "http.response.status_code") == 200);
    CHECK(d.name == "GET");
    CHECK_FALSE(battr(describe(cap.exchanges[2]), "weft.http2.path_unknown"));
  }
}

TEST_CASE("http2: joined in the middle of a frame, framing is found at a syscall boundary") {
  Capture cap;
  Socket s(cap, 10, Role::Server);
  s.lose(Direction::Recv, 100);
  s.lose(Direction::Send, 100);
  std::string body(3000, 'z');
  // The tail of a DATA frame, then whole frames.
  s.request(body.substr(0, 1500));
  s.response(std::string("\x00\x10", 2) + body.substr(0, 700));
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 7, request_block("GET", "/x")));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 7, indexed(kStatus200)));
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(text(cap.exchanges[0]) == "GET /x -> 200");
}

TEST_CASE("http2: a lost HEADERS record costs its own fields and the table's history") {
  Capture cap;
  Socket s(cap, 11, Role::Server);
  s.open();
  handshake(s);
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 1,
                  indexed(kGet) + inc(kPathName, "/first") + lit(kUserAgent, "ua")));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 1, indexed(kStatus200)));
  // Request 3's block: its first 14 bytes (frame header, :method, part of :path) are seen, the
  // rest of the syscall was lost; then request 5 refers to the entry request 1 inserted.
  std::string lost =
      frame(kHeaders, kEndHeaders | kEndStream, 3,
            indexed(kPost) + inc(kPathName, "/second/which/is/long") + inc("x-tenant", "t1"));
  s.io_len(Direction::Recv, lost.substr(0, 14), lost.size());
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 3, indexed(kStatus204)));
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 5, indexed(kGet) + indexed(64)));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 5, indexed(kStatus200)));
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 7, request_block("GET", "/static")));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 7, indexed(kStatus200)));
  s.close();
  REQUIRE(cap.exchanges.size() == 4);
  CHECK(text(cap.exchanges[0]) == "GET /first -> 200");
  CHECK(text(cap.exchanges[1]) == "POST ? -> 204 [headers truncated]");
  CHECK(text(cap.exchanges[2]) == "GET ? -> 200 [1 fields unknown]");
  CHECK(text(cap.exchanges[3]) == "GET /static -> 200");
  CHECK(battr(describe(cap.exchanges[1]), "weft.http2.path_unknown"));
  CHECK(h2_counters(cap).parse_errors == 0);
}

TEST_CASE("http2: RST_STREAM ends a stream as an exchange with its error code") {
  Capture cap;
  Socket s(cap, 12, Role::Client);
  s.open();
  handshake(s);
  s.request(frame(kHeaders, kEndHeaders, 1, request_block("POST", "/upload")));
  s.request(frame(kRstStream, 0, 1, u32(8)));  // CANCEL
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(text(cap.exchanges[0]) == "POST /upload -> - RST_STREAM 8");
  auto d = describe(cap.exchanges[0]);
  CHECK(d.status == StatusCode::Error);
  CHECK(iattr(d, "weft.http2.reset_code") == 8);
}

// A gRPC call: content-type application/grpc, length-prefixed messages in DATA, and the
// status in trailers (or in the only HEADERS of a trailers-only response).
std::string grpc_request(uint32_t stream, std::string_view path) {
  std::string block = indexed(kPost) + indexed(kHttp) + lit(kPathName, path) +
                      lit(kAuthority, "svc:50051") + lit(kContentType, "application/grpc") +
                      lit("te", "trailers") +
                      lit("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  std::string msg = std::string("\0\0\0\0\3abc", 8);
  return frame(kHeaders, kEndHeaders, stream, block) + frame(kData, kEndStream, stream, msg);
}

TEST_CASE("http2: gRPC calls are described by the RPC conventions, status from trailers") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 13, side);
    s.open();
    handshake(s);
    s.request(grpc_request(1, "/helloworld.Greeter/SayHello"));
    s.response(frame(kHeaders, kEndHeaders, 1,
                     indexed(kStatus200) + lit(kContentType, "application/grpc")) +
               frame(kData, 0, 1, std::string("\0\0\0\0\2hi", 7)) +
               frame(kHeaders, kEndHeaders | kEndStream, 1, lit("grpc-status", "0")));
    s.request(grpc_request(3, "/helloworld.Greeter/Missing"));
    // Trailers-only: the status comes in the response's only HEADERS.
    s.response(frame(kHeaders, kEndHeaders | kEndStream, 3,
                     indexed(kStatus200) + lit(kContentType, "application/grpc") +
                         lit("grpc-status", "12") + lit("grpc-message", "unknown method")));
    s.request(grpc_request(5, "/helloworld.Greeter/Find"));
    s.response(frame(kHeaders, kEndHeaders | kEndStream, 5,
                     indexed(kStatus200) + lit("grpc-status", "5")));
    s.close();
    REQUIRE(cap.exchanges.size() == 3);
    for (const Exchange& ex : cap.exchanges) CHECK(ex.protocol_name() == "grpc");
    CHECK(http2_of(cap.exchanges[0]).request_messages == 1);
    CHECK(http2_of(cap.exchanges[0]).response_messages == 1);
    auto ok = describe(cap.exchanges[0]);
    CHECK(ok.name == "helloworld.Greeter/SayHello");
    CHECK(sattr(ok, "rpc.system") == "grpc");
    CHECK(sattr(ok, "rpc.service") == "helloworld.Greeter");
    CHECK(sattr(ok, "rpc.method") == "SayHello");
    CHECK(iattr(ok, "rpc.grpc.status_code") == 0);
    CHECK(ok.status == StatusCode::Unset);
    CHECK(ok.outcome == "OK");
    REQUIRE(ok.context_carrier != nullptr);
    CHECK(find_header(*ok.context_carrier, "traceparent") != nullptr);
    auto unimplemented = describe(cap.exchanges[1]);
    CHECK(iattr(unimplemented, "rpc.grpc.status_code") == 12);
    CHECK(unimplemented.status == StatusCode::Error);  // an error on both sides
    auto not_found = describe(cap.exchanges[2]);
    CHECK(iattr(not_found, "rpc.grpc.status_code") == 5);
    // NOT_FOUND is the client's error, not the server's.
    CHECK(not_found.status == (side == Role::Client ? StatusCode::Error : StatusCode::Unset));
    const MetricFamily* family = cap.exchanges[0].protocol->metric_family(ok.kind);
    REQUIRE(family != nullptr);
    CHECK(family->name == (side == Role::Server ? "rpc.server.duration" : "rpc.client.duration"));
  }
}

TEST_CASE("http2: gRPC messages are counted across DATA frames, padding left out") {
  Capture cap;
  Socket s(cap, 16, Role::Client);
  s.open();
  handshake(s);
  s.request(grpc_request(1, "/demo.Echo/Items"));
  // Three messages (5, 0 and 4 bytes): the second's prefix is split across frames, the first
  // frame is padded with bytes that look like a prefix.
  std::string m1 = std::string("\0\0\0\0\5", 5) + "hello";
  std::string m2 = std::string("\0\0\0\0\0", 5);
  std::string m3 = std::string("\0\0\0\0\4", 5) + "abcd";
  s.response(
      frame(kHeaders, kEndHeaders, 1, indexed(kStatus200) + lit(kContentType, "application/grpc")));
  s.response(frame(kData, kPadded, 1,
                   std::string(1, '\x06') + m1 + m2.substr(0, 2) + std::string(6, '\0')));
  s.response(frame(kData, 0, 1, m2.substr(2) + m3));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 1, lit("grpc-status", "0")));
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(http2_of(cap.exchanges[0]).request_messages == 1);
  CHECK(http2_of(cap.exchanges[0]).response_messages == 3);
  CHECK(iattr(describe(cap.exchanges[0]), "weft.grpc.response_messages") == 3);
}

TEST_CASE("http2: floods, oversized blocks and malformed frames are counted, never fatal") {
  Capture cap;
  Socket s(cap, 14, Role::Server);
  s.open();
  handshake(s);
  // 3000 streams opened and never answered: beyond the cap they are counted, not kept.
  std::string flood;
  for (uint32_t id = 1; id < 6000; id += 2)
    flood += frame(kHeaders, kEndHeaders | kEndStream, id, request_block("GET", "/f"));
  s.io_all(Direction::Recv, flood, 4000);
  // A header block of 80 KiB in CONTINUATION frames.
  std::string big = lit("x-big", std::string(80 * 1024, 'b'));
  s.request(frame(kHeaders, 0, 6001, indexed(kGet) + big.substr(0, 16000)));
  for (size_t at = 16000; at < big.size(); at += 16000)
    s.request(frame(kContinuation, at + 16000 >= big.size() ? kEndHeaders | kEndStream : 0, 6001,
                    big.substr(at, 16000)));
  // A PING of 7 bytes is malformed: framing is found again at the next syscall.
  s.request(frame(kPing, 0, 0, "1234567"));
  s.request(frame(kHeaders, kEndHeaders | kEndStream, 6003, request_block("GET", "/after")));
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 6003, indexed(kStatus200)));
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(text(cap.exchanges[0]) == "GET /after -> 200");
  const auto& c = h2_counters(cap);
  CHECK(c.truncated_messages >= 1);
  CHECK(c.parse_errors >= 1);
  CHECK(c.unmatched_requests == 3000 + 1);
}

TEST_CASE("http2: detection by the preface and by frames, never on HTTP/1 or Redis bytes") {
  using protocols::Detection;
  auto detect = [](std::string_view b) {
    return protocols::http2::detect({reinterpret_cast<const uint8_t*>(b.data()), b.size()});
  };
  CHECK(detect(kPreface).detection == Detection::Requests);
  CHECK(detect(kPreface.substr(0, 10)).detection == Detection::NeedMore);
  CHECK(detect("GET / HTTP/1.1\r\n\r\n").detection == Detection::No);
  CHECK(detect("POST / HTTP/1.1\r\n\r\n").detection == Detection::No);
  CHECK(detect("HTTP/1.1 200 OK\r\n\r\n").detection == Detection::No);
  CHECK(detect("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").detection == Detection::No);
  CHECK(detect("+OK\r\n").detection == Detection::No);
  CHECK(detect(std::string("\x16\x03\x01\x02\x00", 5)).detection == Detection::No);
  // A server's SETTINGS alone says nothing of direction yet.
  CHECK(detect(settings()).detection == Detection::NeedMore);
  std::string req = frame(kHeaders, kEndHeaders, 5, request_block("GET", "/"));
  auto r = detect(settings() + req);
  CHECK(r.detection == Detection::Requests);
  CHECK(r.confidence == protocols::Confidence::Strong);
  CHECK(detect(frame(kHeaders, kEndHeaders, 5, indexed(kStatus200))).detection ==
        Detection::Responses);
  // The same bytes with an undefined flag are no frame.
  CHECK(detect(frame(kHeaders, 0x40 | kEndHeaders, 5, indexed(kStatus200))).detection ==
        Detection::No);
}

TEST_CASE("http2: a DATA payload beyond 16 KiB is skipped without copying (skip verdict)") {
  Capture cap;
  std::vector<CaptureVerdict> verdicts;
  cap.on_verdict = [&](uint64_t, const CaptureVerdict& v) { verdicts.push_back(v); };
  Socket s(cap, 15, Role::Server);
  s.open();
  // The server allows frames of up to 1 MiB.
  s.request(std::string(kPreface) + settings());
  s.response(settings(setting(0x5, 1 << 20)));
  std::string body(300 * 1024, 'q');
  std::string req = frame(kHeaders, kEndHeaders, 1, request_block("PUT", "/big")) +
                    frame(kData, kEndStream, 1, body);
  s.io(Direction::Recv, req.substr(0, 4096));
  REQUIRE_FALSE(verdicts.empty());
  s.io_len(Direction::Recv, {}, req.size() - 4096);  // the rest, reported without its bytes
  s.response(frame(kHeaders, kEndHeaders | kEndStream, 1, indexed(kStatus204)));
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(text(cap.exchanges[0]) == "PUT /big -> 204");
  CHECK(cap.exchanges[0].request.body_bytes == body.size());
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

using namespace h2;
using protocols::http2::http2_of;

std::string grpc_message(std::string_view body) {
  return std::string("\0\0\0", 3) + static_cast<char>(body.size() >> 8) +
         static_cast<char>(body.size()) + std::string(body);
}

// A gRPC call on a connection joined late: its :path, content-type, grpc-status and
// response content-type are dynamic entries from before weft joined (indexes 62-65).
void late_grpc_call(Socket& s, uint32_t stream, std::string_view request_data,
                    std::string_view response_end) {
  s.request(frame(kHeaders, kEndHeaders, stream,
                  indexed(kPost) + indexed(kHttp) + indexed(62) + indexed(63)) +
            frame(kData, kEndStream, stream, request_data));
  s.response(frame(kHeaders, kEndHeaders, stream, indexed(kStatus200) + indexed(64)) +
             frame(kData, 0, stream, grpc_message("pong")) + std::string(response_end));
}

TEST_CASE("http2: a late-joined call is gRPC by its framing; an unread status stays unknown") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 21, side);
    s.lose(s.request_dir(), 3000);
    s.lose(s.response_dir(), 3000);
    // Trailers whose grpc-status is an entry weft never saw.
    late_grpc_call(s, 41, grpc_message("ping"),
                   frame(kHeaders, kEndHeaders | kEndStream, 41, indexed(65)));
    // A status sent as a literal after weft joined is read.
    late_grpc_call(s, 43, grpc_message("ping") + grpc_message("again"),
                   frame(kHeaders, kEndHeaders | kEndStream, 43, lit("grpc-status", "5")));
    // Not gRPC: the response ends with DATA, not trailers.
    late_grpc_call(s, 45, grpc_message("ping"), frame(kData, kEndStream, 45, ""));
    // Not gRPC: the request body is not length-prefixed messages (a flag byte of 'x').
    late_grpc_call(s, 47, "x1234 not a message",
                   frame(kHeaders, kEndHeaders | kEndStream, 47, indexed(65)));
    // Not gRPC: the last message's length runs past the end of the request.
    late_grpc_call(s, 49, grpc_message("ping").substr(0, 7),
                   frame(kHeaders, kEndHeaders | kEndStream, 49, indexed(65)));
    s.close();
    REQUIRE(cap.exchanges.size() == 5);
    const auto& unknown = http2_of(cap.exchanges[0]);
    CHECK(cap.exchanges[0].protocol_name() == "grpc");
    CHECK(unknown.grpc_inferred);
    CHECK(unknown.grpc_status == -1);
    CHECK(unknown.grpc_status_unknown);
    CHECK(unknown.request_messages == 1);
    CHECK(unknown.response_messages == 1);
    CHECK(text(cap.exchanges[0]) == "POST ? -> 200 grpc ? [gRPC by framing] [4 fields unknown]");
    auto d = describe(cap.exchanges[0]);
    CHECK(d.name == "grpc");
    CHECK(sattr(d, "rpc.system") == "grpc");
    CHECK(iattr(d, "rpc.grpc.status_code") == -1);  // absent: never guessed
    CHECK(battr(d, "weft.grpc.inferred"));
    CHECK(battr(d, "weft.grpc.status_unknown"));
    CHECK(d.status == StatusCode::Unset);
    CHECK(d.outcome == "?");
    const auto& found = http2_of(cap.exchanges[1]);
    CHECK(cap.exchanges[1].protocol_name() == "grpc");
    CHECK(found.grpc_status == 5);
    CHECK_FALSE(found.grpc_status_unknown);
    CHECK(found.request_messages == 2);
    for (size_t i = 2; i < 5; ++i) {
      CAPTURE(i);
      CHECK(cap.exchanges[i].protocol_name() == "http2");
      CHECK_FALSE(http2_of(cap.exchanges[i]).grpc_inferred);
    }
  }
}

TEST_CASE("http2: a GET, or a known non-gRPC content-type, is never inferred to be gRPC") {
  Capture cap;
  Socket s(cap, 22, Role::Server);
  s.lose(s.request_dir(), 100);
  s.lose(s.response_dir(), 100);
  s.request(frame(kHeaders, kEndHeaders, 51,
                  indexed(kPost) + indexed(kHttp) + lit(kPathName, "/a.B/C") +
                      lit(kContentType, "application/json")) +
            frame(kData, kEndStream, 51, grpc_message("ping")));
  s.response(frame(kHeaders, kEndHeaders, 51, indexed(kStatus200)) +
             frame(kData, 0, 51, grpc_message("pong")) +
             frame(kHeaders, kEndHeaders | kEndStream, 51, indexed(65)));
  s.close();
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].protocol_name() == "http2");
}

const std::string kUpgradeRequest =
    "GET /a HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";

TEST_CASE("http2: h2c by HTTP/1.1 Upgrade: the upgrade request is stream 1's exchange") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 23, side);
    s.open();
    s.request(kUpgradeRequest);
    // The 101 and the server's preface (SETTINGS) in one write, as servers often send them.
    s.response("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n" +
               settings(setting(0x3, 100)));
    s.request(std::string(kPreface) + settings() + frame(kSettings, kAck, 0, ""));
    s.response(frame(kSettings, kAck, 0, "") +
               frame(kHeaders, kEndHeaders, 1, indexed(kStatus200) + inc(kContentType, "text/x")) +
               frame(kData, kEndStream, 1, "hello"));
    s.request(frame(kHeaders, kEndHeaders | kEndStream, 3, request_block("GET", "/b")));
    s.response(frame(kHeaders, kEndHeaders | kEndStream, 3, indexed(kStatus404)));
    s.close();
    REQUIRE(cap.exchanges.size() == 2);
    for (const Exchange& ex : cap.exchanges) CHECK(ex.protocol_name() == "http2");
    const auto& first = http2_of(cap.exchanges[0]);
    CHECK(first.stream_id == 1);
    CHECK(first.upgraded);
    CHECK(text(cap.exchanges[0]) == "GET /a -> 200 [h2c upgrade]");
    CHECK(first.authority == "127.0.0.1:8080");
    CHECK(cap.exchanges[0].request.stream_pos == 0);  // the HTTP/1.1 request's own bytes
    CHECK(cap.exchanges[0].response.body_bytes == 5);
    auto d = describe(cap.exchanges[0]);
    REQUIRE(d.context_carrier != nullptr);
    CHECK(find_header(*d.context_carrier, "traceparent") != nullptr);
    CHECK(sattr(d, "network.protocol.version") == "2");
    CHECK(battr(d, "weft.http2.upgraded"));
    CHECK(text(cap.exchanges[1]) == "GET /b -> 404");
    CHECK(h2_counters(cap).parse_errors == 0);
  }
}

TEST_CASE("http2: an upgrade the server declines, or to another protocol, stays HTTP/1") {
  // Declined: answered in HTTP/1.1, and the connection goes on in HTTP/1.1.
  Capture cap;
  Socket s(cap, 24, Role::Server);
  s.open();
  s.request(kUpgradeRequest);
  s.response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  s.request("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
  s.response("HTTP/1.1 204 No Content\r\n\r\n");
  s.close();
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(cap.exchanges[0].protocol_name() == "http1");
  CHECK(cap.exchanges[1].protocol_name() == "http1");
  // WebSocket: no protocol takes the token; the handshake is HTTP/1's exchange.
  Capture ws;
  Socket w(ws, 25, Role::Server);
  w.open();
  w.request("GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  w.response(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  w.request(std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  w.close();
  REQUIRE(ws.exchanges.size() == 1);
  CHECK(ws.exchanges[0].protocol_name() == "http1");
}

}  // namespace
}  // namespace weft::test
