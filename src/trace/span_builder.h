// Exchange -> span, named and attributed per the OpenTelemetry HTTP semantic conventions
// (stable, v1.2x): server spans where this process received the request, client spans where
// it sent it.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "trace/span.h"

namespace weft::trace {

struct SpanOptions {
  bool query_values = false;  // export url.query values (else each value is "REDACTED")
  bool command_line = false;  // export process.command_line in resources
  // Non-empty: service.name of every process (OTEL_SERVICE_NAME given to weft, --service-name),
  // for a weft that traces one application. Spans, console trees and metrics all use it.
  std::string service_name;
};

class SpanBuilder {
 public:
  explicit SpanBuilder(SpanOptions options);

  // A span without ids: the stitcher gives it its place in a trace.
  Span build(std::shared_ptr<const Exchange> exchange);

 private:
  std::shared_ptr<const Resource> resource_for(const ConnectionInfo& c);

  SpanOptions options_;
  std::string host_name_;
  std::unordered_map<uint64_t, std::shared_ptr<const Resource>> resources_;  // by pid and exe
};

// "a=1&b=2" -> "a=REDACTED&b=REDACTED" (keys kept: they say what was asked, not who asked).
std::string redact_query(std::string_view query);

}  // namespace weft::trace
