// A protocol exchange (a request and its response) seen from one end of a connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "weft/event.h"

namespace weft {

// Who the connection belongs to, as the capture stage saw it.
struct ConnectionInfo {
  uint64_t cookie = 0;
  uint32_t pid = 0;
  int32_t fd = -1;
  std::string comm;
  std::shared_ptr<const ProcessInfo> process;
  uint16_t family = 0;
  Endpoint local;
  Endpoint remote;
  int64_t wall_offset_ns = 0;  // wall clock minus kernel monotonic clock
};

// One side (request or response) of an exchange: where it was on the wire and when.
struct MessageTiming {
  uint64_t start_ns = 0;  // kernel time of the syscall that moved the first byte
  uint64_t end_ns = 0;    // ... and the last byte
  uint32_t start_tid = 0;
  uint32_t end_tid = 0;
  uint64_t stream_pos = 0;  // position of the first byte in its direction's stream
  uint32_t tcp_seq = 0;     // TCP sequence number of the first byte
  uint64_t wire_bytes = 0;  // header and body bytes on the wire
  uint64_t body_bytes = 0;
  bool truncated = false;   // headers longer than the capture limit: fields may be missing
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;  // lowercase names

// The first value of a header (lowercase name), or null.
const std::string* find_header(const HeaderList& headers, std::string_view name);

struct HttpInfo {
  std::string method;
  std::string target;
  std::string version;  // "1.0" or "1.1"
  int status = 0;
  HeaderList request_headers;   // only those later stages use (see http1/parser.cpp)
  HeaderList response_headers;
  // The response's end was not framed by a length (read until close, or framing lost after
  // uncaptured chunked bytes): its end is where the connection or the next response began.
  bool response_end_inferred = false;
};

struct Exchange {
  std::string protocol;  // "http1"
  // Server: this process received the request. Client: it sent the request.
  Role side = Role::Unknown;
  std::shared_ptr<const ConnectionInfo> connection;
  MessageTiming request;
  MessageTiming response;
  HttpInfo http;

  uint64_t duration_ns() const { return response.end_ns > request.start_ns ? response.end_ns - request.start_ns : 0; }
};

}  // namespace weft
