// The TLS handshake's one cleartext answer: the ServerHello says which protocol version and
// cipher suite the two ends chose (in TLS 1.2 and 1.3 alike), without asking the library.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace weft::conn {

struct TlsChoice {
  uint16_t version =
      0;                // 0x0304: TLS 1.3 (the supported_versions extension, else the legacy field)
  uint16_t cipher = 0;  // IANA cipher suite number
};

// The choice in `bytes`, the first bytes the server sent on a connection (a handshake record
// starting with a ServerHello); nothing when they are not one or are cut short.
std::optional<TlsChoice> parse_server_hello(std::span<const uint8_t> bytes);

// "1.3", "1.2", ...; empty for a version weft does not name.
std::string_view tls_version_text(uint16_t version);
// The IANA name of a cipher suite ("TLS_AES_128_GCM_SHA256"); empty for one not in weft's table
// of the common suites.
std::string_view tls_cipher_name(uint16_t cipher);

}  // namespace weft::conn
