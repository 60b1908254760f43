// Reading what a protocol's describe() says about an exchange, for the protocol unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "protocols/protocol.h"

namespace weft::test {

// `statement_values`: the user's opt-in to literal values in db.query.text.
inline protocols::SpanDescription describe(const Exchange& ex, bool statement_values = false) {
  protocols::SpanDescription d;
  protocols::DescribeOptions o;
  o.statement_values = statement_values;
  ex.protocol->describe(ex, o, d);
  return d;
}

inline const AttributeValue* attr(const protocols::SpanDescription& d, std::string_view key) {
  for (const auto& a : d.attributes)
    if (a.key == key) return &a.value;
  return nullptr;
}

// A string attribute's value, "<absent>" when there is none (or it is not a string).
inline std::string sattr(const protocols::SpanDescription& d, std::string_view key) {
  const AttributeValue* v = attr(d, key);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "<absent>";
}

// An integer attribute's value, -1 when there is none (or it is not an integer).
inline int64_t iattr(const protocols::SpanDescription& d, std::string_view key) {
  const AttributeValue* v = attr(d, key);
  return v && std::holds_alternative<int64_t>(*v) ? std::get<int64_t>(*v) : -1;
}

}  // namespace weft::test
