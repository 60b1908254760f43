// weft's own metrics, described once for both outputs: the OpenTelemetry name and unit (OTLP)
// and the name the OpenTelemetry-to-Prometheus convention gives it (/metrics).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/metrics_registry.h"

namespace weft::metrics {

// Ratio: a gauge whose value is a fraction (SelfMetricPoint::ratio), not a count.
enum class SelfMetricKind { Counter, Gauge, Ratio };

struct SelfMetricPoint {
  std::string label_value;  // empty when the metric has no label
  uint64_t value = 0;
  double ratio = 0;  // Ratio metrics only
};

struct SelfMetric {
  std::string otel_name;        // weft.events
  std::string prometheus_name;  // weft_events_total
  std::string description;
  std::string unit;  // UCUM, as OTLP carries it
  SelfMetricKind kind = SelfMetricKind::Counter;
  std::string label_key;  // empty: one unlabelled point
  std::vector<SelfMetricPoint> points;
};

// In a fixed order; labelled points in label order.
std::vector<SelfMetric> self_metrics(const SelfSnapshot& self, const SeriesOverflow& overflow);

}  // namespace weft::metrics
