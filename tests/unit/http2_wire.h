// HTTP/2 frames and HPACK encodings written by hand for the tests (RFC 9113, RFC 7541): what a
// peer would put on the wire, byte by byte, so the tests say exactly which encoding they send.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/http2/huffman_table.h"

namespace weft::test::h2 {

inline constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRstStream = 3,
  kSettings = 4,
  kPushPromise = 5,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9
};
enum : uint8_t { kEndStream = 0x1, kAck = 0x1, kEndHeaders = 0x4, kPadded = 0x8, kPrio = 0x20 };

inline std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  size_t n = payload.size();
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += u32(stream);
  f += payload;
  return f;
}

// An HPACK integer with an N-bit prefix, the prefix's high bits set to `first`.
inline std::string integer(uint8_t first, int prefix, uint64_t value) {
  std::string out;
  const uint64_t max = (1u << prefix) - 1;
  if (value < max) {
    out += static_cast<char>(first | value);
    return out;
  }
  out += static_cast<char>(first | max);
  value -= max;
  while (value >= 128) {
    out += static_cast<char>((value % 128) | 0x80);
    value /= 128;
  }
  out += static_cast<char>(value);
  return out;
}

inline std::string huffman(std::string_view s) {
  std::string out;
  uint64_t bits = 0;
  int n = 0;
  for (unsigned char c : s) {
    bits = (bits << protocols::http2::kHuffmanLengths[c]) | protocols::http2::kHuffmanCodes[c];
    n += protocols::http2::kHuffmanLengths[c];
    while (n >= 8) {
      out += static_cast<char>(bits >> (n - 8));
      n -= 8;
    }
  }
  if (n > 0) out += static_cast<char>((bits << (8 - n)) | ((1u << (8 - n)) - 1));
  return out;
}

inline std::string str(std::string_view s, bool huff = false) {
  if (huff) {
    std::string h = huffman(s);
    return integer(0x80, 7, h.size()) + h;
  }
  return integer(0, 7, s.size()) + std::string(s);
}

// RFC 7541, 6.1: an indexed field.
inline std::string indexed(uint64_t index) {
  return integer(0x80, 7, index);
}
// 6.2.1: literal with incremental indexing, the name indexed (name_index > 0) or literal.
inline std::string inc(uint64_t name_index, std::string_view value, bool huff = false) {
  return integer(0x40, 6, name_index) + str(value, huff);
}
inline std::string inc(std::string_view name, std::string_view value, bool huff = false) {
  return integer(0x40, 6, 0) + str(name, huff) + str(value, huff);
}
// 6.2.2: literal without indexing.
inline std::string lit(uint64_t name_index, std::string_view value, bool huff = false) {
  return integer(0x00, 4, name_index) + str(value, huff);
}
inline std::string lit(std::string_view name, std::string_view value, bool huff = false) {
  return integer(0x00, 4, 0) + str(name, huff) + str(value, huff);
}
// 6.3: dynamic table size update.
inline std::string size_update(uint64_t size) {
  return integer(0x20, 5, size);
}

// Static table indexes used by the tests.
enum : uint8_t {
  kAuthority = 1,
  kGet = 2,
  kPost = 3,
  kPathRoot = 4,
  kHttp = 6,
  kStatus200 = 8,
  kStatus204 = 9,
  kStatus404 = 13,
  kStatus500 = 14,
  kContentType = 31,
  kUserAgent = 58,
  kPathName = 4,
};

// A request block with only static indexes and literals without indexing: it decodes alone,
// wherever it appears in a connection.
inline std::string request_block(std::string_view method, std::string_view path,
                                 std::string_view authority = "shop.example") {
  std::string b;
  if (method == "GET")
    b += indexed(kGet);
  else if (method == "POST")
    b += indexed(kPost);
  else
    b += lit(2, method);
  b += indexed(kHttp);
  b += path == "/" ? indexed(kPathRoot) : lit(kPathName, path);
  b += lit(kAuthority, authority);
  b += lit(kUserAgent, "conformance/1.0");
  return b;
}

inline std::string settings(std::string_view pairs = "") {
  return frame(kSettings, 0, 0, pairs);
}
inline std::string setting(uint16_t id, uint32_t value) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id)} + u32(value);
}

}  // namespace weft::test::h2
