// Metrics as an OTLP ExportMetricsServiceRequest: one resource per traced service with its
// request durations, and one for weft itself with its own counters and gauges. Cumulative
// temporality: every value counts from the registry's creation.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "metrics/metrics_registry.h"

namespace opentelemetry::proto::collector::metrics::v1 {
class ExportMetricsServiceRequest;
}

namespace weft::metrics {

struct OtlpMetricsOptions {
  std::string self_service_name = "weft";  // service.name of weft's own resource
  std::string host_name;                   // host.name; empty: this machine's name
  // Added to every resource (e.g. deployment.environment); service.name and host.name win.
  std::vector<std::pair<std::string, std::string>> resource_attributes;
};

// Appends to `out`. `now_ns`: wall clock, the time of every data point.
void to_otlp(const MetricsSnapshot& snapshot, uint64_t now_ns, const OtlpMetricsOptions& options,
             opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* out);

}  // namespace weft::metrics
