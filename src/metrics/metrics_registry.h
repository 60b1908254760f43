// Metrics from spans: request durations in the family each span's protocol names (for HTTP
// per service, method, route and status code), as an OpenTelemetry SDK inside each traced
// service would record them, plus weft's own counters.
// The pipeline thread writes; the /metrics server and the OTLP export thread read snapshots.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "trace/span.h"

namespace weft::metrics {

// The label value that stands for whatever went past a cardinality limit.
inline constexpr const char* kOverflowLabel = "other";

struct MetricsLimits {
  size_t max_series_per_metric = 2000;  // label sets per histogram; beyond, one overflow series
  // Values of a family's bounded label (routes, operations) per service and histogram; beyond,
  // "other".
  size_t max_routes_per_service = 100;
};

// weft's own counters (cumulative since start) and gauges, as the pipeline thread last saw
// them. Plain data: collect_self_snapshot() (self_snapshot.h) fills it from the pipeline.
struct SelfSnapshot {
  uint64_t events = 0;                           // well-formed events received
  std::map<std::string, uint64_t> events_lost;   // by cause: ringbuf_full, stream_gap, ...
  std::map<std::string, uint64_t> parse_errors;  // by protocol
  uint64_t connections_evicted = 0;              // freed early to stay within the memory budget
  uint64_t skip_verdicts = 0;  // verdicts that let the kernel count a body's bytes uncopied
  uint64_t skipped_bytes = 0;  // bytes the kernel counted without copying them
  std::map<std::string, uint64_t> tls_calls;  // TLS library calls: all, and by what befell them
  uint64_t spans_built = 0;
  uint64_t traces_sampled_out = 0;
  uint64_t spans_sampled_out = 0;
  double trace_sampling_ratio = 1.0;                   // gauge: the root sampling ratio in force
  std::map<std::string, uint64_t> links;               // parent links by evidence
  std::map<std::string, uint64_t> links_not_inferred;  // inferred links refused, by reason
  uint64_t link_conflicts = 0;        // wire context that disagreed with stronger evidence
  uint64_t traces_settled_early = 0;  // left before --trace-wait: nothing could join them
  uint64_t spans_forced_early = 0;    // resolved before their wait, to stay within the limit
  uint64_t waited_for_parent = 0;     // client calls held past their wait for an open request
  uint64_t spans_exported = 0;
  uint64_t spans_dropped_queue_full = 0;
  uint64_t spans_dropped_failed = 0;
  uint64_t export_failures = 0;  // failed attempts, retryable or not
  uint64_t export_retries = 0;
  uint64_t export_queue_spans = 0;  // gauge: waiting now
  uint64_t export_queue_bytes = 0;  // gauge: waiting now
};

using weft::LabelValue;

// A family without bucket bounds is a counter (weft.tcp.retransmits): each series'
// DurationHistogram holds its value in `count` and nothing else. Same label limits.
inline bool is_counter(const MetricFamily& family) {
  return family.bucket_bounds.empty();
}

// The labels of one duration series.
struct SeriesLabels {
  std::string service;             // service.name of the span's resource
  std::vector<LabelValue> values;  // in the order of the family's label_keys
  // The one series past max_series_per_metric: its other fields are empty and every label
  // reads "other" in the exposition.
  bool overflow = false;

  bool operator<(const SeriesLabels& o) const {
    return std::tie(overflow, service, values) < std::tie(o.overflow, o.service, o.values);
  }
  bool operator==(const SeriesLabels&) const = default;
};

struct SeriesLabelsHash {
  size_t operator()(const SeriesLabels& labels) const;
};

struct DurationHistogram {
  // Per bucket, not cumulative: [i] counts durations in (bound[i-1], bound[i]]; the last one
  // those above every bound.
  std::vector<uint64_t> bucket_counts;
  uint64_t count = 0;
  double sum_seconds = 0;
  double min_seconds = 0;
  double max_seconds = 0;
};

using DurationSeries = std::map<SeriesLabels, DurationHistogram>;

// One duration family's series.
struct FamilySeries {
  const MetricFamily* family = nullptr;
  DurationSeries series;
};

// Measurements that went past a cardinality limit, all histograms together.
struct SeriesOverflow {
  uint64_t routes = 0;  // recorded with bounded label "other" (max_routes_per_service)
  uint64_t series = 0;  // recorded in the overflow series (max_series_per_metric)
};

// A consistent copy of everything, taken under the registry's lock.
struct MetricsSnapshot {
  uint64_t start_ns = 0;  // wall clock when the registry was created: where every sum begins
  // Every family of every registered protocol, in registry order, with or without series.
  std::vector<FamilySeries> durations;
  SeriesOverflow overflow;
  SelfSnapshot self;
};

class MetricsRegistry {
 public:
  explicit MetricsRegistry(MetricsLimits limits = {});

  // Every span built, before sampling: sampling decides which traces are kept, while these
  // metrics count every request.
  void record_span(const trace::Span& span);
  // One measurement of a family no protocol declares (weft.tcp.connect.duration: src/net/);
  // the family must outlive the registry. Same limits as the spans' histograms.
  void record_duration(const MetricFamily* family, SeriesLabels labels, uint64_t duration_ns);
  // Adds `n` to a counter family's series (is_counter), recorded like record_duration.
  void record_count(const MetricFamily* family, SeriesLabels labels, uint64_t n);
  void set_self(const SelfSnapshot& self);

  MetricsSnapshot snapshot() const;
  // The Prometheus text exposition format 0.0.4 of a snapshot.
  std::string render_prometheus() const;

 private:
  struct DurationMetric {
    const MetricFamily* family = nullptr;
    size_t bounded_index = SIZE_MAX;  // of the family's bounded label in label_keys
    std::vector<uint64_t> bounds_ns;
    DurationSeries series;
    // The same series by hash, for the per-span lookup: comparing variants down a std::map
    // cost ~900 instructions per span; the ordered map stays for stable exposition order.
    std::unordered_map<SeriesLabels, DurationHistogram*, SeriesLabelsHash> index;
    std::map<std::string, std::set<LabelValue>> bounded_by_service;
    // The series the previous span counted in: spans of one route in a row (most traffic) are
    // matched by one comparison instead of a hash of every label. Map nodes never move.
    SeriesLabels last_labels;
    DurationHistogram* last_series = nullptr;
  };

  DurationMetric& metric_for(const MetricFamily* family);
  DurationHistogram& series_for(DurationMetric& metric, const SeriesLabels& labels);
  bool bounded_allowed(const DurationMetric& metric, const SeriesLabels& labels) const;

  const MetricsLimits limits_;
  const uint64_t start_ns_;
  mutable std::mutex mutex_;
  std::vector<DurationMetric> metrics_;  // one per family, registry order first
  SeriesLabels span_labels_;             // record_span's scratch
  SeriesOverflow overflow_;
  SelfSnapshot self_;
};

}  // namespace weft::metrics
