// A protocol exchange (a request and its response) seen from one end of a connection.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weft/event.h"

namespace weft {

namespace protocols {
class Protocol;
}

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
  // The kernel's TCP sequence numbers and stream positions disagreed at least once (another
  // writer, a splice): some bytes may sit in the wrong place, so may this connection's spans.
  bool capture_degraded = false;
  // weft saw the connection's handshake, so its streams hold the conversation from its first
  // byte: state a protocol keeps per connection (a selected database) is known from the start.
  bool seen_from_start = false;
  // The streams hold a TLS library's plaintext (the socket carried TLS): spans say https.
  bool tls = false;
  // What the ServerHello of a TLS connection seen from its start said ("1.3",
  // "TLS_AES_128_GCM_SHA256"; static text), empty when weft did not see it or cannot name it.
  std::string_view tls_version;
  std::string_view tls_cipher;
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
  bool truncated = false;  // a head longer than the capture limit: fields may be missing
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;  // lowercase names

// The first value of a header (lowercase name), or null.
const std::string* find_header(const HeaderList& headers, std::string_view name);

// The protocol-specific part of an exchange (an HTTP method and status, a Redis command):
// defined, written and read only by its protocol's folder.
struct ExchangeDetails {
  virtual ~ExchangeDetails() = default;
};

struct Exchange {
  // The protocol that produced it; it also describes it to every later stage.
  const protocols::Protocol* protocol = nullptr;
  // Server: this process received the request. Client: it sent the request.
  Role side = Role::Unknown;
  std::shared_ptr<const ConnectionInfo> connection;
  MessageTiming request;
  MessageTiming response;
  std::shared_ptr<ExchangeDetails> details;

  uint64_t duration_ns() const {
    return response.end_ns > request.start_ns ? response.end_ns - request.start_ns : 0;
  }
  std::string_view protocol_name() const;  // "" without a protocol
};

}  // namespace weft
