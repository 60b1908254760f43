// Spans: an exchange seen from one side, with its place in a trace.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "trace/context.h"
#include "weft/exchange.h"
#include "weft/telemetry.h"

namespace weft::trace {

using weft::Attribute;
using weft::AttributeValue;
using weft::SpanKind;
using weft::StatusCode;

// The process a span comes from, as an OpenTelemetry resource.
struct Resource {
  std::string service_name;
  std::vector<Attribute> attributes;  // service.name first
};

// A moment inside a span (OTLP Span.Event), e.g. a TCP retransmission during the exchange.
struct SpanEvent {
  uint64_t time_ns = 0;  // wall clock, ns since the Unix epoch
  std::string name;
  std::vector<Attribute> attributes;
};

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
  std::vector<SpanEvent> events;  // usually none
  std::shared_ptr<const Resource> resource;
  bool sampled = true;
  // One short word for consoles ("200", "OK", "ERR"), from the exchange's protocol.
  std::string outcome;
  // The duration histogram this span's exchange counts in (null: none); not exported.
  const MetricFamily* metric_family = nullptr;

  // What the stitcher uses; not exported.
  std::shared_ptr<const Exchange> exchange;
  std::optional<WireContext> wire;  // the context the request carried

  bool has_parent() const { return !is_zero(parent_span_id.data(), parent_span_id.size()); }
};

const Attribute* find_attribute(const Span& span, std::string_view key);

}  // namespace weft::trace
