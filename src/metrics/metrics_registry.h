// Metrics from spans: request durations per service, method, route and status code, as an
// OpenTelemetry SDK inside each traced service would record them, plus weft's own counters.
// The pipeline thread writes; the /metrics server and the OTLP export thread read snapshots.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "trace/span.h"

namespace weft::metrics {

// The OpenTelemetry semantic conventions' advisory bucket bounds for HTTP durations, seconds.
inline constexpr std::array<double, 14> kDurationBucketBounds = {
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10};

// The label value that stands for whatever went past a cardinality limit.
inline constexpr const char* kOverflowLabel = "other";

struct MetricsLimits {
  size_t max_series_per_metric = 2000;  // label sets per histogram; beyond, one overflow series
  size_t max_routes_per_service = 100;  // routes per service and histogram; beyond, "other"
};

// weft's own counters (cumulative since start) and gauges, as the pipeline thread last saw
// them. Plain data: collect_self_snapshot() (self_snapshot.h) fills it from the pipeline.
struct SelfSnapshot {
  uint64_t events = 0;                           // well-formed events received
  std::map<std::string, uint64_t> events_lost;   // by cause: ringbuf_full, stream_gap, ...
  std::map<std::string, uint64_t> parse_errors;  // by protocol
  uint64_t connections_evicted = 0;              // freed early to stay within the memory budget
  uint64_t spans_built = 0;
  uint64_t traces_sampled_out = 0;
  uint64_t spans_sampled_out = 0;
  std::map<std::string, uint64_t> links;               // parent links by evidence
  std::map<std::string, uint64_t> links_not_inferred;  // inferred links refused, by reason
  uint64_t spans_exported = 0;
  uint64_t spans_dropped_queue_full = 0;
  uint64_t spans_dropped_failed = 0;
  uint64_t export_failures = 0;  // failed attempts, retryable or not
  uint64_t export_retries = 0;
  uint64_t export_queue_spans = 0;  // gauge: waiting now
  uint64_t export_queue_bytes = 0;  // gauge: waiting now
};

// The labels of one duration series.
struct SeriesLabels {
  std::string service;      // service.name of the span's resource
  std::string method;       // http.request.method
  std::string route;        // http.route (server) or url.template (client); "" when unknown
  int64_t status_code = 0;  // http.response.status_code; 0 when there was no response
  // The one series past max_series_per_metric: its other fields are empty and every label
  // reads "other" in the exposition.
  bool overflow = false;

  auto operator<=>(const SeriesLabels&) const = default;
};

struct DurationHistogram {
  // Per bucket, not cumulative: [i] counts durations in (bound[i-1], bound[i]]; the last one
  // those above every bound.
  std::array<uint64_t, kDurationBucketBounds.size() + 1> bucket_counts{};
  uint64_t count = 0;
  double sum_seconds = 0;
  double min_seconds = 0;
  double max_seconds = 0;
};

using DurationSeries = std::map<SeriesLabels, DurationHistogram>;

// Measurements that went past a cardinality limit, both histograms together.
struct SeriesOverflow {
  uint64_t routes = 0;  // recorded under route "other" (max_routes_per_service)
  uint64_t series = 0;  // recorded in the overflow series (max_series_per_metric)
};

// A consistent copy of everything, taken under the registry's lock.
struct MetricsSnapshot {
  uint64_t start_ns = 0;  // wall clock when the registry was created: where every sum begins
  DurationSeries server_durations;  // http.server.request.duration
  DurationSeries client_durations;  // http.client.request.duration
  SeriesOverflow overflow;
  SelfSnapshot self;
};

class MetricsRegistry {
 public:
  explicit MetricsRegistry(MetricsLimits limits = {});

  // Every span built, before sampling: sampling decides which traces are kept, while these
  // metrics count every request.
  void record_span(const trace::Span& span);
  void set_self(const SelfSnapshot& self);

  MetricsSnapshot snapshot() const;
  // The Prometheus text exposition format 0.0.4 of a snapshot.
  std::string render_prometheus() const;

 private:
  struct DurationMetric {
    DurationSeries series;
    std::map<std::string, std::set<std::string>> routes_by_service;
  };

  DurationHistogram& series_for(DurationMetric& metric, SeriesLabels labels);
  bool route_allowed(const DurationMetric& metric, const SeriesLabels& labels) const;

  const MetricsLimits limits_;
  const uint64_t start_ns_;
  mutable std::mutex mutex_;
  DurationMetric server_;
  DurationMetric client_;
  SeriesOverflow overflow_;
  SelfSnapshot self_;
};

}  // namespace weft::metrics
