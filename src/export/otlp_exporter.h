// Traces as OTLP requests to a backend (OTLP/HTTP protobuf or JSON, OTLP/gRPC): each batch is
// written by weft's own encoder (otlp_encoding.h) in the transport's encoding, into a buffer
// kept from batch to batch, and OtlpTransport sends those bytes.
#pragma once

#include <memory>

#include "export/exporter.h"
#include "export/otlp_encoding.h"
#include "export/otlp_transport.h"

namespace weft::exporter {

// What every exported resource gets on top of the traced process's own attributes.
// (A service.name override is the span builder's: SpanOptions::service_name.)
struct ResourceOverrides {
  KeyValues extra_attributes;  // OTEL_RESOURCE_ATTRIBUTES and the like; process facts win
};

// The attributes each exported resource carries besides the process's own, as the
// opentelemetry-cpp SDK resource has always given them: telemetry.sdk.*, what the SDK detects
// from OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, then `overrides` on top. Sorted by key.
ResourceExtras resource_extras(const ResourceOverrides& overrides);

// The request a batch becomes: one ResourceSpans per process, scope "weft" with its version.
std::string encode_traces(const std::vector<trace::Trace>& batch, const ResourceExtras& extras,
                          Encoding encoding);

class OtlpTraceExporter : public BatchExporter {
 public:
  OtlpTraceExporter(std::unique_ptr<OtlpTransport> transport, const ResourceOverrides& overrides);
  ExportResult export_batch(const std::vector<trace::Trace>& batch) override;
  void cancel() override { transport_->cancel(); }
  std::string destination() const override { return transport_->display_endpoint(); }

 private:
  std::unique_ptr<OtlpTransport> transport_;
  ResourceExtras extras_;
  ResourceGroups groups_;
  EncodeBuffer request_;
};

}  // namespace weft::exporter
