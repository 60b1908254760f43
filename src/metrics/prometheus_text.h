// The Prometheus text exposition format, version 0.0.4: what GET /metrics returns.
#pragma once

#include <string>
#include <string_view>

#include "metrics/metrics_registry.h"

namespace weft::metrics {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus(const MetricsSnapshot& snapshot);

// Backslash, double quote and newline escaped, as label values must be.
std::string escape_label_value(std::string_view value);

}  // namespace weft::metrics
