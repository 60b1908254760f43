// Exchange -> span: the exchange's protocol names it and gives its kind, attributes and status
// (protocols/protocol.h); the builder adds the process as a resource and the kernel times.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "protocols/protocol.h"
#include "trace/span.h"

namespace weft::trace {

struct SpanOptions {
  bool query_values = false;      // export url.query values (else each value is "REDACTED")
  bool statement_values = false;  // export literal arguments in db.query.text (else "?")
  bool command_line = false;      // export process.command_line in resources
  // Non-empty: service.name of every process (OTEL_SERVICE_NAME given to weft, --service-name),
  // for a weft that traces one application. Spans, console trees and metrics all use it.
  std::string service_name;
};

class SpanBuilder {
 public:
  explicit SpanBuilder(SpanOptions options);

  // A span without ids: the stitcher gives it its place in a trace. Described in full.
  Span build(std::shared_ptr<const Exchange> exchange);
  // What the stitcher and the sampler need (kind, status, times, resource, wire context,
  // metric family), without name and attributes: describe() adds those to spans that will be
  // exported (the stitcher's SpanDescriber). A protocol without an essentials part is
  // described here already.
  Span build_deferred(std::shared_ptr<const Exchange> exchange);
  // Name, attributes and outcome from the exchange's protocol; nothing when already described
  // (a described span always has a name).
  void describe(Span& span) const;
  // These processes have exited: their resources go (spans already built keep theirs).
  void forget_processes(const std::vector<uint32_t>& pids);

 private:
  std::shared_ptr<const Resource> resource_for(const ConnectionInfo& c);

  SpanOptions options_;
  protocols::DescribeOptions describe_options_;
  std::string host_name_;
  // By pid << 32 | the executable's hash (low 32 bits): the pid stays readable for forgetting.
  std::unordered_map<uint64_t, std::shared_ptr<const Resource>> resources_;
};

}  // namespace weft::trace
