// decode_event/encode_event: the one place raw kernel records become Events.
#include <arpa/inet.h>
#include <doctest/doctest.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "capture/event_codec.h"
#include "test_helpers.h"
#include "weft/event.h"
#include "weft_events.h"

namespace weft {
namespace {

using test::base_event;
using test::bytes;
using test::check_same_record;
using test::endpoint;

Event data_with_payload() {
  Event e = base_event(EventKind::Data, 0x1122334455667788ull, 123456789);
  e.direction = Direction::Recv;
  e.stream_pos = 1u << 20;
  e.tcp_seq = 0xdeadbeef;
  e.syscall_len = 4000;
  e.chunk_offset = 0;
  e.syscall = WEFT_SYS_RECVFROM;
  e.flags = WEFT_DATA_TRUNCATED;
  e.data = bytes("HTTP/1.1 200 OK\r\n\r\n");
  e.data.push_back(0x00);
  e.data.push_back(0xff);
  return e;
}

Event round_trip(const Event& e) {
  std::string error;
  std::optional<Event> decoded = decode_event(encode_event(e), &error);
  REQUIRE_MESSAGE(decoded.has_value(), error);
  CHECK(error.empty());
  return *decoded;
}

template <typename T>
void patch(std::vector<uint8_t>& raw, size_t offset, T value) {
  REQUIRE(offset + sizeof(T) <= raw.size());
  std::memcpy(raw.data() + offset, &value, sizeof(T));
}

// Decoding must fail, say why, and leave nothing behind.
std::string rejection(const std::vector<uint8_t>& raw) {
  std::string error;
  std::optional<Event> decoded = decode_event(raw, &error);
  CHECK_FALSE(decoded.has_value());
  CHECK_FALSE(error.empty());
  return error;
}

TEST_CASE("codec: data event with payload round-trips") {
  Event e = data_with_payload();
  std::vector<uint8_t> raw = encode_event(e);
  CHECK(raw.size() == sizeof(weft_data_event) + e.data.size());
  check_same_record(round_trip(e), e);
}

TEST_CASE("codec: data event without payload round-trips") {
  Event e = test::data_event(9, 10, Direction::Send, 0, 0);
  e.flags = WEFT_DATA_READ_FAILED;
  CHECK(encode_event(e).size() == sizeof(weft_data_event));
  Event got = round_trip(e);
  check_same_record(got, e);
  CHECK(got.data.empty());
}

TEST_CASE("codec: connection events round-trip") {
  Event e;
  SUBCASE("connect refused") {
    e = base_event(EventKind::Connect, 1, 1000);
    e.result = -111;
    e.duration_ns = 250'000;
  }
  SUBCASE("accept") {
    e = base_event(EventKind::Accept, 2, 2000);
    e.role = Role::Server;
    e.duration_ns = 12;
  }
  SUBCASE("accept seen at first I/O") {
    e = base_event(EventKind::Accept, 2, 2000);
    e.role = Role::Server;
    e.conn_flags = WEFT_CONN_AT_FIRST_IO;
  }
  SUBCASE("close with byte totals") {
    e = base_event(EventKind::Close, 3, 3000);
    e.closed_by = 2;
    e.duration_ns = 5'000'000'000ull;
    e.bytes_sent = 1ull << 33;
    e.bytes_received = 77;
    e.fd = -1;
  }
  SUBCASE("existing") {
    e = base_event(EventKind::Existing, 4, 4000);
    e.role = Role::Unknown;
  }
  CAPTURE(to_string(e.kind));
  CHECK(encode_event(e).size() == sizeof(weft_conn_event));
  check_same_record(round_trip(e), e);
}

TEST_CASE("codec: IPv6 endpoints round-trip") {
  Event e = base_event(EventKind::Connect, 5, 5000);
  e.family = AF_INET6;
  e.local = endpoint("::1", 40000);
  e.remote = endpoint("2001:db8::5", 443);
  Event got = round_trip(e);
  check_same_record(got, e);
  CHECK(got.family == AF_INET6);
  CHECK(got.local.to_string() == "[::1]:40000");
  CHECK(got.remote.to_string() == "[2001:db8::5]:443");
}

TEST_CASE("codec: comm is cut to 15 characters and stays terminated") {
  Event e = base_event(EventKind::Accept, 6, 6000);
  e.comm = "a-very-long-process-name";
  CHECK(round_trip(e).comm == "a-very-long-pro");
}

TEST_CASE("codec: an out-of-range role decodes as unknown") {
  std::vector<uint8_t> raw = encode_event(base_event(EventKind::Accept, 7, 7000));
  patch<uint8_t>(raw, offsetof(weft_event_header, role), 9);
  std::string error;
  std::optional<Event> got = decode_event(raw, &error);
  REQUIRE(got.has_value());
  CHECK(got->role == Role::Unknown);
}

TEST_CASE("endpoint: IPv4 is stored v4-mapped and printed dotted") {
  Endpoint e = endpoint("127.0.0.1", 80);
  const std::array<uint8_t, 16> mapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
  CHECK(e.addr == mapped);
  CHECK(e.is_v4());
  CHECK(e.address() == "127.0.0.1");
  CHECK(e.to_string() == "127.0.0.1:80");
  CHECK(endpoint("192.168.10.254", 65535).to_string() == "192.168.10.254:65535");
}

TEST_CASE("endpoint: every IPv4 octet value prints as inet_ntop prints it") {
  for (unsigned v = 0; v < 256; ++v) {
    CAPTURE(v);
    uint8_t octets[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(255 - v), 0,
                         static_cast<uint8_t>(v * 7)};
    Endpoint e;
    e.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, octets[0], octets[1], octets[2], octets[3]};
    char want[INET_ADDRSTRLEN] = {};
    REQUIRE(inet_ntop(AF_INET, octets, want, sizeof(want)));
    CHECK(e.address() == want);
  }
}

TEST_CASE("endpoint: IPv6 is printed in brackets") {
  Endpoint loopback = endpoint("::1", 80);
  CHECK_FALSE(loopback.is_v4());
  CHECK(loopback.address() == "::1");
  CHECK(loopback.to_string() == "[::1]:80");
  Endpoint any;  // all zeroes: the unspecified IPv6 address, not 0.0.0.0
  CHECK_FALSE(any.is_v4());
  CHECK(any.to_string() == "[::]:0");
  CHECK(endpoint("fe80::1:2", 8080).to_string() == "[fe80::1:2]:8080");
}

TEST_CASE("decode: rejects a record too short for the header") {
  std::vector<uint8_t> raw = encode_event(base_event(EventKind::Connect, 1, 1));
  raw.resize(sizeof(weft_event_header) - 1);
  CHECK(rejection(raw).find("shorter than an event header") != std::string::npos);
  CHECK(rejection({}).find("shorter than an event header") != std::string::npos);
}

TEST_CASE("decode: rejects an unknown kind") {
  std::vector<uint8_t> raw = encode_event(base_event(EventKind::Connect, 1, 1));
  patch<uint16_t>(raw, offsetof(weft_event_header, kind), 9);
  CHECK(rejection(raw).find("unknown kind 9") != std::string::npos);
  patch<uint16_t>(raw, offsetof(weft_event_header, kind), 0);
  CHECK(rejection(raw).find("unknown kind 0") != std::string::npos);
}

TEST_CASE("decode: rejects a data record whose length does not match captured") {
  std::vector<uint8_t> raw = encode_event(data_with_payload());
  SUBCASE("one byte missing") {
    raw.pop_back();
  }
  SUBCASE("one byte too many") {
    raw.push_back('x');
  }
  SUBCASE("captured says more than is there") {
    patch<uint32_t>(raw, offsetof(weft_data_event, captured), 1000);
  }
  SUBCASE("cut inside the data header") {
    raw.resize(sizeof(weft_data_event) - 4);
  }
  CHECK(rejection(raw).find("data record") != std::string::npos);
}

TEST_CASE("decode: rejects captured above WEFT_MAX_CHUNK_BYTES even when the length agrees") {
  Event e = test::data_event(1, 1, Direction::Send, 0, WEFT_MAX_CHUNK_BYTES + 1);
  e.data.assign(WEFT_MAX_CHUNK_BYTES + 1, 'z');
  std::vector<uint8_t> raw = encode_event(e);
  REQUIRE(raw.size() == sizeof(weft_data_event) + WEFT_MAX_CHUNK_BYTES + 1);
  CHECK(rejection(raw).find("captured") != std::string::npos);

  // The largest allowed chunk still decodes.
  e.data.resize(WEFT_MAX_CHUNK_BYTES);
  CHECK(round_trip(e).data.size() == WEFT_MAX_CHUNK_BYTES);
}

TEST_CASE("decode: rejects a connection record of the wrong length") {
  std::vector<uint8_t> raw = encode_event(base_event(EventKind::Close, 1, 1));
  SUBCASE("short") {
    raw.pop_back();
  }
  SUBCASE("long") {
    raw.push_back(0);
  }
  CHECK(rejection(raw).find("wrong length") != std::string::npos);
}

TEST_CASE("decode: rejects a data record with an unknown direction") {
  std::vector<uint8_t> raw = encode_event(data_with_payload());
  patch<uint8_t>(raw, offsetof(weft_data_event, direction), 2);
  CHECK(rejection(raw).find("direction") != std::string::npos);
}

TEST_CASE("decode: a null error pointer is allowed") {
  std::vector<uint8_t> raw = encode_event(data_with_payload());
  raw.pop_back();
  CHECK_FALSE(decode_event(raw, nullptr).has_value());
  CHECK(decode_event(encode_event(data_with_payload()), nullptr).has_value());
}

TEST_CASE("event: syscall position, truncation and position flags") {
  Event e = test::data_event(1, 1, Direction::Send, 10'000, 20'000);
  e.chunk_offset = 8192;
  CHECK(e.syscall_pos() == 10'000 - 8192);
  e.chunk_offset = 0;
  CHECK(e.syscall_pos() == 10'000);

  CHECK_FALSE(e.truncated());
  CHECK(e.has_position());
  e.flags = WEFT_DATA_TRUNCATED;
  CHECK(e.truncated());
  CHECK(e.has_position());
  e.flags = WEFT_DATA_NO_POSITION;
  CHECK_FALSE(e.truncated());
  CHECK_FALSE(e.has_position());
  e.flags = WEFT_DATA_TRUNCATED | WEFT_DATA_NO_POSITION | WEFT_DATA_READ_FAILED;
  CHECK(e.truncated());
  CHECK_FALSE(e.has_position());
}

TEST_CASE("event: accept_at_first_io reads the connection flag") {
  Event e = base_event(EventKind::Accept, 1, 1);
  CHECK_FALSE(e.accept_at_first_io());
  e.conn_flags = WEFT_CONN_AT_FIRST_IO;
  CHECK(e.accept_at_first_io());
  e.conn_flags = WEFT_CONN_AT_FIRST_IO << 1;  // some other connection flag
  CHECK_FALSE(e.accept_at_first_io());
  e.flags = 0xff;  // data flags are a different field
  e.conn_flags = 0;
  CHECK_FALSE(e.accept_at_first_io());
}

TEST_CASE("event: names of kinds, directions, roles and syscalls") {
  CHECK(std::string(to_string(EventKind::Data)) == "data");
  CHECK(std::string(to_string(EventKind::Connect)) == "connect");
  CHECK(std::string(to_string(EventKind::Accept)) == "accept");
  CHECK(std::string(to_string(EventKind::Close)) == "close");
  CHECK(std::string(to_string(EventKind::Existing)) == "existing");
  CHECK(std::string(to_string(Direction::Send)) == "send");
  CHECK(std::string(to_string(Direction::Recv)) == "recv");
  CHECK(std::string(to_string(Role::Client)) == "client");
  CHECK(std::string(to_string(Role::Server)) == "server");
  CHECK(std::string(to_string(Role::Unknown)) == "unknown");
  CHECK(std::string(syscall_name(WEFT_SYS_READ)) == "read");
  CHECK(std::string(syscall_name(WEFT_SYS_SENDTO)) == "sendto");
  CHECK(std::string(syscall_name(WEFT_SYS_SPLICE)) == "splice");
  CHECK(std::string(syscall_name(WEFT_SYS_TLS_READ)) == "SSL_read");
  CHECK(std::string(syscall_name(WEFT_SYS_COUNT)) == "unknown");
  CHECK(std::string(syscall_name(0xffff)) == "unknown");
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

TEST_CASE("decode into a reused event: nothing of the previous record is left") {
  Event reused;
  Event data = data_with_payload();
  REQUIRE(decode_event_into(encode_event(data), reused, nullptr));
  reused.gap_before = 7;  // set downstream (the orderer) on the event the source reuses
  const uint8_t* buffer = reused.data.data();

  Event close = test::base_event(EventKind::Close, 42, 99);
  close.closed_by = 2;
  close.bytes_sent = 1000;
  close.bytes_received = 2000;
  REQUIRE(decode_event_into(encode_event(close), reused, nullptr));
  test::check_same_record(reused, close);
  CHECK(reused.data.empty());
  CHECK(reused.gap_before == 0);
  CHECK(reused.stream_pos == 0);
  CHECK(reused.syscall_len == 0);
  CHECK(reused.flags == 0);

  // Back to a data record: the connection fields are reset, the payload buffer is reused.
  REQUIRE(decode_event_into(encode_event(data), reused, nullptr));
  test::check_same_record(reused, data);
  CHECK(reused.data == data.data);
  CHECK(reused.data.data() == buffer);
  CHECK(reused.bytes_sent == 0);
  CHECK(reused.closed_by == 0);
}

}  // namespace
}  // namespace weft
