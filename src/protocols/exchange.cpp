#include "weft/exchange.h"

#include "protocols/protocol.h"

namespace weft {

const std::string* find_header(const HeaderList& headers, std::string_view name) {
  for (const auto& [k, v] : headers)
    if (k == name) return &v;
  return nullptr;
}

std::string_view Exchange::protocol_name() const {
  return protocol ? protocol->name() : std::string_view();
}

const char* to_string(SpanKind kind) {
  switch (kind) {
    case SpanKind::Internal:
      return "internal";
    case SpanKind::Server:
      return "server";
    case SpanKind::Client:
      return "client";
    case SpanKind::Producer:
      return "producer";
    case SpanKind::Consumer:
      return "consumer";
  }
  return "?";
}

}  // namespace weft
