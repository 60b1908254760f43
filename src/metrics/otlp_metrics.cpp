#include "metrics/otlp_metrics.h"

#include <unistd.h>

#include <chrono>
#include <map>

#include "metrics/self_metrics.h"
#include "opentelemetry/exporters/otlp/otlp_metric_utils.h"
#include "opentelemetry/sdk/instrumentationscope/instrumentation_scope.h"
#include "opentelemetry/sdk/metrics/export/metric_producer.h"
#include "opentelemetry/sdk/resource/resource.h"
#include "opentelemetry/sdk/resource/resource_detector.h"

// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::metrics {
namespace {

namespace sdk = opentelemetry::sdk;
using sdk::metrics::MetricData;
using sdk::metrics::PointAttributes;
using sdk::metrics::PointDataAttributes;

// Resource::Create adds the SDK's own attributes and those of weft's environment
// (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME); a traced service's resource must hold only
// what weft knows of that service. A detector may build a resource from exactly what it found.
class KnownResource : public sdk::resource::ResourceDetector {
 public:
  explicit KnownResource(sdk::resource::ResourceAttributes attributes)
      : attributes_(std::move(attributes)) {}
  sdk::resource::Resource Detect() override { return Create(attributes_); }

 private:
  sdk::resource::ResourceAttributes attributes_;
};

struct Times {
  opentelemetry::common::SystemTimestamp start;
  opentelemetry::common::SystemTimestamp now;
};

opentelemetry::common::SystemTimestamp timestamp(uint64_t ns) {
  return opentelemetry::common::SystemTimestamp(std::chrono::nanoseconds(ns));
}

std::string this_host_name() {
  char name[256] = {};
  return gethostname(name, sizeof(name) - 1) == 0 ? name : "";
}

sdk::resource::Resource resource_for(const std::string& service_name,
                                     const OtlpMetricsOptions& options) {
  sdk::resource::ResourceAttributes attributes;
  for (const auto& [key, value] : options.resource_attributes) attributes[key] = value;
  std::string host = options.host_name.empty() ? this_host_name() : options.host_name;
  if (!host.empty()) attributes["host.name"] = host;
  attributes["service.name"] = service_name;
  return KnownResource(std::move(attributes)).Detect();
}

MetricData metric_data(std::string name, std::string description, std::string unit,
                       sdk::metrics::InstrumentType type, sdk::metrics::InstrumentValueType value,
                       const Times& times) {
  MetricData m;
  m.instrument_descriptor = {std::move(name), std::move(description), std::move(unit), type, value};
  m.aggregation_temporality = sdk::metrics::AggregationTemporality::kCumulative;
  m.start_ts = times.start;
  m.end_ts = times.now;
  return m;
}

// Semantic-convention attributes; what weft does not know is left out. The overflow series
// carries the attribute the OpenTelemetry specification gives it.
PointAttributes point_attributes(const MetricFamily& family, const SeriesLabels& s) {
  PointAttributes a;
  if (s.overflow) {
    a["otel.metric.overflow"] = true;
    return a;
  }
  for (size_t i = 0; i < family.label_keys.size() && i < s.values.size(); ++i) {
    const LabelValue& v = s.values[i];
    if (!v) continue;
    const std::string& key = family.label_keys[i];
    if (const auto* text = std::get_if<std::string>(&*v)) {
      if (!text->empty()) a[key] = *text;
    } else if (const auto* n = std::get_if<int64_t>(&*v)) {
      if (*n) a[key] = *n;
    } else if (const auto* b = std::get_if<bool>(&*v)) {
      a[key] = *b;
    } else {
      a[key] = std::get<double>(*v);
    }
  }
  return a;
}

sdk::metrics::HistogramPointData histogram_point(const MetricFamily& family,
                                                 const DurationHistogram& h) {
  sdk::metrics::HistogramPointData p;
  p.boundaries_.assign(family.bucket_bounds.begin(), family.bucket_bounds.end());
  p.counts_.assign(h.bucket_counts.begin(), h.bucket_counts.end());
  p.counts_.resize(family.bucket_bounds.size() + 1, 0);
  p.count_ = h.count;
  p.sum_ = h.sum_seconds;
  p.min_ = h.min_seconds;
  p.max_ = h.max_seconds;
  p.record_min_max_ = h.count > 0;
  return p;
}

// A counter family's series is a monotonic sum; a duration family's a histogram.
PointDataAttributes series_point(const MetricFamily& family, const SeriesLabels& labels,
                                 const DurationHistogram& h) {
  if (is_counter(family)) {
    sdk::metrics::SumPointData sum;
    sum.value_ = static_cast<int64_t>(h.count);
    sum.is_monotonic_ = true;
    return {point_attributes(family, labels), std::move(sum)};
  }
  return {point_attributes(family, labels), histogram_point(family, h)};
}

// Per service, its duration metrics: one MetricData per family with points.
using MetricsByService = std::map<std::string, std::vector<MetricData>>;

void add_family(MetricsByService& out, const FamilySeries& durations, const Times& times) {
  const MetricFamily& family = *durations.family;
  std::map<std::string, std::vector<PointDataAttributes>> points;
  for (const auto& [labels, histogram] : durations.series) {
    const std::string& service = labels.overflow ? kOverflowLabel : labels.service;
    points[service].push_back(series_point(family, labels, histogram));
  }
  for (auto& [service, list] : points) {
    MetricData m = is_counter(family)
                       ? metric_data(family.name, family.description, "1",
                                     sdk::metrics::InstrumentType::kCounter,
                                     sdk::metrics::InstrumentValueType::kLong, times)
                       : metric_data(family.name, family.description, "s",
                                     sdk::metrics::InstrumentType::kHistogram,
                                     sdk::metrics::InstrumentValueType::kDouble, times);
    m.point_data_attr_ = std::move(list);
    out[service].push_back(std::move(m));
  }
}

PointDataAttributes self_point(const SelfMetric& m, const SelfMetricPoint& p, const Times& times) {
  PointAttributes attributes;
  if (!m.label_key.empty()) attributes[m.label_key] = p.label_value;
  auto value = static_cast<int64_t>(p.value);
  if (m.kind == SelfMetricKind::Counter) {
    sdk::metrics::SumPointData sum;
    sum.value_ = value;
    sum.is_monotonic_ = true;
    return {std::move(attributes), std::move(sum)};
  }
  sdk::metrics::LastValuePointData last;
  if (m.kind == SelfMetricKind::Ratio)
    last.value_ = p.ratio;
  else
    last.value_ = value;
  last.is_lastvalue_valid_ = true;
  last.sample_ts_ = times.now;
  return {std::move(attributes), std::move(last)};
}

std::vector<MetricData> self_metric_data(const MetricsSnapshot& snapshot, const Times& times) {
  std::vector<MetricData> out;
  for (const SelfMetric& m : self_metrics(snapshot.self, snapshot.overflow)) {
    if (m.points.empty()) continue;  // e.g. no parse errors reported by any protocol yet
    auto type = m.kind == SelfMetricKind::Counter ? sdk::metrics::InstrumentType::kCounter
                                                  : sdk::metrics::InstrumentType::kObservableGauge;
    auto value_type = m.kind == SelfMetricKind::Ratio ? sdk::metrics::InstrumentValueType::kDouble
                                                      : sdk::metrics::InstrumentValueType::kLong;
    MetricData data = metric_data(m.otel_name, m.description, m.unit, type, value_type, times);
    for (const SelfMetricPoint& p : m.points)
      data.point_data_attr_.push_back(self_point(m, p, times));
    out.push_back(std::move(data));
  }
  return out;
}

void add_resource(const std::string& service_name, std::vector<MetricData> metrics,
                  const OtlpMetricsOptions& options,
                  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* out) {
  if (metrics.empty()) return;
  sdk::resource::Resource resource = resource_for(service_name, options);
  auto scope = sdk::instrumentationscope::InstrumentationScope::Create("weft", WEFT_VERSION);
  sdk::metrics::ResourceMetrics data(
      &resource, std::vector{sdk::metrics::ScopeMetrics(scope.get(), std::move(metrics))});
  opentelemetry::exporter::otlp::OtlpMetricUtils::PopulateRequest(data, out);
}

}  // namespace

void to_otlp(const MetricsSnapshot& snapshot, uint64_t now_ns, const OtlpMetricsOptions& options,
             opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest* out) {
  Times times{timestamp(snapshot.start_ns), timestamp(now_ns)};
  MetricsByService by_service;
  for (const FamilySeries& durations : snapshot.durations) add_family(by_service, durations, times);
  for (auto& [service, metrics] : by_service)
    add_resource(service, std::move(metrics), options, out);
  add_resource(options.self_service_name, self_metric_data(snapshot, times), options, out);
}

}  // namespace weft::metrics
