// Traces as OTLP requests to a backend (OTLP/HTTP protobuf or JSON, OTLP/gRPC): each span
// becomes an opentelemetry-cpp OtlpRecordable, the library groups them by resource and scope
// into one ExportTraceServiceRequest per batch, and OtlpTransport sends it.
#pragma once

#include <memory>

#include "export/exporter.h"
#include "export/otlp_transport.h"

namespace opentelemetry::proto::collector::trace::v1 {
class ExportTraceServiceRequest;
}

namespace weft::exporter {

// What every exported resource gets on top of the traced process's own attributes.
// (A service.name override is the span builder's: SpanOptions::service_name.)
struct ResourceOverrides {
  KeyValues extra_attributes;  // OTEL_RESOURCE_ATTRIBUTES and the like; process facts win
};

// The request a batch becomes: one ResourceSpans per process, scope "weft" with its version.
void encode_traces(const std::vector<trace::Trace>& batch, const ResourceOverrides& overrides,
                   opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* request);

class OtlpTraceExporter : public BatchExporter {
 public:
  OtlpTraceExporter(std::unique_ptr<OtlpTransport> transport, ResourceOverrides overrides);
  ExportResult export_batch(const std::vector<trace::Trace>& batch) override;
  void cancel() override { transport_->cancel(); }
  std::string destination() const override { return transport_->display_endpoint(); }

 private:
  std::unique_ptr<OtlpTransport> transport_;
  ResourceOverrides overrides_;
};

}  // namespace weft::exporter
