// Spans: an exchange seen from one side, with its place in a trace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "trace/context.h"
#include "weft/exchange.h"

namespace weft::trace {

using AttributeValue = std::variant<std::string, int64_t, bool, double>;

struct Attribute {
  std::string key;
  AttributeValue value;
};

// The process a span comes from, as an OpenTelemetry resource.
struct Resource {
  std::string service_name;
  std::vector<Attribute> attributes;  // service.name first
};

// OTLP's numbering (SPAN_KIND_SERVER = 2, SPAN_KIND_CLIENT = 3).
enum class SpanKind { Server = 2, Client = 3 };
enum class StatusCode { Unset = 0, Ok = 1, Error = 2 };

struct Span {
  TraceId trace_id{};
  SpanId span_id{};
  SpanId parent_span_id{};  // zero: a root
  std::string tracestate;
  std::string name;
  SpanKind kind = SpanKind::Server;
  uint64_t start_ns = 0;  // wall clock, ns since the Unix epoch
  uint64_t end_ns = 0;
  StatusCode status = StatusCode::Unset;
  std::vector<Attribute> attributes;
  std::shared_ptr<const Resource> resource;
  bool sampled = true;

  // What the stitcher uses; not exported.
  std::shared_ptr<const Exchange> exchange;
  std::optional<WireContext> wire;  // the context the request carried

  bool has_parent() const { return !is_zero(parent_span_id.data(), parent_span_id.size()); }
};

const Attribute* find_attribute(const Span& span, std::string_view key);

}  // namespace weft::trace
