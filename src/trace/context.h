// Trace context carried on the wire: W3C traceparent/tracestate, B3 (single and multi
// header) and Jaeger's uber-trace-id. Parsing never throws; invalid headers are ignored.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "weft/exchange.h"

namespace weft::trace {

using TraceId = std::array<uint8_t, 16>;
using SpanId = std::array<uint8_t, 8>;

enum class ContextFormat { W3C, B3Single, B3Multi, Jaeger };

struct WireContext {
  TraceId trace_id{};
  SpanId span_id{};  // the caller's span: the parent of a span that receives this context
  bool sampled = false;
  bool sampling_decided = true;  // false when the header leaves the decision to the receiver
  std::string tracestate;        // W3C only, as received (when valid)
  ContextFormat format = ContextFormat::W3C;
};

std::optional<WireContext> parse_traceparent(std::string_view traceparent, std::string_view tracestate = {});
std::optional<WireContext> parse_b3_single(std::string_view b3);
std::optional<WireContext> parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                                          std::string_view sampled, std::string_view flags);
std::optional<WireContext> parse_uber_trace_id(std::string_view value);
// Whether a tracestate value is well formed (at most 32 list members, key=value each).
bool valid_tracestate(std::string_view tracestate);

// The context of a request, trying W3C first, then B3 single, B3 multi, Jaeger.
std::optional<WireContext> extract_context(const HeaderList& headers);

std::string to_hex(const uint8_t* bytes, size_t n);
bool is_zero(const uint8_t* bytes, size_t n);

}  // namespace weft::trace
