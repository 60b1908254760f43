#include "conn/tls_hello.h"

#include <algorithm>
#include <array>
#include <utility>

namespace weft::conn {
namespace {

constexpr uint8_t kHandshakeRecord = 0x16;
constexpr uint8_t kServerHello = 0x02;
constexpr uint16_t kSupportedVersions = 0x002b;

// Reads big-endian fields off the front of a byte span; any read past the end fails them all.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  bool ok() const { return ok_; }
  uint32_t number(size_t width) {
    if (bytes_.size() < width) return fail();
    uint32_t v = 0;
    for (size_t i = 0; i < width; ++i) v = v << 8 | bytes_[i];
    bytes_ = bytes_.subspan(width);
    return v;
  }
  std::span<const uint8_t> take(size_t n) {
    if (bytes_.size() < n) {
      fail();
      return {};
    }
    auto out = bytes_.first(n);
    bytes_ = bytes_.subspan(n);
    return out;
  }
  bool empty() const { return bytes_.empty(); }

 private:
  uint32_t fail() {
    ok_ = false;
    bytes_ = {};
    return 0;
  }
  std::span<const uint8_t> bytes_;
  bool ok_ = true;
};

// TLS 1.3's answer to supported_versions, where a server that chose 1.3 says so (the legacy
// field then reads 1.2).
std::optional<uint16_t> selected_version(std::span<const uint8_t> extensions) {
  Reader r(extensions);
  while (r.ok() && !r.empty()) {
    uint16_t type = static_cast<uint16_t>(r.number(2));
    std::span<const uint8_t> data = r.take(r.number(2));
    if (r.ok() && type == kSupportedVersions && data.size() == 2)
      return static_cast<uint16_t>(data[0] << 8 | data[1]);
  }
  return std::nullopt;
}

}  // namespace

std::optional<TlsChoice> parse_server_hello(std::span<const uint8_t> bytes) {
  Reader record(bytes);
  if (record.number(1) != kHandshakeRecord) return std::nullopt;
  record.number(2);  // the record layer's version: 0x0303 whatever was chosen
  // The ServerHello may not be the record's only message, and the capture may cut the record:
  // read what the hello needs from what is there.
  size_t record_length = record.number(2);
  if (!record.ok()) return std::nullopt;
  Reader hello(record.take(std::min<size_t>(record_length, bytes.size() - 5)));
  if (hello.number(1) != kServerHello) return std::nullopt;
  hello.number(3);                                                     // message length
  auto known = [](uint16_t v) { return v >= 0x0300 && v <= 0x0304; };  // SSL 3.0 .. TLS 1.3
  TlsChoice choice;
  choice.version = static_cast<uint16_t>(hello.number(2));
  hello.take(32);               // random
  hello.take(hello.number(1));  // legacy session id
  choice.cipher = static_cast<uint16_t>(hello.number(2));
  hello.number(1);  // compression method
  if (!hello.ok() || !known(choice.version)) return std::nullopt;
  if (!hello.empty()) {
    std::span<const uint8_t> extensions = hello.take(hello.number(2));
    if (!hello.ok()) return std::nullopt;
    if (auto v = selected_version(extensions)) choice.version = *v;
  }
  if (!known(choice.version)) return std::nullopt;
  return choice;
}

std::string_view tls_version_text(uint16_t version) {
  switch (version) {
    case 0x0304:
      return "1.3";
    case 0x0303:
      return "1.2";
    case 0x0302:
      return "1.1";
    case 0x0301:
      return "1.0";
    default:
      return {};
  }
}

std::string_view tls_cipher_name(uint16_t cipher) {
  static constexpr std::array<std::pair<uint16_t, std::string_view>, 14> kNames = {{
      {0x1301, "TLS_AES_128_GCM_SHA256"},
      {0x1302, "TLS_AES_256_GCM_SHA384"},
      {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
      {0x1304, "TLS_AES_128_CCM_SHA256"},
      {0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
      {0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
      {0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
      {0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
      {0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
      {0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
      {0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
      {0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
      {0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
      {0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
  }};
  for (const auto& [number, name] : kNames)
    if (number == cipher) return name;
  return {};
}

}  // namespace weft::conn
