// Copied from weft's src/export before its own encoder replaced these (git history has them).
#include "otlp_oracle.h"

#include <map>
#include <nlohmann/json.hpp>

#include "opentelemetry/exporters/otlp/otlp_recordable.h"
#include "opentelemetry/exporters/otlp/otlp_recordable_utils.h"
#include "opentelemetry/sdk/instrumentationscope/instrumentation_scope.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/trace/span_context.h"
#include "opentelemetry/trace/trace_state.h"

namespace weft::exporter::oracle {
namespace {

namespace otel = opentelemetry;
using otel::exporter::otlp::OtlpRecordable;
using ResourceCache = std::map<const trace::Resource*, otel::sdk::resource::Resource>;

void set_attribute(otel::sdk::common::AttributeMap& map, const trace::Attribute& a) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>)
          map.SetAttribute(a.key.str(), otel::nostd::string_view(v));
        else
          map.SetAttribute(a.key.str(), v);
      },
      a.value);
}

otel::sdk::resource::Resource make_resource(const trace::Resource& r, const ResourceOverrides& o) {
  otel::sdk::common::AttributeMap attrs;
  for (const auto& [k, v] : o.extra_attributes) attrs.SetAttribute(k, otel::nostd::string_view(v));
  for (const auto& a : r.attributes) set_attribute(attrs, a);
  return otel::sdk::resource::Resource::Create(attrs);
}

template <size_t N>
otel::nostd::span<const uint8_t, N> id_bytes(const std::array<uint8_t, N>& id) {
  return otel::nostd::span<const uint8_t, N>(id.data(), N);
}

std::unique_ptr<otel::sdk::trace::Recordable> make_recordable(
    const trace::Span& s, ResourceCache& resources, const ResourceOverrides& overrides,
    const otel::sdk::instrumentationscope::InstrumentationScope& scope) {
  auto rec = std::make_unique<OtlpRecordable>();
  otel::trace::TraceFlags flags(s.sampled ? otel::trace::TraceFlags::kIsSampled : 0);
  auto state = s.tracestate.empty() ? otel::trace::TraceState::GetDefault()
                                    : otel::trace::TraceState::FromHeader(s.tracestate);
  // OTLP's span flags say whether the parent is remote; the library takes that from here.
  bool remote_parent = s.has_parent() && s.wire.has_value();
  otel::trace::SpanContext context(otel::trace::TraceId(id_bytes(s.trace_id)),
                                   otel::trace::SpanId(id_bytes(s.span_id)), flags, remote_parent,
                                   state);
  rec->SetIdentity(context, otel::trace::SpanId(id_bytes(s.parent_span_id)));
  rec->SetName(s.name);
  rec->SetSpanKind(s.kind == trace::SpanKind::Server ? otel::trace::SpanKind::kServer
                                                     : otel::trace::SpanKind::kClient);
  rec->SetStartTime(otel::common::SystemTimestamp(std::chrono::nanoseconds(s.start_ns)));
  rec->SetDuration(std::chrono::nanoseconds(s.end_ns - s.start_ns));
  if (s.status == trace::StatusCode::Error)
    rec->SetStatus(otel::trace::StatusCode::kError, "");
  else if (s.status == trace::StatusCode::Ok)
    rec->SetStatus(otel::trace::StatusCode::kOk, "");
  for (const auto& a : s.attributes) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string>)
            rec->SetAttribute(a.key.str(), otel::nostd::string_view(v));
          else
            rec->SetAttribute(a.key.str(), v);
        },
        a.value);
  }
  auto [it, fresh] =
      resources.try_emplace(s.resource.get(), otel::sdk::resource::Resource::GetEmpty());
  if (fresh && s.resource) it->second = make_resource(*s.resource, overrides);
  rec->SetResource(it->second);  // kept by reference: `resources` outlives the request
  rec->SetInstrumentationScope(scope);
  return rec;
}

using nlohmann::json;

json value_json(const trace::AttributeValue& v) {
  return std::visit(
      [](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return {{"stringValue", x}};
        if constexpr (std::is_same_v<T, int64_t>) return {{"intValue", std::to_string(x)}};
        if constexpr (std::is_same_v<T, bool>) return {{"boolValue", x}};
        if constexpr (std::is_same_v<T, double>) return {{"doubleValue", x}};
      },
      v);
}

json attributes_json(const std::vector<trace::Attribute>& attrs) {
  json out = json::array();
  for (const auto& a : attrs) out.push_back({{"key", a.key}, {"value", value_json(a.value)}});
  return out;
}

json span_json(const trace::Span& s) {
  json j = {
      {"traceId", trace::to_hex(s.trace_id.data(), 16)},
      {"spanId", trace::to_hex(s.span_id.data(), 8)},
      {"name", s.name},
      {"kind", static_cast<int>(s.kind)},
      {"startTimeUnixNano", std::to_string(s.start_ns)},
      {"endTimeUnixNano", std::to_string(s.end_ns)},
      {"attributes", attributes_json(s.attributes)},
      {"status", json::object()},
      // W3C trace flags in the low byte, plus "the parent is known remote or not" bits.
      {"flags", (s.sampled ? 1 : 0) | 0x100 | (s.has_parent() && s.wire ? 0x200 : 0)},
  };
  if (s.has_parent()) j["parentSpanId"] = trace::to_hex(s.parent_span_id.data(), 8);
  if (!s.tracestate.empty()) j["traceState"] = s.tracestate;
  if (s.status != trace::StatusCode::Unset) j["status"]["code"] = static_cast<int>(s.status);
  return j;
}

}  // namespace

void encode_traces(const std::vector<trace::Trace>& batch, const ResourceOverrides& overrides,
                   Request* request) {
  static const auto scope =
      otel::sdk::instrumentationscope::InstrumentationScope::Create("weft", WEFT_VERSION);
  ResourceCache resources;
  std::vector<std::unique_ptr<otel::sdk::trace::Recordable>> recordables;
  for (const auto& t : batch)
    for (const auto& s : t.spans)
      recordables.push_back(make_recordable(s, resources, overrides, *scope));
  otel::exporter::otlp::OtlpRecordableUtils::PopulateRequest(
      otel::nostd::span<std::unique_ptr<otel::sdk::trace::Recordable>>(recordables.data(),
                                                                       recordables.size()),
      request);
}

std::string to_otlp_json(const trace::Trace& t) {
  // One ResourceSpans per process (resource), in order of first appearance.
  std::vector<const trace::Resource*> order;
  std::map<const trace::Resource*, json> spans_by_resource;
  for (const auto& s : t.spans) {
    auto [it, fresh] = spans_by_resource.try_emplace(s.resource.get(), json::array());
    if (fresh) order.push_back(s.resource.get());
    it->second.push_back(span_json(s));
  }
  json resource_spans = json::array();
  for (const trace::Resource* r : order) {
    resource_spans.push_back({
        {"resource", {{"attributes", attributes_json(r->attributes)}}},
        {"scopeSpans", json::array({{{"scope", {{"name", "weft"}, {"version", WEFT_VERSION}}},
                                     {"spans", std::move(spans_by_resource[r])}}})},
    });
  }
  json request = {{"resourceSpans", std::move(resource_spans)}};
  return request.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace weft::exporter::oracle
