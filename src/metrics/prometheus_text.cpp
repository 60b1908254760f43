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

struct DurationFamily {
  const char* name;
  const char* help;
  const char* route_label;
};

constexpr DurationFamily kServerDurations = {"http_server_request_duration_seconds",
                                             "Duration of HTTP server requests.", "http_route"};
constexpr DurationFamily kClientDurations = {"http_client_request_duration_seconds",
                                             "Duration of HTTP client requests.", "url_template"};

// The series' labels without braces; the overflow series reads "other" everywhere.
std::string series_labels(const DurationFamily& family, const SeriesLabels& s) {
  std::string status = s.status_code ? std::to_string(s.status_code) : "";
  if (s.overflow) status = kOverflowLabel;
  auto value = [&](const std::string& v) { return s.overflow ? std::string(kOverflowLabel) : v; };
  return label("service_name", value(s.service)) + "," +
         label("http_request_method", value(s.method)) + "," +
         label(family.route_label, value(s.route)) + "," +
         label("http_response_status_code", status);
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

void append_histogram(std::string& out, const DurationFamily& family, const SeriesLabels& labels,
                      const DurationHistogram& h) {
  std::string base = series_labels(family, labels);
  std::string bucket = std::string(family.name) + "_bucket";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kDurationBucketBounds.size(); ++i) {
    cumulative += h.bucket_counts[i];
    append_sample(out, bucket, base + "," + label("le", format_double(kDurationBucketBounds[i])),
                  std::to_string(cumulative));
  }
  append_sample(out, bucket, base + "," + label("le", "+Inf"), std::to_string(h.count));
  append_sample(out, std::string(family.name) + "_sum", base, format_double(h.sum_seconds));
  append_sample(out, std::string(family.name) + "_count", base, std::to_string(h.count));
}

void append_durations(std::string& out, const DurationFamily& family,
                      const DurationSeries& series) {
  append_family_header(out, family.name, family.help, "histogram");
  for (const auto& [labels, histogram] : series) append_histogram(out, family, labels, histogram);
}

void append_self_metric(std::string& out, const SelfMetric& m) {
  append_family_header(out, m.prometheus_name, m.description,
                       m.kind == SelfMetricKind::Counter ? "counter" : "gauge");
  for (const auto& p : m.points) {
    std::string labels = m.label_key.empty() ? "" : label(m.label_key, p.label_value);
    append_sample(out, m.prometheus_name, labels, std::to_string(p.value));
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
  append_durations(out, kServerDurations, snapshot.server_durations);
  append_durations(out, kClientDurations, snapshot.client_durations);
  for (const SelfMetric& m : self_metrics(snapshot.self, snapshot.overflow))
    append_self_metric(out, m);
  return out;
}

}  // namespace weft::metrics
