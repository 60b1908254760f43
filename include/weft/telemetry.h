// The vocabulary of OpenTelemetry spans that protocols describe their exchanges in and every
// later stage (span builder, metrics, exporters) reads: attributes, span kinds, status.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace weft {

using AttributeValue = std::variant<std::string, int64_t, bool, double>;
// A metric label's value: unset when the span has no such attribute.
using LabelValue = std::optional<AttributeValue>;

struct Attribute {
  std::string key;
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
