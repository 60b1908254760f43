// HTTP/2 framing (RFC 9113, section 4 and 6): the 9-byte frame header, the frame types and
// flags weft reads, and how plausible a header is (which decides where frames begin when weft
// joins a connection late or loses its framing).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace weft::protocols::http2 {

inline constexpr size_t kFrameHeaderSize = 9;
// The client connection preface (RFC 9113, 3.4).
inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// SETTINGS_MAX_FRAME_SIZE's initial value, and the largest any peer may announce.
inline constexpr uint32_t kDefaultMaxFrameSize = 16384;
inline constexpr uint32_t kLargestMaxFrameSize = (1u << 24) - 1;

enum class FrameType : uint8_t {
  Data = 0x0,
  Headers = 0x1,
  Priority = 0x2,
  RstStream = 0x3,
  Settings = 0x4,
  PushPromise = 0x5,
  Ping = 0x6,
  Goaway = 0x7,
  WindowUpdate = 0x8,
  Continuation = 0x9,
};

namespace flags {
inline constexpr uint8_t kEndStream = 0x1;   // DATA, HEADERS
inline constexpr uint8_t kAck = 0x1;         // SETTINGS, PING
inline constexpr uint8_t kEndHeaders = 0x4;  // HEADERS, PUSH_PROMISE, CONTINUATION
inline constexpr uint8_t kPadded = 0x8;      // DATA, HEADERS, PUSH_PROMISE
inline constexpr uint8_t kPriority = 0x20;   // HEADERS
}  // namespace flags

// SETTINGS identifiers weft uses.
inline constexpr uint16_t kSettingsHeaderTableSize = 0x1;
inline constexpr uint16_t kSettingsMaxFrameSize = 0x5;

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  bool reserved = false;  // the stream identifier's reserved bit (senders never set it)
  uint32_t stream = 0;

  FrameType kind() const { return static_cast<FrameType>(type); }
  bool has(uint8_t flag) const { return (flags & flag) != 0; }
  uint64_t wire_size() const { return kFrameHeaderSize + length; }
};

// `bytes` holds at least kFrameHeaderSize bytes.
FrameHeader parse_frame_header(std::span<const uint8_t> bytes);

// How sure a frame header must be.
enum class Strictness {
  // Inside a connection whose frame boundaries are known: any length up to the receiver's
  // maximum frame size, and extension frame types (0xa-0x10, which receivers ignore).
  Framed,
  // Where a frame boundary is only guessed (joining late, after framing was lost): one of the
  // ten RFC 9113 types with only its defined flags, its stream rules and its length rules, at
  // most the initial maximum frame size. Text protocols never pass: their first byte is
  // printable, which makes a length beyond 2 MiB.
  Guessed,
};

bool plausible(const FrameHeader& h, Strictness strictness, uint32_t max_frame_size);

}  // namespace weft::protocols::http2
