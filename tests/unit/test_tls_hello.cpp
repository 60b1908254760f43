// The ServerHello read from a TLS connection's first server bytes: version and cipher, on the
// connection's spans once its plaintext is read.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "conn/tls_hello.h"
#include "http1_scenarios.h"
#include "protocols/protocol.h"

namespace weft::test {
namespace {

void put(std::vector<uint8_t>& out, uint32_t value, size_t width) {
  for (size_t i = width; i > 0; --i) out.push_back(static_cast<uint8_t>(value >> (8 * (i - 1))));
}

// A handshake record holding one ServerHello, as a server writes it.
std::vector<uint8_t> server_hello(uint16_t legacy_version, uint16_t cipher,
                                  const std::vector<uint8_t>& extensions) {
  std::vector<uint8_t> body;
  put(body, legacy_version, 2);
  body.insert(body.end(), 32, 0xab);  // random
  put(body, 32, 1);                   // legacy session id
  body.insert(body.end(), 32, 0xcd);
  put(body, cipher, 2);
  put(body, 0, 1);  // compression
  if (!extensions.empty()) {
    put(body, static_cast<uint32_t>(extensions.size()), 2);
    body.insert(body.end(), extensions.begin(), extensions.end());
  }
  std::vector<uint8_t> message{0x02};
  put(message, static_cast<uint32_t>(body.size()), 3);
  message.insert(message.end(), body.begin(), body.end());
  std::vector<uint8_t> record{0x16, 0x03, 0x03};
  put(record, static_cast<uint32_t>(message.size()), 2);
  record.insert(record.end(), message.begin(), message.end());
  return record;
}

std::vector<uint8_t> tls13_extensions() {
  std::vector<uint8_t> ext;
  put(ext, 0x0033, 2);  // key_share: 36 bytes of something
  put(ext, 36, 2);
  ext.insert(ext.end(), 36, 0x11);
  put(ext, 0x002b, 2);  // supported_versions: TLS 1.3
  put(ext, 2, 2);
  put(ext, 0x0304, 2);
  return ext;
}

TEST_CASE("TLS ServerHello: TLS 1.3 from supported_versions, 1.2 from the legacy field") {
  auto v13 = conn::parse_server_hello(server_hello(0x0303, 0x1302, tls13_extensions()));
  REQUIRE(v13);
  CHECK(v13->version == 0x0304);
  CHECK(conn::tls_version_text(v13->version) == "1.3");
  CHECK(conn::tls_cipher_name(v13->cipher) == "TLS_AES_256_GCM_SHA384");
  auto v12 = conn::parse_server_hello(server_hello(0x0303, 0xC02F, {}));
  REQUIRE(v12);
  CHECK(conn::tls_version_text(v12->version) == "1.2");
  CHECK(conn::tls_cipher_name(v12->cipher) == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  CHECK(conn::tls_cipher_name(0x1234).empty());
}

TEST_CASE("TLS ServerHello: anything else, or cut short, is no answer") {
  auto hello = server_hello(0x0303, 0x1301, tls13_extensions());
  for (size_t n = 0; n < hello.size(); n += 7) {
    CAPTURE(n);
    std::vector<uint8_t> cut(hello.begin(), hello.begin() + n);
    auto got = conn::parse_server_hello(cut);
    // Cut inside the extensions, the hello says at most the legacy version, never a wrong one.
    if (got) CHECK((got->version == 0x0304 || got->version == 0x0303));
  }
  auto alert = hello;
  alert[0] = 0x15;
  CHECK_FALSE(conn::parse_server_hello(alert));
  auto client_hello = hello;
  client_hello[5] = 0x01;
  CHECK_FALSE(conn::parse_server_hello(client_hello));
  CHECK_FALSE(conn::parse_server_hello(std::vector<uint8_t>{0x16, 0x03}));
  auto odd_version = server_hello(0x7f1c, 0x1301, {});
  CHECK_FALSE(conn::parse_server_hello(odd_version));
}

// Wire bytes: damaged hellos (random bytes changed, lengths among them, and cut anywhere) are
// read within their bounds (the sanitizer runs check it) and never yield an impossible version.
TEST_CASE("TLS ServerHello: damaged records are read within bounds") {
  auto hello = server_hello(0x0303, 0x1301, tls13_extensions());
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> bytes = hello;
    for (int flips = 1 + next() % 4; flips > 0; --flips)
      bytes[next() % bytes.size()] = next() & 0xff;
    bytes.resize(next() % (bytes.size() + 1));
    if (auto got = conn::parse_server_hello(bytes))
      CHECK((got->version >= 0x0300 && got->version <= 0x0304));
  }
}

// A connection seen from its start: the server's first bytes are its ServerHello; its spans,
// once the library's plaintext is read, carry tls.protocol.version and tls.cipher.
TEST_CASE("ConnectionTracker: a TLS connection's spans say the version and cipher it chose") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 1, side);
    s.open();
    auto hello = server_hello(0x0303, 0x1301, tls13_extensions());
    std::string client_hello = "\x16\x03\x01\x00\x05hello";
    s.request(client_hello);
    // As a client's library reads it: the record's header, then its body.
    std::string server_bytes(hello.begin(), hello.end());
    s.response(server_bytes.substr(0, 5));
    s.response(server_bytes.substr(5));
    auto plaintext = [&](Direction dir, uint64_t pos, const std::string& bytes) {
      Event e = s.make(dir, pos, bytes.size(), bytes);
      e.flags |= WEFT_DATA_LAST_CHUNK;
      e.source = ByteSource::TlsLibrary;
      s.feed(e);
    };
    plaintext(s.request_dir(), 0, get("/secret"));
    plaintext(s.response_dir(), 0, ok("s"));
    REQUIRE(cap.exchanges.size() == 1);
    const ConnectionInfo& c = *cap.exchanges[0].connection;
    CHECK(c.tls);
    CHECK(c.tls_version == "1.3");
    CHECK(c.tls_cipher == "TLS_AES_128_GCM_SHA256");
    protocols::SpanDescription d;
    cap.exchanges[0].protocol->describe(cap.exchanges[0], {}, d);
    std::vector<std::string> tls_attrs;
    for (const auto& a : d.attributes)
      if (a.key.view().starts_with("tls."))
        tls_attrs.push_back(std::string(a.key.view()) + "=" + std::get<std::string>(a.value));
    CHECK(tls_attrs == std::vector<std::string>{"tls.protocol.name=tls", "tls.protocol.version=1.3",
                                                "tls.cipher=TLS_AES_128_GCM_SHA256"});
  }
}

// Joined mid-conversation (no handshake seen): nothing is said, rather than a guess.
TEST_CASE("ConnectionTracker: no TLS version for a connection weft did not see from its start") {
  Capture cap;
  Socket s(cap, 1, Role::Server);  // no open(): first met through its data
  auto hello = server_hello(0x0303, 0x1301, tls13_extensions());
  s.response(std::string(hello.begin(), hello.end()));
  Event e = s.make(Direction::Recv, 0, get("/x").size(), get("/x"));
  e.flags |= WEFT_DATA_LAST_CHUNK;
  e.source = ByteSource::TlsLibrary;
  s.feed(e);
  Event r = s.make(Direction::Send, 0, ok("s").size(), ok("s"));
  r.flags |= WEFT_DATA_LAST_CHUNK;
  r.source = ByteSource::TlsLibrary;
  s.feed(r);
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].connection->tls_version.empty());
}

}  // namespace
}  // namespace weft::test
