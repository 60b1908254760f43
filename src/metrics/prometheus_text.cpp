#include "metrics/prometheus_text.h"

#include <charconv>

#include "metrics/self_metrics.h"

namespace weft::metrics {
namespace {

// The shortest text that reads back as the same double ("0.005", "1", "2.5").
std::string format_double(double value) {
  char buf[32];
  auto result = std::to_chars(buf, buf + sizeof(buf), value);
  return std::string(buf, result.ptr);
}

std::string label(std::string_view key, std::string_view value) {
  return std::string(key) + "=\"" + escape_label_value(value) + "\"";
}

// OpenTelemetry names -> Prometheus names: dots become underscores ("http.route" ->
// "http_route"), and a duration family's name gains its unit ("..._duration_seconds").
std::string prometheus_name(std::string_view otel_name) {
  std::string out(otel_name);
  for (char& c : out)
    if (c == '.') c = '_';
  return out;
}

std::string label_text(const LabelValue& v) {
  if (!v) return "";
  if (const auto* s = std::get_if<std::string>(&*v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&*v)) return std::to_string(*i);
  if (const auto* b = std::get_if<bool>(&*v)) return *b ? "true" : "false";
  return format_double(std::get<double>(*v));
}

// The series' labels without braces; the overflow series reads "other" everywhere.
std::string series_labels(const MetricFamily& family, const SeriesLabels& s) {
  auto value = [&](const std::string& v) { return s.overflow ? std::string(kOverflowLabel) : v; };
  std::string out = label("service_name", value(s.service));
  for (size_t i = 0; i < family.label_keys.size(); ++i) {
    std::string v = i < s.values.size() ? label_text(s.values[i]) : "";
    out += "," + label(prometheus_name(family.label_keys[i]), value(v));
  }
  return out;
}

void append_family_header(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void append_sample(std::string& out, std::string_view name, std::string_view labels,
                   std::string_view value) {
  out.append(name);
  if (!labels.empty()) out.append("{").append(labels).append("}");
  out.append(" ").append(value).append("\n");
}

void append_histogram(std::string& out, const MetricFamily& family, const std::string& name,
                      const SeriesLabels& labels, const DurationHistogram& h) {
  std::string base = series_labels(family, labels);
  std::string bucket = name + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < family.bucket_bounds.size(); ++i) {
    cumulative += i < h.bucket_counts.size() ? h.bucket_counts[i] : 0;
    append_sample(out, bucket, base + "," + label("le", format_double(family.bucket_bounds[i])),
                  std::to_string(cumulative));
  }
  append_sample(out, bucket, base + "," + label("le", "+Inf"), std::to_string(h.count));
  append_sample(out, name + "_sum", base, format_double(h.sum_seconds));
  append_sample(out, name + "_count", base, std::to_string(h.count));
}

void append_counter(std::string& out, const FamilySeries& counts) {
  const MetricFamily& family = *counts.family;
  std::string name = prometheus_name(family.name) + "_total";
  append_family_header(out, name, family.description, "counter");
  for (const auto& [labels, value] : counts.series)
    append_sample(out, name, series_labels(family, labels), std::to_string(value.count));
}

void append_durations(std::string& out, const FamilySeries& durations) {
  const MetricFamily& family = *durations.family;
  if (is_counter(family)) return append_counter(out, durations);
  std::string name = prometheus_name(family.name) + "_seconds";
  append_family_header(out, name, family.description, "histogram");
  for (const auto& [labels, histogram] : durations.series)
    append_histogram(out, family, name, labels, histogram);
}

// The shortest text that reads back as the same double ("0.05", not "0.050000").
std::string shortest(double v) {
  char text[32];
  auto [end, ec] = std::to_chars(text, text + sizeof(text), v);
  return ec == std::errc() ? std::string(text, end) : std::to_string(v);
}

void append_self_metric(std::string& out, const SelfMetric& m) {
  append_family_header(out, m.prometheus_name, m.description,
                       m.kind == SelfMetricKind::Counter ? "counter" : "gauge");
  for (const auto& p : m.points) {
    std::string labels = m.label_key.empty() ? "" : label(m.label_key, p.label_value);
    append_sample(out, m.prometheus_name, labels,
                  m.kind == SelfMetricKind::Ratio ? shortest(p.ratio) : std::to_string(p.value));
  }
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_prometheus(const MetricsSnapshot& snapshot) {
  std::string out;
  for (const FamilySeries& durations : snapshot.durations) append_durations(out, durations);
  for (const SelfMetric& m : self_metrics(snapshot.self, snapshot.overflow))
    append_self_metric(out, m);
  return out;
}

}  // namespace weft::metrics
