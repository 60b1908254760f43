// How events are shown: base64, one JSON object per event, one text line per event.
#include <doctest/doctest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/event_format.h"
#include "test_helpers.h"

namespace weft::cli {
namespace {

using nlohmann::json;
using test::base_event;
using test::bytes;
using test::data_event;
using test::endpoint;

// 2023-11-14T22:13:20.123456789Z
constexpr uint64_t kWallNs = 1'700'000'000'123'456'789ull;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Standard base64 with padding; anything else makes the test fail.
std::vector<uint8_t> base64_decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  REQUIRE(text.size() % 4 == 0);
  std::vector<uint8_t> out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    size_t value = kAlphabet.find(c);
    REQUIRE(value != std::string::npos);
    bits = bits << 6 | static_cast<uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out.push_back(static_cast<uint8_t>(bits >> count & 0xff));
    }
  }
  return out;
}

json parse(const std::string& line) {
  CHECK(line.find('\n') == std::string::npos);  // one event, one line
  json j;
  REQUIRE_NOTHROW(j = json::parse(line));
  REQUIRE(j.is_object());
  return j;
}

Event request() {
  Event e = data_event(99, 5'000, Direction::Send, 1'000, 18);
  e.wall_ns = kWallNs;
  e.tcp_seq = 123'456;
  e.data = bytes("GET / HTTP/1.1\r\n\r\n");
  e.gap_before = 7;
  return e;
}

TEST_CASE("base64: RFC 4648 vectors and binary bytes") {
  CHECK(base64_encode({}) == "");
  CHECK(base64_encode(bytes("f")) == "Zg==");
  CHECK(base64_encode(bytes("fo")) == "Zm8=");
  CHECK(base64_encode(bytes("foo")) == "Zm9v");
  CHECK(base64_encode(bytes("foob")) == "Zm9vYg==");
  CHECK(base64_encode(bytes("fooba")) == "Zm9vYmE=");
  CHECK(base64_encode(bytes("foobar")) == "Zm9vYmFy");
  CHECK(base64_encode({0x00, 0xff}) == "AP8=");
  CHECK(base64_encode({0x00}) == "AA==");
  CHECK(base64_encode({0xff, 0xff, 0xff}) == "////");
  CHECK(base64_encode({0xfb, 0xef, 0xbe}) == "++++");
  CHECK(base64_encode({0x00, 0x00, 0x00}) == "AAAA");
}

TEST_CASE("base64: every byte value survives encoding") {
  std::vector<uint8_t> all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<uint8_t>(i));
  for (size_t len : {size_t{254}, size_t{255}, size_t{256}}) {
    std::vector<uint8_t> part(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(len));
    std::string text = base64_encode(part);
    CHECK(text.size() == (len + 2) / 3 * 4);
    CHECK(base64_decode(text) == part);
  }
}

TEST_CASE("json: a data event carries the documented fields") {
  Event e = request();
  e.process = std::make_shared<ProcessInfo>(ProcessInfo{e.pid, "/usr/bin/curl"});
  json j = parse(format_event_json(e));

  CHECK(j["kind"] == "data");
  CHECK(j["time"] == "2023-11-14T22:13:20.123456789Z");
  CHECK(j["ts_ns"] == kWallNs);
  CHECK(j["mono_ns"] == 5'000);
  CHECK(j["cookie"] == 99);
  CHECK(j["pid"] == 4242);
  CHECK(j["tid"] == 4243);
  CHECK(j["comm"] == "curl");
  CHECK(j["exe"] == "/usr/bin/curl");
  CHECK(j["fd"] == 7);
  CHECK(j["role"] == "client");
  CHECK(j["family"] == "ipv4");
  CHECK(j["local"]["address"] == "127.0.0.1");
  CHECK(j["local"]["port"] == 54321);
  CHECK(j["remote"]["address"] == "10.1.2.3");
  CHECK(j["remote"]["port"] == 80);

  CHECK(j["direction"] == "send");
  CHECK(j["syscall"] == "write");
  CHECK(j["bytes"] == 18);
  CHECK(j["chunk_offset"] == 0);
  CHECK(j["stream_pos"] == 1'000);
  CHECK(j["tcp_seq"] == 123'456);
  CHECK(j["captured"] == 18);
  CHECK(j["truncated"] == false);
  CHECK(j["gap_before"] == 7);
  REQUIRE(j["data"].is_string());
  CHECK(base64_decode(j["data"].get<std::string>()) == e.data);

  CHECK_FALSE(j.contains("result"));
  CHECK_FALSE(j.contains("closed_by"));
}

TEST_CASE("json: a truncated receive with binary bytes and no position") {
  Event e = data_event(1, 1, Direction::Recv, 777, 10'000);
  e.wall_ns = kWallNs;
  e.syscall = WEFT_SYS_RECVMSG;
  e.chunk_offset = 4096;
  e.flags = WEFT_DATA_TRUNCATED | WEFT_DATA_NO_POSITION;
  e.data = {0x00, 0xff, 0x80, '"', '\\', '\n'};
  json j = parse(format_event_json(e));
  CHECK(j["direction"] == "recv");
  CHECK(j["syscall"] == "recvmsg");
  CHECK(j["bytes"] == 10'000);
  CHECK(j["chunk_offset"] == 4096);
  CHECK(j["stream_pos"].is_null());
  CHECK(j["captured"] == 6);
  CHECK(j["truncated"] == true);
  CHECK(j["exe"] == "");  // no process info
  CHECK(base64_decode(j["data"].get<std::string>()) == e.data);
}

TEST_CASE("json: an empty payload has empty data") {
  Event e = data_event(1, 1, Direction::Send, 0, 0);
  json j = parse(format_event_json(e));
  CHECK(j["data"] == "");
  CHECK(j["captured"] == 0);
  CHECK(j["stream_pos"] == 0);
}

TEST_CASE("json: time is ISO-8601 UTC with nanoseconds") {
  Event e = base_event(EventKind::Existing, 1, 1);
  SUBCASE("epoch") {
    e.wall_ns = 0;
    CHECK(parse(format_event_json(e))["time"] == "1970-01-01T00:00:00.000000000Z");
  }
  SUBCASE("leading zeroes in the fraction") {
    e.wall_ns = 951'782'400'000'000'042ull;  // 2000-02-29
    CHECK(parse(format_event_json(e))["time"] == "2000-02-29T00:00:00.000000042Z");
  }
}

TEST_CASE("json: IPv6 endpoints") {
  Event e = base_event(EventKind::Accept, 1, 1);
  e.family = AF_INET6;
  e.role = Role::Server;
  e.local = endpoint("::1", 8080);
  e.remote = endpoint("2001:db8::7", 41000);
  json j = parse(format_event_json(e));
  CHECK(j["family"] == "ipv6");
  CHECK(j["role"] == "server");
  CHECK(j["local"]["address"] == "::1");
  CHECK(j["local"]["port"] == 8080);
  CHECK(j["remote"]["address"] == "2001:db8::7");
  CHECK(j["remote"]["port"] == 41000);
}

TEST_CASE("json: connect result and error") {
  Event e = base_event(EventKind::Connect, 1, 1);
  e.duration_ns = 1'500;
  SUBCASE("refused") {
    e.result = -111;
    json j = parse(format_event_json(e));
    CHECK(j["kind"] == "connect");
    CHECK(j["result"] == -111);
    CHECK(j["error"] == "ECONNREFUSED");
    CHECK(j["duration_ns"] == 1'500);
    CHECK_FALSE(j.contains("direction"));
    CHECK_FALSE(j.contains("data"));
  }
  SUBCASE("timed out") {
    e.result = -110;
    CHECK(parse(format_event_json(e))["error"] == "ETIMEDOUT");
  }
  SUBCASE("an errno without a name") {
    e.result = -1;
    CHECK(parse(format_event_json(e))["error"] == "errno 1");
  }
  SUBCASE("connected") {
    json j = parse(format_event_json(e));
    CHECK(j["result"] == 0);
    CHECK(j["error"] == "");
  }
}

TEST_CASE("json: accept says whether it was seen at first I/O") {
  Event e = base_event(EventKind::Accept, 1, 1);
  e.duration_ns = 42;
  json j = parse(format_event_json(e));
  CHECK(j["kind"] == "accept");
  CHECK(j["queued_ns"] == 42);
  CHECK(j["at_first_io"] == false);
  e.conn_flags = WEFT_CONN_AT_FIRST_IO;
  CHECK(parse(format_event_json(e))["at_first_io"] == true);
}

TEST_CASE("json: close says who closed and the byte totals") {
  Event e = base_event(EventKind::Close, 1, 1);
  e.bytes_sent = 1ull << 40;
  e.bytes_received = 12;
  e.duration_ns = 9;
  json j = parse(format_event_json(e));
  CHECK(j["kind"] == "close");
  CHECK(j["closed_by"] == "unknown");
  CHECK(j["bytes_sent"] == 1ull << 40);
  CHECK(j["bytes_received"] == 12);
  CHECK(j["duration_ns"] == 9);
  e.closed_by = 1;
  CHECK(parse(format_event_json(e))["closed_by"] == "local");
  e.closed_by = 2;
  CHECK(parse(format_event_json(e))["closed_by"] == "peer");
  e.closed_by = 3;
  CHECK(parse(format_event_json(e))["closed_by"] == "unknown");
}

TEST_CASE("json: a comm that is not UTF-8 still gives valid JSON") {
  Event e = base_event(EventKind::Existing, 1, 1);
  e.comm = "bad\xff\xfe";
  e.comm += '"';
  json j = parse(format_event_json(e));
  REQUIRE(j["comm"].is_string());
  std::string comm = j["comm"].get<std::string>();
  CHECK(comm.rfind("bad", 0) == 0);
  CHECK(comm.back() == '"');
  CHECK(j["kind"] == "existing");
}

TEST_CASE("text: a data line shows process, tuple, syscall and an escaped preview") {
  std::string line = format_event_text(request());
  CAPTURE(line);
  CHECK(line.rfind("22:13:20.123456 data", 0) == 0);
  CHECK(contains(line, "curl[4242/4243]"));
  CHECK(contains(line, "fd=7 client"));
  CHECK(contains(line, "127.0.0.1:54321 -> 10.1.2.3:80"));
  CHECK(contains(line, "send write 18B"));
  CHECK(contains(line, "pos=1000"));
  CHECK(contains(line, "GAP=7"));
  CHECK(contains(line, R"("GET / HTTP/1.1\r\n\r\n")"));
  CHECK_FALSE(contains(line, "\r"));
  CHECK_FALSE(contains(line, "\n"));
}

TEST_CASE("text: a received, truncated chunk without position") {
  Event e = data_event(1, 1, Direction::Recv, 5, 100);
  e.wall_ns = kWallNs;
  e.chunk_offset = 64;
  e.flags = WEFT_DATA_TRUNCATED | WEFT_DATA_NO_POSITION;
  e.data = {'a', 0x00, 0x7f, '\t', '"', '\\', 0xff};
  std::string line = format_event_text(e);
  CAPTURE(line);
  CHECK(contains(line, "127.0.0.1:54321 <- 10.1.2.3:80"));
  CHECK(contains(line, "recv read 100B chunk@64"));
  CHECK(contains(line, "pos=?"));
  CHECK(contains(line, "captured=7"));
  CHECK(contains(line, R"("a\x00\x7f\t\"\\\xff")"));
  CHECK_FALSE(contains(line, "GAP="));
}

TEST_CASE("text: a long payload preview is cut at 64 bytes") {
  Event e = data_event(1, 1, Direction::Send, 0, 100);
  e.data.assign(100, 'x');
  std::string line = format_event_text(e);
  CHECK(contains(line, "\"" + std::string(64, 'x') + "\"..."));
  CHECK_FALSE(contains(line, std::string(65, 'x')));

  e.data.assign(64, 'y');
  line = format_event_text(e);
  CHECK(contains(line, "\"" + std::string(64, 'y') + "\""));
  CHECK_FALSE(contains(line, "..."));
}

TEST_CASE("text: connection lines") {
  Event e = base_event(EventKind::Connect, 1, 1);
  e.result = -111;
  e.duration_ns = 2'500'000;
  std::string line = format_event_text(e);
  CAPTURE(line);
  CHECK(contains(line, "connect"));
  CHECK(contains(line, "curl[4242/4243]"));
  CHECK(contains(line, "127.0.0.1:54321 -> 10.1.2.3:80 ECONNREFUSED 2.500ms"));

  e.result = 0;
  CHECK(contains(format_event_text(e), "-> 10.1.2.3:80 ok"));

  Event close = base_event(EventKind::Close, 1, 1);
  close.closed_by = 2;
  close.bytes_sent = 10;
  close.bytes_received = 20;
  CHECK(contains(format_event_text(close), "by peer sent=10 received=20"));

  Event accept = base_event(EventKind::Accept, 1, 1);
  accept.family = AF_INET6;
  accept.local = endpoint("::1", 443);
  accept.remote = endpoint("::1", 50000);
  accept.duration_ns = 1'000;
  line = format_event_text(accept);
  CHECK(contains(line, "[::1]:443 -> [::1]:50000 queued 0.001ms"));
  accept.conn_flags = WEFT_CONN_AT_FIRST_IO;
  CHECK(contains(format_event_text(accept), "first I/O after 0.001ms"));
}

}  // namespace
}  // namespace weft::cli
