#include "metrics/metrics_registry.h"

#include <algorithm>
#include <chrono>

#include "metrics/prometheus_text.h"
#include "protocols/protocol.h"

namespace weft::metrics {
namespace {

// The bucket bounds in nanoseconds: spans carry integer nanoseconds, so placement is exact.
std::vector<uint64_t> bucket_bounds_ns(const std::vector<double>& bounds) {
  std::vector<uint64_t> out;
  for (double b : bounds) out.push_back(static_cast<uint64_t>(b * 1'000'000 + 0.5) * 1000);
  return out;
}

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
bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string valid_utf8(std::string_view s) {
  // Nearly every label is ASCII: one pass to see that, then one copy.
  if (is_ascii(s)) return std::string(s);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t length = utf8_sequence_length(s, i);
    out.append(length ? s.substr(i, length) : std::string_view("\xEF\xBF\xBD"));
    i += length ? length : 1;
  }
  return out;
}

LabelValue label_value(const trace::Span& span, std::string_view key) {
  const trace::Attribute* a = trace::find_attribute(span, key);
  if (!a) return std::nullopt;
  if (const auto* text = std::get_if<std::string>(&a->value))
    return AttributeValue(valid_utf8(*text));
  return a->value;
}

void make_valid_utf8(LabelValue& value) {
  if (!value) return;
  if (auto* text = std::get_if<std::string>(&*value)) {
    if (!is_ascii(*text)) *text = valid_utf8(*text);
  }
}

// A span not yet described (its trace may be sampled out) has no attributes to read: its
// protocol gives the label values straight from the exchange, the same ones describe() would.
bool labels_from_exchange(const trace::Span& span, const MetricFamily& family,
                          std::vector<LabelValue>& values) {
  if (!span.name.empty() || !span.exchange || !span.exchange->protocol) return false;
  if (!span.exchange->protocol->metric_labels(*span.exchange, span.kind, values)) return false;
  values.resize(family.label_keys.size());
  for (LabelValue& v : values) make_valid_utf8(v);
  return true;
}

// Into `labels`, whose strings and vector keep their capacity from the previous span.
void fill_labels(const trace::Span& span, const MetricFamily& family, SeriesLabels& labels) {
  // Both arms views: with a std::string and "" the conditional would make a temporary string.
  std::string_view service =
      span.resource ? std::string_view(span.resource->service_name) : std::string_view();
  if (is_ascii(service))
    labels.service.assign(service);
  else
    labels.service = valid_utf8(service);
  labels.values.clear();
  labels.overflow = false;
  if (labels_from_exchange(span, family, labels.values)) return;
  for (const std::string& key : family.label_keys) labels.values.push_back(label_value(span, key));
}

void mix(size_t& seed, size_t h) {
  seed ^= h + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
}

}  // namespace

size_t SeriesLabelsHash::operator()(const SeriesLabels& labels) const {
  size_t seed = std::hash<std::string>{}(labels.service) ^ labels.overflow;
  for (const LabelValue& v : labels.values) {
    if (!v) {
      mix(seed, 0x51ed);
      continue;
    }
    mix(seed,
        std::visit([](const auto& x) { return std::hash<std::decay_t<decltype(x)>>{}(x); }, *v));
  }
  return seed;
}

namespace {

void observe(DurationHistogram& h, const std::vector<uint64_t>& bounds_ns, uint64_t duration_ns) {
  if (h.bucket_counts.empty()) h.bucket_counts.assign(bounds_ns.size() + 1, 0);
  size_t bucket =
      std::lower_bound(bounds_ns.begin(), bounds_ns.end(), duration_ns) - bounds_ns.begin();
  ++h.bucket_counts[bucket];
  double seconds = static_cast<double>(duration_ns) / 1e9;
  h.min_seconds = h.count == 0 ? seconds : std::min(h.min_seconds, seconds);
  h.max_seconds = h.count == 0 ? seconds : std::max(h.max_seconds, seconds);
  h.sum_seconds += seconds;
  ++h.count;
}

}  // namespace

MetricsRegistry::MetricsRegistry(MetricsLimits limits) : limits_(limits), start_ns_(wall_now_ns()) {
  for (const protocols::Protocol* p : protocols::registry())
    for (const MetricFamily* family : p->metric_families()) metric_for(family);
}

MetricsRegistry::DurationMetric& MetricsRegistry::metric_for(const MetricFamily* family) {
  for (DurationMetric& m : metrics_)
    if (m.family == family) return m;
  DurationMetric& m = metrics_.emplace_back();
  m.family = family;
  m.bounds_ns = bucket_bounds_ns(family->bucket_bounds);
  for (size_t i = 0; i < family->label_keys.size(); ++i)
    if (family->label_keys[i] == family->bounded_key) m.bounded_index = i;
  return m;
}

void MetricsRegistry::record_span(const trace::Span& span) {
  if (!span.metric_family) return;
  uint64_t duration_ns = span.end_ns > span.start_ns ? span.end_ns - span.start_ns : 0;
  std::lock_guard lock(mutex_);
  // Built in a scratch kept across spans: a series seen before (nearly every span) costs no
  // allocation.
  fill_labels(span, *span.metric_family, span_labels_);
  DurationMetric& metric = metric_for(span.metric_family);
  if (metric.last_series && metric.last_labels == span_labels_) {
    observe(*metric.last_series, metric.bounds_ns, duration_ns);
    return;
  }
  SeriesOverflow before = overflow_;
  DurationHistogram& series = series_for(metric, span_labels_);
  observe(series, metric.bounds_ns, duration_ns);
  // Labels that overflowed are not remembered: every span recorded as "other" is counted.
  bool overflowed = overflow_.routes != before.routes || overflow_.series != before.series;
  metric.last_series = overflowed ? nullptr : &series;
  if (!overflowed) metric.last_labels = span_labels_;
}

void MetricsRegistry::record_duration(const MetricFamily* family, SeriesLabels labels,
                                      uint64_t duration_ns) {
  std::lock_guard lock(mutex_);
  DurationMetric& metric = metric_for(family);
  observe(series_for(metric, labels), metric.bounds_ns, duration_ns);
}

void MetricsRegistry::record_count(const MetricFamily* family, SeriesLabels labels, uint64_t n) {
  std::lock_guard lock(mutex_);
  series_for(metric_for(family), std::move(labels)).count += n;
}

// A bounded label value a service has not used before is only taken while the service has room.
bool MetricsRegistry::bounded_allowed(const DurationMetric& metric,
                                      const SeriesLabels& labels) const {
  if (metric.bounded_index >= labels.values.size()) return true;
  auto known = metric.bounded_by_service.find(labels.service);
  if (known == metric.bounded_by_service.end() ||
      known->second.contains(labels.values[metric.bounded_index]))
    return true;
  return known->second.size() < limits_.max_routes_per_service;
}

DurationHistogram& MetricsRegistry::series_for(DurationMetric& metric, const SeriesLabels& seen) {
  // A series already made for these labels was allowed when it was made, and a bounded value
  // once allowed stays allowed: the common case needs only the index.
  if (auto it = metric.index.find(seen); it != metric.index.end()) return *it->second;
  SeriesLabels labels = seen;
  bool bounded = metric.bounded_index < labels.values.size();
  if (!bounded_allowed(metric, labels)) {
    labels.values[metric.bounded_index] = AttributeValue(std::string(kOverflowLabel));
    ++overflow_.routes;
    bounded = false;  // "other" is not remembered as a value
  }
  if (auto it = metric.index.find(labels); it != metric.index.end()) return *it->second;
  if (auto it = metric.series.find(labels); it != metric.series.end()) {
    metric.index.emplace(std::move(labels), &it->second);
    return it->second;
  }
  // The overflow series itself is not counted against the limit.
  size_t regular = metric.series.size() - metric.series.count(SeriesLabels{.overflow = true});
  if (regular >= limits_.max_series_per_metric) {
    ++overflow_.series;
    return metric.series[SeriesLabels{.overflow = true}];
  }
  // Values are remembered only with a series, so this map is bounded by the series limit.
  if (bounded)
    metric.bounded_by_service[labels.service].insert(labels.values[metric.bounded_index]);
  DurationHistogram& created = metric.series[labels];
  metric.index.emplace(std::move(labels), &created);
  return created;
}

void MetricsRegistry::set_self(const SelfSnapshot& self) {
  std::lock_guard lock(mutex_);
  self_ = self;
}

MetricsSnapshot MetricsRegistry::snapshot() const {
  MetricsSnapshot out;
  out.start_ns = start_ns_;
  std::lock_guard lock(mutex_);
  for (const DurationMetric& m : metrics_) out.durations.push_back({m.family, m.series});
  out.overflow = overflow_;
  out.self = self_;
  return out;
}

std::string MetricsRegistry::render_prometheus() const {
  return metrics::render_prometheus(snapshot());
}

}  // namespace weft::metrics
