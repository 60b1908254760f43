// Small builders shared by the unit tests: endpoints, events and byte strings.
#pragma once

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "weft/event.h"
#include "weft_events.h"

namespace weft::test {

inline std::vector<uint8_t> bytes(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

// "10.0.0.1" becomes the v4-mapped ::ffff:10.0.0.1; anything else is parsed as IPv6.
inline Endpoint endpoint(const char* address, uint16_t port) {
  Endpoint e;
  e.port = port;
  in_addr v4{};
  if (inet_pton(AF_INET, address, &v4) == 1) {
    e.addr[10] = 0xff;
    e.addr[11] = 0xff;
    std::memcpy(e.addr.data() + 12, &v4, 4);
  } else {
    inet_pton(AF_INET6, address, e.addr.data());
  }
  return e;
}

// Fields every event carries, set to distinct non-default values.
inline Event base_event(EventKind kind, uint64_t cookie, uint64_t mono_ns) {
  Event e;
  e.kind = kind;
  e.mono_ns = mono_ns;
  e.cookie = cookie;
  e.pid = 4242;
  e.tid = 4243;
  e.fd = 7;
  e.role = Role::Client;
  e.comm = "curl";
  e.family = AF_INET;
  e.local = endpoint("127.0.0.1", 54321);
  e.remote = endpoint("10.1.2.3", 80);
  return e;
}

// One whole syscall (chunk_offset 0) moving `len` bytes at stream position `pos`.
inline Event data_event(uint64_t cookie, uint64_t mono_ns, Direction direction, uint64_t pos,
                        uint32_t len) {
  Event e = base_event(EventKind::Data, cookie, mono_ns);
  e.direction = direction;
  e.stream_pos = pos;
  e.syscall_len = len;
  e.syscall = direction == Direction::Send ? WEFT_SYS_WRITE : WEFT_SYS_READ;
  return e;
}

inline Event conn_event(EventKind kind, uint64_t cookie, uint64_t mono_ns) {
  return base_event(kind, cookie, mono_ns);
}

// Every field a record carries (wall_ns, process and gap_before are not part of a record).
inline void check_same_record(const Event& got, const Event& want) {
  CHECK(got.kind == want.kind);
  CHECK(got.mono_ns == want.mono_ns);
  CHECK(got.cookie == want.cookie);
  CHECK(got.pid == want.pid);
  CHECK(got.tid == want.tid);
  CHECK(got.fd == want.fd);
  CHECK(got.role == want.role);
  CHECK(got.comm == want.comm);
  CHECK(got.family == want.family);
  CHECK(got.local.addr == want.local.addr);
  CHECK(got.local.port == want.local.port);
  CHECK(got.remote.addr == want.remote.addr);
  CHECK(got.remote.port == want.remote.port);
  if (want.kind == EventKind::Data) {
    CHECK(got.direction == want.direction);
    CHECK(got.stream_pos == want.stream_pos);
    CHECK(got.tcp_seq == want.tcp_seq);
    CHECK(got.syscall_len == want.syscall_len);
    CHECK(got.chunk_offset == want.chunk_offset);
    CHECK(got.syscall == want.syscall);
    CHECK(got.flags == want.flags);
    CHECK(got.data == want.data);
  } else {
    CHECK(got.result == want.result);
    CHECK(got.closed_by == want.closed_by);
    CHECK(got.conn_flags == want.conn_flags);
    CHECK(got.duration_ns == want.duration_ns);
    CHECK(got.bytes_sent == want.bytes_sent);
    CHECK(got.bytes_received == want.bytes_received);
  }
}

}  // namespace weft::test
