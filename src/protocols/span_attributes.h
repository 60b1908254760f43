// Helpers every protocol's span description uses.
#pragma once

#include <string>
#include <vector>

#include "weft/exchange.h"
#include "weft/telemetry.h"

namespace weft::protocols {

inline void add_attribute(std::vector<Attribute>& attrs, AttributeKey key, AttributeValue value) {
  attrs.push_back({std::move(key), std::move(value)});
}

// network.peer.address and network.peer.port: the other end of the connection; for TLS whose
// handshake weft saw, tls.protocol.* and tls.cipher.
inline void add_connection_attributes(std::vector<Attribute>& attrs, const ConnectionInfo& c,
                                      std::string peer_address) {
  add_attribute(attrs, "network.peer.address", std::move(peer_address));
  add_attribute(attrs, "network.peer.port", static_cast<int64_t>(c.remote.port));
  if (!c.tls || c.tls_version.empty()) return;
  add_attribute(attrs, "tls.protocol.name", std::string("tls"));
  add_attribute(attrs, "tls.protocol.version", std::string(c.tls_version));
  if (!c.tls_cipher.empty()) add_attribute(attrs, "tls.cipher", std::string(c.tls_cipher));
}

inline void add_connection_attributes(std::vector<Attribute>& attrs, const ConnectionInfo& c) {
  add_connection_attributes(attrs, c, c.remote.address());
}

}  // namespace weft::protocols
