// Duration histograms from spans, cardinality limits, weft's own counters and the Prometheus
// text exposition.
#include <doctest/doctest.h>

#include <algorithm>

#include <atomic>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics_registry.h"
#include "metrics/prometheus_text.h"
#include "metrics/self_snapshot.h"
#include "protocols/protocol.h"
#include "trace_fixtures.h"

using namespace weft;
using namespace weft::metrics;
using trace::Span;
using trace::SpanKind;

namespace {

constexpr uint64_t kStart = 1'700'000'000'000'000'000ull;
constexpr uint64_t kMs = 1'000'000;

Span span(SpanKind kind, const std::string& service, const std::string& method,
          const std::string& route, int64_t status, uint64_t duration_ns) {
  Span s;
  s.kind = kind;
  s.start_ns = kStart;
  s.end_ns = kStart + duration_ns;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = service;
  s.resource = resource;
  s.metric_family = protocols::find_protocol("http1")->metric_family(s.kind);
  s.attributes.push_back({"http.request.method", method});
  if (!route.empty())
    s.attributes.push_back(kind == SpanKind::Server ? Attribute{"http.route", route}
                                                    : Attribute{"url.template", route});
  if (status) s.attributes.push_back({"http.response.status_code", status});
  return s;
}

Span server(const std::string& service, const std::string& route, uint64_t duration_ns,
            int64_t status = 200) {
  return span(SpanKind::Server, service, "GET", route, status, duration_ns);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text))
    if (l == line) return true;
  return false;
}

DurationHistogram only_series(const DurationSeries& series) {
  REQUIRE(series.size() == 1);
  return series.begin()->second;
}

DurationSeries series_of(const MetricsSnapshot& s, std::string_view family) {
  for (const FamilySeries& f : s.durations)
    if (f.family->name == family) return f.series;
  FAIL("no family " << family);
  return {};
}

DurationSeries server_series(const MetricsSnapshot& s) {
  return series_of(s, "http.server.request.duration");
}

DurationSeries client_series(const MetricsSnapshot& s) {
  return series_of(s, "http.client.request.duration");
}

std::vector<SeriesLabels> labels_of(const DurationSeries& series) {
  std::vector<SeriesLabels> out;
  for (const auto& [labels, histogram] : series) out.push_back(labels);
  return out;
}

// An HTTP series' labels; an empty route and a zero status are attributes the span lacked.
SeriesLabels L(std::string service, std::string method, std::string route, int64_t status) {
  SeriesLabels labels;
  labels.service = std::move(service);
  labels.values.resize(3);
  labels.values[0].emplace(std::move(method));
  if (!route.empty()) labels.values[1].emplace(std::move(route));
  if (status) labels.values[2].emplace(status);
  return labels;
}

}  // namespace

TEST_CASE("metrics: a duration falls in the first bucket whose bound it does not exceed") {
  MetricsRegistry registry;
  for (uint64_t d :
       {uint64_t{0}, 5 * kMs, 5 * kMs + 1, 100 * kMs, 10'000 * kMs, 10'000 * kMs + 1, 60'000 * kMs})
    registry.record_span(server("front", "/a", d));
  const DurationHistogram& h = only_series(server_series(registry.snapshot()));
  // bounds: 0.005 0.01 0.025 0.05 0.075 0.1 0.25 0.5 0.75 1 2.5 5 7.5 10 | above
  std::vector<uint64_t> expected = {2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2};
  CHECK(h.bucket_counts == expected);
  CHECK(h.count == 7);
  CHECK(h.sum_seconds ==
        doctest::Approx(0.005 + 0.005000001 + 0.1 + 10 + 10.000000001 + 60).epsilon(1e-15));
  CHECK(h.min_seconds == 0);
  CHECK(h.max_seconds == 60);
}

TEST_CASE("metrics: server and client spans feed separate histograms under their own labels") {
  MetricsRegistry registry;
  registry.record_span(span(SpanKind::Server, "front", "GET", "/users/{id}", 200, 3 * kMs));
  registry.record_span(span(SpanKind::Server, "front", "GET", "/users/{id}", 200, 4 * kMs));
  registry.record_span(span(SpanKind::Server, "front", "POST", "/users/{id}", 500, 4 * kMs));
  registry.record_span(span(SpanKind::Client, "front", "GET", "/orders", 404, 20 * kMs));
  MetricsSnapshot s = registry.snapshot();
  REQUIRE(server_series(s).size() == 2);
  REQUIRE(client_series(s).size() == 1);
  CHECK(server_series(s).at(L("front", "GET", "/users/{id}", 200)).count == 2);
  CHECK(server_series(s).at(L("front", "POST", "/users/{id}", 500)).count == 1);
  CHECK(client_series(s).at(L("front", "GET", "/orders", 404)).count == 1);
}

TEST_CASE("metrics: spans from the span builder land under their semantic-convention labels") {
  using namespace weft::trace::test;
  trace::SpanBuilder builder{trace::SpanOptions{}};
  Chain chain;
  MetricsRegistry registry;
  auto conn = connection(100, "front", ep("10.0.0.1", 40009), ep("10.0.0.9", 80),
                         process(100, "/usr/bin/front"));
  auto odd = exchange(Role::Client, conn, "BREW", "/pots/12", 418);
  set_timing(*odd, 1000, 1100, 2000, 2100, 101);
  for (const auto& ex : {chain.fs, chain.fc, odd}) registry.record_span(builder.build(ex));

  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).contains(L("front", "GET", "/front", 200)));
  CHECK(client_series(s).contains(L("front", "GET", "/middle/{id}", 200)));
  CHECK(client_series(s).contains(L("front", "_OTHER", "/pots/{id}", 418)));
  CHECK(only_series(server_series(s)).sum_seconds == doctest::Approx(1100e-9));
}

TEST_CASE("metrics: spans not described yet land under the same labels as described ones") {
  using namespace weft::trace::test;
  trace::SpanBuilder builder{trace::SpanOptions{}};
  Chain chain;
  auto conn = connection(100, "front", ep("10.0.0.1", 40009), ep("10.0.0.9", 80),
                         process(100, "/usr/bin/front"));
  auto odd = exchange(Role::Client, conn, "BREW", "/pots/12?x=1", 418);
  auto no_status = exchange(Role::Server, conn, "GET", "*", 0);
  set_timing(*odd, 1000, 1100, 2000, 2100, 101);
  set_timing(*no_status, 1000, 1100, 2000, 2100, 101);
  MetricsRegistry described, deferred;
  for (const auto& ex : {chain.fs, chain.fc, odd, no_status}) {
    described.record_span(builder.build(ex));
    trace::Span span = builder.build_deferred(ex);
    REQUIRE(span.attributes.empty());  // the labels cannot come from attributes
    deferred.record_span(span);
  }
  MetricsSnapshot want = described.snapshot(), got = deferred.snapshot();
  CHECK(client_series(got).contains(L("front", "_OTHER", "/pots/{id}", 418)));
  CHECK(server_series(got).size() == 2);
  CHECK(labels_of(server_series(got)) == labels_of(server_series(want)));
  CHECK(labels_of(client_series(got)) == labels_of(client_series(want)));
}

TEST_CASE("metrics: a missing route or status code is an empty label") {
  MetricsRegistry registry;
  registry.record_span(span(SpanKind::Server, "front", "GET", "", 0, kMs));
  Span no_resource = span(SpanKind::Client, "", "GET", "", 200, kMs);
  no_resource.resource = nullptr;
  registry.record_span(no_resource);
  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).contains(L("front", "GET", "", 0)));
  CHECK(client_series(s).contains(L("", "GET", "", 200)));
  std::string text = render_prometheus(s);
  CHECK(has_line(text,
                 "http_server_request_duration_seconds_count{service_name=\"front\","
                 "http_request_method=\"GET\",http_route=\"\",http_response_status_code=\"\"} 1"));
  CHECK(has_line(text,
                 "http_client_request_duration_seconds_count{service_name=\"\","
                 "http_request_method=\"GET\",url_template=\"\",http_response_status_code=\"200\"}"
                 " 1"));
}

TEST_CASE("metrics: routes past a service's route limit are recorded as route \"other\"") {
  MetricsRegistry registry({.max_series_per_metric = 100, .max_routes_per_service = 2});
  registry.record_span(server("front", "/a", kMs));
  registry.record_span(server("front", "/b", kMs));
  registry.record_span(server("front", "/c", kMs));       // third route: "other"
  registry.record_span(server("front", "/d", kMs));       // fourth: "other"
  registry.record_span(server("front", "/a", kMs, 500));  // a known route stays itself
  registry.record_span(server("back", "/c", kMs));        // another service has its own room
  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).at(L("front", "GET", "other", 200)).count == 2);
  CHECK(server_series(s).at(L("front", "GET", "/a", 500)).count == 1);
  CHECK(server_series(s).at(L("back", "GET", "/c", 200)).count == 1);
  CHECK_FALSE(server_series(s).contains(L("front", "GET", "/c", 200)));
  CHECK(server_series(s).size() == 5);
  CHECK(s.overflow.routes == 2);
  CHECK(s.overflow.series == 0);
  CHECK(has_line(render_prometheus(s),
                 "weft_metric_series_overflow_total{limit=\"routes_per_service\"} 2"));
}

TEST_CASE("metrics: spans of one series in a row, and of an overflowed route, each count once") {
  // The previous span's series is remembered: a run of one label set, a different set in
  // between, and a run of an overflowed route must all land where a lookup would put them.
  MetricsRegistry registry({.max_series_per_metric = 100, .max_routes_per_service = 1});
  for (int i = 0; i < 3; ++i) registry.record_span(server("front", "/a", kMs));
  registry.record_span(server("front", "/a", kMs, 500));
  registry.record_span(server("front", "/a", kMs));
  for (int i = 0; i < 4; ++i) registry.record_span(server("front", "/b", kMs));  // "other"
  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).at(L("front", "GET", "/a", 200)).count == 4);
  CHECK(server_series(s).at(L("front", "GET", "/a", 500)).count == 1);
  CHECK(server_series(s).at(L("front", "GET", "other", 200)).count == 4);
  CHECK(s.overflow.routes == 4);
}

TEST_CASE("metrics: label sets past the series limit go to one overflow series, all \"other\"") {
  MetricsRegistry registry({.max_series_per_metric = 2, .max_routes_per_service = 100});
  registry.record_span(server("a", "/x", kMs));
  registry.record_span(server("b", "/x", kMs));
  registry.record_span(server("c", "/x", kMs));      // third label set: overflow
  registry.record_span(server("d", "/y", 2 * kMs));  // overflow too
  registry.record_span(server("a", "/x", kMs));      // an existing series still counts
  registry.record_span(span(SpanKind::Client, "c", "GET", "/x", 200, kMs));  // own limit
  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).size() == 3);
  CHECK(server_series(s).at(L("a", "GET", "/x", 200)).count == 2);
  DurationHistogram overflow = server_series(s).at(SeriesLabels{.overflow = true});
  CHECK(overflow.count == 2);
  CHECK(overflow.sum_seconds == doctest::Approx(0.003));
  CHECK(client_series(s).size() == 1);
  CHECK(s.overflow.series == 2);
  std::string text = render_prometheus(s);
  CHECK(has_line(text,
                 "http_server_request_duration_seconds_count{service_name=\"other\","
                 "http_request_method=\"other\",http_route=\"other\","
                 "http_response_status_code=\"other\"} 2"));
  CHECK(has_line(text, "weft_metric_series_overflow_total{limit=\"series_per_metric\"} 2"));
}

TEST_CASE("metrics: label values escape backslash, double quote and newline") {
  CHECK(escape_label_value("plain /a-b_c{id}") == "plain /a-b_c{id}");
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  MetricsRegistry registry;
  registry.record_span(server("we\"ird\\svc\n", "/q\"uote", kMs));
  CHECK(has_line(registry.render_prometheus(),
                 "http_server_request_duration_seconds_count{service_name=\"we\\\"ird\\\\svc\\n\","
                 "http_request_method=\"GET\",http_route=\"/q\\\"uote\","
                 "http_response_status_code=\"200\"} 1"));
}

TEST_CASE("metrics: label values that are not UTF-8 are repaired, valid ones kept") {
  MetricsRegistry registry;
  registry.record_span(server("caf\xc3\xa9", "/bad\xff/\xe2\x82", kMs));  // é kept; FF, cut € not
  registry.record_span(server("svc", "/over\xc0\xaf/\xed\xa0\x80", kMs));  // overlong, surrogate
  registry.record_span(server("svc", "/ok\xf0\x9f\x98\x80", kMs));         // U+1F600 kept
  MetricsSnapshot s = registry.snapshot();
  CHECK(server_series(s).contains(
      L("caf\xc3\xa9", "GET", "/bad\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd", 200)));
  CHECK(server_series(s).contains(
      L("svc", "GET", "/over\xef\xbf\xbd\xef\xbf\xbd/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 200)));
  CHECK(server_series(s).contains(L("svc", "GET", "/ok\xf0\x9f\x98\x80", 200)));
}

TEST_CASE("metrics: the exposition of a small registry, line by line") {
  MetricsRegistry registry;
  registry.record_span(span(SpanKind::Server, "front", "GET", "/users/{id}", 200, 3 * kMs));
  registry.record_span(span(SpanKind::Server, "front", "GET", "/users/{id}", 200, 80 * kMs));
  registry.record_span(span(SpanKind::Server, "front", "GET", "/users/{id}", 200, 12'000 * kMs));
  registry.record_span(span(SpanKind::Client, "front", "POST", "/orders", 503, 1'000 * kMs));
  SelfSnapshot self;
  self.events = 1234;
  self.events_lost = {{"ringbuf_full", 3}, {"stream_gap", 1}};
  self.parse_errors = {{"http1", 2}};
  self.connections_evicted = 4;
  self.skip_verdicts = 11;
  self.skipped_bytes = 12;
  self.tls_calls = {{"calls", 13}, {"unmapped", 14}};
  self.link_conflicts = 15;
  self.traces_settled_early = 16;
  self.spans_forced_early = 17;
  self.waited_for_parent = 18;
  self.spans_built = 40;
  self.traces_sampled_out = 5;
  self.trace_sampling_ratio = 0.05;
  self.spans_sampled_out = 6;
  self.spans_exported = 30;
  self.spans_dropped_queue_full = 1;
  self.spans_dropped_failed = 2;
  self.export_failures = 7;
  self.export_retries = 8;
  self.export_queue_spans = 9;
  self.export_queue_bytes = 10;
  registry.set_self(self);

  const std::string server_labels =
      "service_name=\"front\",http_request_method=\"GET\",http_route=\"/users/{id}\","
      "http_response_status_code=\"200\"";
  const std::string client_labels =
      "service_name=\"front\",http_request_method=\"POST\",url_template=\"/orders\","
      "http_response_status_code=\"503\"";
  auto buckets = [](const std::string& name, const std::string& labels,
                    const std::vector<int>& cumulative) {
    const char* le[] = {"0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5",
                        "0.75",  "1",    "2.5",   "5",    "7.5",   "10",  "+Inf"};
    std::vector<std::string> out;
    for (size_t i = 0; i < cumulative.size(); ++i)
      out.push_back(name + "_bucket{" + labels + ",le=\"" + le[i] + "\"} " +
                    std::to_string(cumulative[i]));
    return out;
  };
  std::vector<std::string> expected = {
      "# HELP http_server_request_duration_seconds Duration of HTTP server requests.",
      "# TYPE http_server_request_duration_seconds histogram"};
  for (auto& l : buckets("http_server_request_duration_seconds", server_labels,
                         {1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3}))
    expected.push_back(l);
  expected.push_back("http_server_request_duration_seconds_sum{" + server_labels + "} 12.083");
  expected.push_back("http_server_request_duration_seconds_count{" + server_labels + "} 3");
  expected.push_back(
      "# HELP http_client_request_duration_seconds Duration of HTTP client requests.");
  expected.push_back("# TYPE http_client_request_duration_seconds histogram");
  for (auto& l : buckets("http_client_request_duration_seconds", client_labels,
                         {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}))
    expected.push_back(l);
  expected.push_back("http_client_request_duration_seconds_sum{" + client_labels + "} 1");
  expected.push_back("http_client_request_duration_seconds_count{" + client_labels + "} 1");
  // Other protocols' families are announced, empty, in registry order, once each (database
  // protocols share theirs).
  std::vector<const MetricFamily*> announced;
  for (const protocols::Protocol* p : protocols::registry()) {
    for (const MetricFamily* f : p->metric_families()) {
      if (f->name.starts_with("http.")) continue;
      if (std::find(announced.begin(), announced.end(), f) != announced.end()) continue;
      announced.push_back(f);
      std::string name = f->name + "_seconds";
      for (char& c : name)
        if (c == '.') c = '_';
      expected.push_back("# HELP " + name + " " + f->description);
      expected.push_back("# TYPE " + name + " histogram");
    }
  }
  for (const char* l : {
           "# HELP weft_events_total Events weft received from the kernel or a recording.",
           "# TYPE weft_events_total counter",
           "weft_events_total 1234",
           "# HELP weft_events_lost_total Events lost or cut short, by cause.",
           "# TYPE weft_events_lost_total counter",
           "weft_events_lost_total{cause=\"ringbuf_full\"} 3",
           "weft_events_lost_total{cause=\"stream_gap\"} 1",
           "# HELP weft_parse_errors_total Bytes that were not a valid message, by protocol.",
           "# TYPE weft_parse_errors_total counter",
           "weft_parse_errors_total{protocol=\"http1\"} 2",
           "# HELP weft_connections_evicted_total Connections freed early to stay within the "
           "memory budget.",
           "# TYPE weft_connections_evicted_total counter",
           "weft_connections_evicted_total 4",
           "# HELP weft_capture_skip_verdicts_total Verdicts that let the kernel count a body's "
           "bytes without copying them.",
           "# TYPE weft_capture_skip_verdicts_total counter",
           "weft_capture_skip_verdicts_total 11",
           "# HELP weft_capture_skipped_bytes_total Body bytes the kernel counted without copying "
           "them (skip verdicts; not a loss).",
           "# TYPE weft_capture_skipped_bytes_total counter",
           "weft_capture_skipped_bytes_total 12",
           "# HELP weft_tls_calls_total TLS library calls weft's uprobes saw (kind=calls), and "
           "those it could not tie to a connection or read, by kind.",
           "# TYPE weft_tls_calls_total counter",
           "weft_tls_calls_total{kind=\"calls\"} 13",
           "weft_tls_calls_total{kind=\"unmapped\"} 14",
           "# HELP weft_spans_total Spans built, before sampling.",
           "# TYPE weft_spans_total counter",
           "weft_spans_total 40",
           "# HELP weft_traces_sampled_out_total Traces the sampler did not keep.",
           "# TYPE weft_traces_sampled_out_total counter",
           "weft_traces_sampled_out_total 5",
           "# HELP weft_traces_sampling_ratio The ratio root traces are kept at now: the "
           "configured ratio, or what --max-traces-per-second allows.",
           "# TYPE weft_traces_sampling_ratio gauge",
           "weft_traces_sampling_ratio 0.05",
           "# HELP weft_links_total Parent links made, by evidence.",
           "# TYPE weft_links_total counter",
           "# HELP weft_links_not_inferred_total Calls a request on their thread could have held, "
           "left without a parent because the thread-per-request premise does not hold, by reason.",
           "# TYPE weft_links_not_inferred_total counter",
           "# HELP weft_links_conflicts_total Wire trace contexts that disagreed with stronger "
           "evidence (the evidence won).",
           "# TYPE weft_links_conflicts_total counter",
           "weft_links_conflicts_total 15",
           "# HELP weft_traces_settled_early_total Traces that left before --trace-wait because "
           "nothing could still join them.",
           "# TYPE weft_traces_settled_early_total counter",
           "weft_traces_settled_early_total 16",
           "# HELP weft_spans_forced_early_total Spans resolved before their wait to stay within "
           "the pending-span limit.",
           "# TYPE weft_spans_forced_early_total counter",
           "weft_spans_forced_early_total 17",
           "# HELP weft_spans_waited_for_parent_total Client calls held past their wait for a "
           "request still open on their thread.",
           "# TYPE weft_spans_waited_for_parent_total counter",
           "weft_spans_waited_for_parent_total 18",
           "# HELP weft_spans_exported_total Spans the exporter accepted.",
           "# TYPE weft_spans_exported_total counter",
           "weft_spans_exported_total 30",
           "# HELP weft_spans_dropped_total Spans not exported, by reason.",
           "# TYPE weft_spans_dropped_total counter",
           "weft_spans_dropped_total{reason=\"export_failed\"} 2",
           "weft_spans_dropped_total{reason=\"queue_full\"} 1",
           "weft_spans_dropped_total{reason=\"sampled_out\"} 6",
           "# HELP weft_export_failures_total Failed export attempts, retryable or not.",
           "# TYPE weft_export_failures_total counter",
           "weft_export_failures_total 7",
           "# HELP weft_export_retries_total Export attempts that were retries.",
           "# TYPE weft_export_retries_total counter",
           "weft_export_retries_total 8",
           "# HELP weft_export_queue_spans Spans waiting to be exported.",
           "# TYPE weft_export_queue_spans gauge",
           "weft_export_queue_spans 9",
           "# HELP weft_export_queue_bytes Bytes of spans waiting to be exported.",
           "# TYPE weft_export_queue_bytes gauge",
           "weft_export_queue_bytes 10",
           "# HELP weft_metric_series_overflow_total Measurements recorded under \"other\" labels "
           "past a cardinality limit.",
           "# TYPE weft_metric_series_overflow_total counter",
           "weft_metric_series_overflow_total{limit=\"routes_per_service\"} 0",
           "weft_metric_series_overflow_total{limit=\"series_per_metric\"} 0",
       })
    expected.push_back(l);

  std::string text = registry.render_prometheus();
  CHECK(text.ends_with("\n"));
  std::vector<std::string> actual = lines_of(text);
  CHECK(actual.size() == expected.size());
  for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    INFO("line ", i + 1);
    CHECK(actual[i] == expected[i]);
  }
}

TEST_CASE("metrics: an empty registry still announces every family") {
  std::string text = MetricsRegistry().render_prometheus();
  CHECK(has_line(text, "# TYPE http_server_request_duration_seconds histogram"));
  CHECK(has_line(text, "# TYPE http_client_request_duration_seconds histogram"));
  CHECK(has_line(text, "weft_events_total 0"));
  CHECK(has_line(text, "# TYPE weft_events_lost_total counter"));
  CHECK(text.find("http_server_request_duration_seconds_bucket") == std::string::npos);
}

TEST_CASE("metrics: the self snapshot gathers the pipeline's counters") {
  capture::SourceStats source;
  source.records = 100;
  source.malformed = 1;
  source.kernel[WEFT_LOSS_RINGBUF_FULL] = 7;
  source.kernel[WEFT_LOSS_TRUNCATED] = 3;
  capture::StreamStats stream;
  stream.gaps = 2;
  conn::ConnectionTracker tracker(
      {}, [](Exchange&&) {}, 0);
  trace::StitchCounters stitch;
  stitch.spans = 50;
  stitch.client_spans_deferred = 4;  // counted by the stitcher, never built
  stitch.traces_sampled_out = 4;
  stitch.sampling_ratio = 0.125;
  stitch.spans_sampled_out = 12;
  exporter::QueueCounters queue;
  queue.spans_exported = 30;
  queue.spans_dropped_full = 5;
  queue.spans_dropped_refused = 2;
  queue.spans_unsent_at_exit = 1;
  queue.export_failures = 6;
  queue.retries = 2;
  queue.queued_spans = 8;
  queue.queued_bytes = 8192;

  SelfSnapshot s = collect_self_snapshot(source, stream, tracker, stitch, queue);
  CHECK(s.events == 100);
  CHECK(s.events_lost == std::map<std::string, uint64_t>{{"ringbuf_full", 7},
                                                         {"truncated", 3},
                                                         {"map_full", 0},
                                                         {"read_failed", 0},
                                                         {"no_cookie", 0},
                                                         {"stream_gap", 2},
                                                         {"malformed", 1}});
  std::map<std::string, uint64_t> no_errors;  // one entry per registered protocol
  for (const protocols::Protocol* p : protocols::registry()) no_errors[std::string(p->name())] = 0;
  CHECK(s.parse_errors == no_errors);
  CHECK(s.connections_evicted == 0);
  CHECK(s.spans_built == 46);
  CHECK(s.traces_sampled_out == 4);
  CHECK(s.trace_sampling_ratio == 0.125);
  CHECK(s.spans_sampled_out == 12);
  CHECK(s.spans_exported == 30);
  CHECK(s.spans_dropped_queue_full == 5);
  CHECK(s.spans_dropped_failed == 3);  // refused and unsent at exit: the backend has not got them
  CHECK(s.export_failures == 6);
  CHECK(s.export_retries == 2);
  CHECK(s.export_queue_spans == 8);
  CHECK(s.export_queue_bytes == 8192);
}

// Records `spans` new series on a pipeline thread while this thread takes snapshots; true when
// every snapshot showed only whole measurements and none was lost.
bool snapshots_consistent_while_recording(int spans) {
  MetricsRegistry registry({.max_series_per_metric = static_cast<size_t>(spans),
                            .max_routes_per_service = static_cast<size_t>(spans)});
  std::atomic<bool> recording{true};
  std::thread pipeline([&] {
    for (int i = 0; i < spans; ++i)
      registry.record_span(server("svc" + std::to_string(i % 10), "/r" + std::to_string(i),
                                  static_cast<uint64_t>(i) * 1000));
    recording = false;
  });
  bool consistent = true;
  for (int snapshots = 0; recording || snapshots == 0; ++snapshots) {
    for (const auto& [labels, h] : server_series(registry.snapshot())) {
      uint64_t in_buckets = 0;
      for (uint64_t n : h.bucket_counts) in_buckets += n;
      consistent = consistent && in_buckets == 1 && h.count == 1;
    }
  }
  pipeline.join();
  return consistent && server_series(registry.snapshot()).size() == static_cast<size_t>(spans);
}

TEST_CASE("metrics: snapshots taken while the pipeline records are consistent") {
  // New series keep arriving while snapshots copy them. Without the lock the copies see
  // half-made series (or the maps break): most rounds fail then, so a few rounds catch it.
  for (int round = 0; round < 5; ++round) {
    INFO("round ", round);
    CHECK(snapshots_consistent_while_recording(20'000));
  }
}
