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

// network.peer.address and network.peer.port: the other end of the connection.
inline void add_peer_attributes(std::vector<Attribute>& attrs, const ConnectionInfo& c) {
  add_attribute(attrs, "network.peer.address", c.remote.address());
  add_attribute(attrs, "network.peer.port", static_cast<int64_t>(c.remote.port));
}

}  // namespace weft::protocols
