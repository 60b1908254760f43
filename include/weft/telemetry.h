// The vocabulary of OpenTelemetry spans that protocols describe their exchanges in and every
// later stage (span builder, metrics, exporters) reads: attributes, span kinds, status.
#pragma once

#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace weft {

using AttributeValue = std::variant<std::string, int64_t, bool, double>;
// A metric label's value: unset when the span has no such attribute.
using LabelValue = std::optional<AttributeValue>;

// An attribute's name. Nearly every one is a string literal in a protocol's describe() and most
// are longer than std::string's inline buffer, so owning them cost an allocation per attribute
// per span: a literal is kept as a view (consteval: only a compile-time constant, whose storage
// lives for good, can be taken this way); a name made at run time (resource attributes from the
// configuration) is owned.
class AttributeKey {
 public:
  consteval AttributeKey(const char* literal)
      : literal_(literal), size_(std::char_traits<char>::length(literal)) {
    // Exporters copy literal names without escaping them: a name that would need it does not
    // compile (throwing here is a compile-time error).
    for (size_t i = 0; i < size_; ++i)
      if (literal[i] < 0x20 || literal[i] == '"' || literal[i] == '\\' || literal[i] >= 0x7f)
        throw "attribute names written in code are printable ASCII without quotes or backslashes";
  }
  AttributeKey(std::string owned) : owned_(std::make_shared<const std::string>(std::move(owned))) {}

  std::string_view view() const {
    return literal_ ? std::string_view(literal_, size_) : std::string_view(*owned_);
  }
  operator std::string_view() const { return view(); }
  std::string str() const { return std::string(view()); }
  // One overload each, taking a view: keys, std::strings and literals all compare through it.
  bool operator==(std::string_view other) const { return view() == other; }
  auto operator<=>(std::string_view other) const { return view() <=> other; }
  size_t heap_bytes() const { return literal_ ? 0 : owned_->capacity(); }
  // A name from the code (checked when compiled): needs no escaping in JSON.
  bool plain() const { return literal_ != nullptr; }

 private:
  const char* literal_ = nullptr;
  size_t size_ = 0;
  // Shared, not a std::string: a consteval constructor's result cannot hold a std::string (its
  // inline buffer points into the object), and copies of a run-time key then cost no copy.
  std::shared_ptr<const std::string> owned_;
};

struct Attribute {
  AttributeKey key;
  AttributeValue value;
};

// OTLP's numbering (SPAN_KIND_SERVER = 2, ...). Producer and consumer are for message queues.
enum class SpanKind { Internal = 1, Server = 2, Client = 3, Producer = 4, Consumer = 5 };
enum class StatusCode { Unset = 0, Ok = 1, Error = 2 };

const char* to_string(SpanKind kind);  // "server", "client", ...

}  // namespace weft

namespace weft {

// A request-duration histogram family, as a protocol's semantic conventions define it
// ("http.server.request.duration", "db.client.operation.duration"). Its series are labelled by
// the values of the span attributes named in label_keys (absent ones stay unset).
struct MetricFamily {
  std::string name;         // OpenTelemetry name; the Prometheus name is derived from it
  std::string description;  // one sentence
  std::vector<std::string> label_keys;
  // The one label in label_keys whose distinct values per service are limited (routes,
  // operation names): beyond the limit they read "other".
  std::string bounded_key;
  std::vector<double> bucket_bounds;  // seconds, ascending (the conventions' advice)
};

}  // namespace weft
