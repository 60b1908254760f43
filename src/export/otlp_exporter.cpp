#include "export/otlp_exporter.h"

#include <map>

#include "opentelemetry/exporters/otlp/otlp_recordable.h"
#include "opentelemetry/exporters/otlp/otlp_recordable_utils.h"
#include "opentelemetry/sdk/instrumentationscope/instrumentation_scope.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/trace/span_context.h"
#include "opentelemetry/trace/trace_state.h"
// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::exporter {
namespace {

namespace otel = opentelemetry;
using otel::exporter::otlp::OtlpRecordable;
using ResourceCache = std::map<const trace::Resource*, otel::sdk::resource::Resource>;

void set_attribute(otel::sdk::common::AttributeMap& map, const trace::Attribute& a) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>)
          map.SetAttribute(a.key, otel::nostd::string_view(v));
        else
          map.SetAttribute(a.key, v);
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
            rec->SetAttribute(a.key, otel::nostd::string_view(v));
          else
            rec->SetAttribute(a.key, v);
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

}  // namespace

void encode_traces(const std::vector<trace::Trace>& batch, const ResourceOverrides& overrides,
                   opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* request) {
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

OtlpTraceExporter::OtlpTraceExporter(std::unique_ptr<OtlpTransport> transport,
                                     ResourceOverrides overrides)
    : transport_(std::move(transport)), overrides_(std::move(overrides)) {}

ExportResult OtlpTraceExporter::export_batch(const std::vector<trace::Trace>& batch) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  encode_traces(batch, overrides_, &request);
  return transport_->send(request);
}

}  // namespace weft::exporter
