#include "metrics/metrics_registry.h"

#include <algorithm>
#include <chrono>

#include "metrics/prometheus_text.h"

namespace weft::metrics {
namespace {

// The bucket bounds in nanoseconds: spans carry integer nanoseconds, so placement is exact.
constexpr std::array<uint64_t, kDurationBucketBounds.size()> bucket_bounds_ns() {
  std::array<uint64_t, kDurationBucketBounds.size()> out{};
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<uint64_t>(kDurationBucketBounds[i] * 1'000'000 + 0.5) * 1000;
  return out;
}
constexpr auto kBucketBoundsNs = bucket_bounds_ns();

uint64_t wall_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// The length of the well-formed UTF-8 sequence at s[i] (Unicode table 3-7), 0 when there is none.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  unsigned char lead = s[i];
  if (lead < 0x80) return 1;
  size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // the second byte's range; later ones are 80..BF
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // beyond U+10FFFF
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    unsigned char b = s[i + k];
    if (b < (k == 1 ? low : 0x80) || b > (k == 1 ? high : 0xBF)) return 0;
  }
  return length;
}

// Label values come from the wire (paths, service names). Prometheus rejects a whole scrape and
// protobuf a whole request over one invalid UTF-8 byte, so each becomes U+FFFD here.
std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t length = utf8_sequence_length(s, i);
    out.append(length ? s.substr(i, length) : std::string_view("\xEF\xBF\xBD"));
    i += length ? length : 1;
  }
  return out;
}

std::string string_attribute(const trace::Span& span, std::string_view key) {
  const trace::Attribute* a = trace::find_attribute(span, key);
  const std::string* value = a ? std::get_if<std::string>(&a->value) : nullptr;
  return value ? *value : std::string();
}

int64_t int_attribute(const trace::Span& span, std::string_view key) {
  const trace::Attribute* a = trace::find_attribute(span, key);
  const int64_t* value = a ? std::get_if<int64_t>(&a->value) : nullptr;
  return value ? *value : 0;
}

SeriesLabels labels_of(const trace::Span& span) {
  bool server = span.kind == trace::SpanKind::Server;
  SeriesLabels labels;
  labels.service = valid_utf8(span.resource ? span.resource->service_name : "");
  labels.method = valid_utf8(string_attribute(span, "http.request.method"));
  labels.route = valid_utf8(string_attribute(span, server ? "http.route" : "url.template"));
  labels.status_code = int_attribute(span, "http.response.status_code");
  return labels;
}

void observe(DurationHistogram& h, uint64_t duration_ns) {
  size_t bucket = std::lower_bound(kBucketBoundsNs.begin(), kBucketBoundsNs.end(), duration_ns) -
                  kBucketBoundsNs.begin();
  ++h.bucket_counts[bucket];
  double seconds = static_cast<double>(duration_ns) / 1e9;
  h.min_seconds = h.count == 0 ? seconds : std::min(h.min_seconds, seconds);
  h.max_seconds = h.count == 0 ? seconds : std::max(h.max_seconds, seconds);
  h.sum_seconds += seconds;
  ++h.count;
}

}  // namespace

MetricsRegistry::MetricsRegistry(MetricsLimits limits)
    : limits_(limits), start_ns_(wall_now_ns()) {}

void MetricsRegistry::record_span(const trace::Span& span) {
  uint64_t duration_ns = span.end_ns > span.start_ns ? span.end_ns - span.start_ns : 0;
  SeriesLabels labels = labels_of(span);
  std::lock_guard lock(mutex_);
  DurationMetric& metric = span.kind == trace::SpanKind::Server ? server_ : client_;
  observe(series_for(metric, std::move(labels)), duration_ns);
}

// A route a service has not used before is only taken while the service has room for it.
bool MetricsRegistry::route_allowed(const DurationMetric& metric,
                                    const SeriesLabels& labels) const {
  auto known = metric.routes_by_service.find(labels.service);
  if (known == metric.routes_by_service.end() || known->second.contains(labels.route)) return true;
  return known->second.size() < limits_.max_routes_per_service;
}

DurationHistogram& MetricsRegistry::series_for(DurationMetric& metric, SeriesLabels labels) {
  if (!route_allowed(metric, labels)) {
    labels.route = kOverflowLabel;
    ++overflow_.routes;
  }
  if (auto it = metric.series.find(labels); it != metric.series.end()) return it->second;
  // The overflow series itself is not counted against the limit.
  size_t regular = metric.series.size() - metric.series.count(SeriesLabels{.overflow = true});
  if (regular >= limits_.max_series_per_metric) {
    ++overflow_.series;
    return metric.series[SeriesLabels{.overflow = true}];
  }
  // Routes are remembered only with a series, so this map is bounded by the series limit.
  if (labels.route != kOverflowLabel) metric.routes_by_service[labels.service].insert(labels.route);
  return metric.series[std::move(labels)];
}

void MetricsRegistry::set_self(const SelfSnapshot& self) {
  std::lock_guard lock(mutex_);
  self_ = self;
}

MetricsSnapshot MetricsRegistry::snapshot() const {
  MetricsSnapshot out;
  out.start_ns = start_ns_;
  std::lock_guard lock(mutex_);
  out.server_durations = server_.series;
  out.client_durations = client_.series;
  out.overflow = overflow_;
  out.self = self_;
  return out;
}

std::string MetricsRegistry::render_prometheus() const {
  return metrics::render_prometheus(snapshot());
}

}  // namespace weft::metrics
