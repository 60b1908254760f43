// The encoders weft used before its own (otlp_encoding.h), kept as the tests' reference:
// opentelemetry-cpp's OtlpRecordable filling the generated ExportTraceServiceRequest, and
// nlohmann::json for the file exporter's OTLP/JSON.
#pragma once

#include <string>
#include <vector>

#include "export/otlp_exporter.h"
// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::exporter::oracle {

using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// Spans through opentelemetry-cpp's recordables, as OtlpTraceExporter encoded them before.
void encode_traces(const std::vector<trace::Trace>& batch, const ResourceOverrides& overrides,
                   Request* request);

// One trace through nlohmann::json, as the file exporter wrote it before.
std::string to_otlp_json(const trace::Trace& trace);

}  // namespace weft::exporter::oracle
