// Metrics as an OTLP ExportMetricsServiceRequest: resources, scope, histograms, sums, gauges.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "metrics/metrics_registry.h"
#include "metrics/otlp_metrics.h"
#include "protocols/protocol.h"

// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

using namespace weft;
using namespace weft::metrics;
namespace pb = opentelemetry::proto;
using Request = pb::collector::metrics::v1::ExportMetricsServiceRequest;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kNow = 1'800'000'000'000'000'000ull;

trace::Span span(trace::SpanKind kind, const std::string& service, const std::string& route,
                 int64_t status, uint64_t duration_ns) {
  trace::Span s;
  s.kind = kind;
  s.start_ns = 1'700'000'000'000'000'000ull;
  s.end_ns = s.start_ns + duration_ns;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = service;
  s.resource = resource;
  s.metric_family = protocols::find_protocol("http1")->metric_family(s.kind);
  s.attributes.push_back({"http.request.method", std::string("GET")});
  if (!route.empty())
    s.attributes.push_back(kind == trace::SpanKind::Server ? Attribute{"http.route", route}
                                                           : Attribute{"url.template", route});
  if (status) s.attributes.push_back({"http.response.status_code", status});
  return s;
}

std::string any_to_string(const pb::common::v1::AnyValue& v) {
  switch (v.value_case()) {
    case pb::common::v1::AnyValue::kStringValue:
      return v.string_value();
    case pb::common::v1::AnyValue::kIntValue:
      return "int:" + std::to_string(v.int_value());
    case pb::common::v1::AnyValue::kBoolValue:
      return v.bool_value() ? "bool:true" : "bool:false";
    default:
      return "?";
  }
}

template <typename Attributes>
std::map<std::string, std::string> attributes_of(const Attributes& attributes) {
  std::map<std::string, std::string> out;
  for (const auto& kv : attributes) out[kv.key()] = any_to_string(kv.value());
  return out;
}

const pb::metrics::v1::ResourceMetrics* find_resource(const Request& r, const std::string& name) {
  for (const auto& rm : r.resource_metrics())
    if (attributes_of(rm.resource().attributes())["service.name"] == name) return &rm;
  return nullptr;
}

// The resource of `name`; the test stops here when there is none.
const pb::metrics::v1::ResourceMetrics& require_resource(const Request& r,
                                                         const std::string& name) {
  const auto* found = find_resource(r, name);
  REQUIRE_MESSAGE(found, "no resource for ", name);
  return *found;
}

const pb::metrics::v1::Metric* find_metric(const pb::metrics::v1::ResourceMetrics& rm,
                                           const std::string& name) {
  for (const auto& scope : rm.scope_metrics())
    for (const auto& m : scope.metrics())
      if (m.name() == name) return &m;
  return nullptr;
}

std::vector<std::string> metric_names(const pb::metrics::v1::ResourceMetrics& rm) {
  std::vector<std::string> names;
  for (const auto& scope : rm.scope_metrics())
    for (const auto& m : scope.metrics()) names.push_back(m.name());
  return names;
}

OtlpMetricsOptions options() {
  OtlpMetricsOptions o;
  o.host_name = "node-1";
  o.resource_attributes = {
      {"deployment.environment", "test"}, {"service.name", "ignored"}, {"host.name", "ignored"}};
  return o;
}

Request request_of(const MetricsRegistry& registry, const OtlpMetricsOptions& o = options()) {
  Request r;
  to_otlp(registry.snapshot(), kNow, o, &r);
  return r;
}

}  // namespace

TEST_CASE("otlp metrics: one resource per traced service and one for weft, exactly") {
  MetricsRegistry registry;
  registry.record_span(span(trace::SpanKind::Server, "front", "/a", 200, kMs));
  registry.record_span(span(trace::SpanKind::Client, "front", "/b", 200, kMs));
  registry.record_span(span(trace::SpanKind::Server, "back", "/b", 200, kMs));
  Request r = request_of(registry);
  REQUIRE(r.resource_metrics_size() == 3);
  for (const char* service : {"back", "front"}) {
    const auto* rm = find_resource(r, service);
    REQUIRE_MESSAGE(rm, service);
    // Only what weft knows: no SDK attributes, nothing from weft's own environment.
    CHECK(attributes_of(rm->resource().attributes()) ==
          std::map<std::string, std::string>{{"service.name", service},
                                             {"host.name", "node-1"},
                                             {"deployment.environment", "test"}});
    REQUIRE(rm->scope_metrics_size() == 1);
    CHECK(rm->scope_metrics(0).scope().name() == "weft");
    CHECK(rm->scope_metrics(0).scope().version() == WEFT_VERSION);
  }
  CHECK(metric_names(require_resource(r, "front")) ==
        std::vector<std::string>{"http.server.request.duration", "http.client.request.duration"});
  CHECK(metric_names(require_resource(r, "back")) ==
        std::vector<std::string>{"http.server.request.duration"});
  const auto* weft = find_resource(r, "weft");
  REQUIRE(weft);
  CHECK(attributes_of(weft->resource().attributes()) ==
        std::map<std::string, std::string>{
            {"service.name", "weft"}, {"host.name", "node-1"}, {"deployment.environment", "test"}});
}

TEST_CASE("otlp metrics: durations are cumulative histograms with the advisory bounds") {
  MetricsRegistry registry;
  registry.record_span(span(trace::SpanKind::Server, "front", "/users/{id}", 200, 3 * kMs));
  registry.record_span(span(trace::SpanKind::Server, "front", "/users/{id}", 200, 80 * kMs));
  registry.record_span(span(trace::SpanKind::Server, "front", "/users/{id}", 200, 12'000 * kMs));
  registry.record_span(span(trace::SpanKind::Server, "front", "", 0, 1'000 * kMs));
  MetricsSnapshot snapshot = registry.snapshot();
  Request r;
  to_otlp(snapshot, kNow, options(), &r);

  const auto* metric = find_metric(require_resource(r, "front"), "http.server.request.duration");
  REQUIRE(metric);
  CHECK(metric->unit() == "s");
  CHECK(metric->description() == "Duration of HTTP server requests.");
  REQUIRE(metric->has_histogram());
  const auto& histogram = metric->histogram();
  CHECK(histogram.aggregation_temporality() == pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  REQUIRE(histogram.data_points_size() == 2);

  // Series in label order: the one without route or status first.
  const auto& bare = histogram.data_points(0);
  CHECK(attributes_of(bare.attributes()) ==
        std::map<std::string, std::string>{{"http.request.method", "GET"}});
  CHECK(bare.count() == 1);

  const auto& p = histogram.data_points(1);
  CHECK(attributes_of(p.attributes()) ==
        std::map<std::string, std::string>{{"http.request.method", "GET"},
                                           {"http.route", "/users/{id}"},
                                           {"http.response.status_code", "int:200"}});
  CHECK(std::vector<double>(p.explicit_bounds().begin(), p.explicit_bounds().end()) ==
        std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5,
                            10});
  CHECK(std::vector<uint64_t>(p.bucket_counts().begin(), p.bucket_counts().end()) ==
        std::vector<uint64_t>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  CHECK(p.count() == 3);
  CHECK(p.sum() == doctest::Approx(12.083));
  CHECK(p.min() == doctest::Approx(0.003));
  CHECK(p.max() == doctest::Approx(12));
  CHECK(p.start_time_unix_nano() == snapshot.start_ns);
  CHECK(p.time_unix_nano() == kNow);
  CHECK(snapshot.start_ns > 1'600'000'000'000'000'000ull);
}

TEST_CASE("otlp metrics: client durations carry url.template") {
  MetricsRegistry registry;
  registry.record_span(span(trace::SpanKind::Client, "front", "/orders/{id}", 503, 30 * kMs));
  Request r = request_of(registry);
  const auto* metric = find_metric(require_resource(r, "front"), "http.client.request.duration");
  REQUIRE(metric);
  REQUIRE(metric->histogram().data_points_size() == 1);
  const auto& p = metric->histogram().data_points(0);
  CHECK(attributes_of(p.attributes()) ==
        std::map<std::string, std::string>{{"http.request.method", "GET"},
                                           {"url.template", "/orders/{id}"},
                                           {"http.response.status_code", "int:503"}});
  CHECK(p.bucket_counts(3) == 1);  // (0.025, 0.05]
}

TEST_CASE("otlp metrics: the overflow series is marked as the specification says") {
  MetricsRegistry registry({.max_series_per_metric = 1, .max_routes_per_service = 100});
  registry.record_span(span(trace::SpanKind::Server, "front", "/a", 200, kMs));
  registry.record_span(span(trace::SpanKind::Server, "back", "/a", 200, kMs));
  Request r = request_of(registry);
  const auto* other = find_resource(r, "other");
  REQUIRE(other);
  const auto* metric = find_metric(*other, "http.server.request.duration");
  REQUIRE(metric);
  REQUIRE(metric->histogram().data_points_size() == 1);
  CHECK(attributes_of(metric->histogram().data_points(0).attributes()) ==
        std::map<std::string, std::string>{{"otel.metric.overflow", "bool:true"}});
  CHECK_FALSE(find_resource(r, "back"));
}

TEST_CASE("otlp metrics: weft's own counters are monotonic cumulative sums, gauges gauges") {
  MetricsRegistry registry;
  SelfSnapshot self;
  self.events = 1234;
  self.events_lost = {{"ringbuf_full", 3}, {"stream_gap", 1}};
  self.spans_dropped_queue_full = 5;
  self.export_queue_spans = 9;
  self.export_queue_bytes = 4096;
  self.trace_sampling_ratio = 0.25;
  registry.set_self(self);
  OtlpMetricsOptions o = options();
  o.self_service_name = "weft-node-agent";
  Request r = request_of(registry, o);
  REQUIRE(r.resource_metrics_size() == 1);  // no spans: weft's resource only
  const auto* weft = find_resource(r, "weft-node-agent");
  REQUIRE(weft);
  CHECK(weft->scope_metrics(0).scope().name() == "weft");

  const auto* events = find_metric(*weft, "weft.events");
  REQUIRE(events);
  REQUIRE(events->has_sum());
  CHECK(events->unit() == "{event}");
  CHECK(events->sum().is_monotonic());
  CHECK(events->sum().aggregation_temporality() ==
        pb::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  REQUIRE(events->sum().data_points_size() == 1);
  CHECK(events->sum().data_points(0).as_int() == 1234);
  CHECK(events->sum().data_points(0).attributes_size() == 0);
  CHECK(events->sum().data_points(0).time_unix_nano() == kNow);

  const auto* lost = find_metric(*weft, "weft.events.lost");
  REQUIRE(lost);
  REQUIRE(lost->sum().data_points_size() == 2);
  CHECK(attributes_of(lost->sum().data_points(0).attributes()) ==
        std::map<std::string, std::string>{{"cause", "ringbuf_full"}});
  CHECK(lost->sum().data_points(0).as_int() == 3);

  const auto* dropped = find_metric(*weft, "weft.spans.dropped");
  REQUIRE(dropped);
  REQUIRE(dropped->sum().data_points_size() == 3);
  CHECK(attributes_of(dropped->sum().data_points(1).attributes()) ==
        std::map<std::string, std::string>{{"reason", "queue_full"}});
  CHECK(dropped->sum().data_points(1).as_int() == 5);

  const auto* queue_bytes = find_metric(*weft, "weft.export.queue.bytes");
  REQUIRE(queue_bytes);
  REQUIRE(queue_bytes->has_gauge());
  CHECK(queue_bytes->unit() == "By");
  REQUIRE(queue_bytes->gauge().data_points_size() == 1);
  CHECK(queue_bytes->gauge().data_points(0).as_int() == 4096);
  const auto* queue_spans = find_metric(*weft, "weft.export.queue.spans");
  REQUIRE(queue_spans);
  CHECK(queue_spans->has_gauge());
  // A ratio is a gauge of a fraction, not a count.
  const auto* ratio = find_metric(*weft, "weft.traces.sampling_ratio");
  REQUIRE(ratio);
  REQUIRE(ratio->has_gauge());
  CHECK(ratio->unit() == "1");
  REQUIRE(ratio->gauge().data_points_size() == 1);
  CHECK(ratio->gauge().data_points(0).as_double() == 0.25);

  // No protocol reported parse errors: a metric without points has no type, so it is left out.
  CHECK_FALSE(find_metric(*weft, "weft.parse_errors"));
  CHECK(metric_names(*weft) ==
        std::vector<std::string>{
            "weft.events", "weft.events.lost", "weft.connections.evicted",
            "weft.capture.skip_verdicts", "weft.capture.skipped_bytes", "weft.spans",
            "weft.traces.sampled_out", "weft.traces.sampling_ratio", "weft.links.conflicts",
            "weft.traces.settled_early", "weft.spans.forced_early", "weft.spans.waited_for_parent",
            "weft.spans.exported", "weft.spans.dropped", "weft.export.failures",
            "weft.export.retries", "weft.export.queue.spans", "weft.export.queue.bytes",
            "weft.metric.series_overflow"});
}

TEST_CASE("otlp metrics: the request serializes and parses back") {
  MetricsRegistry registry;
  registry.record_span(span(trace::SpanKind::Server, "caf\xc3\xa9", "/\xff", 200, kMs));
  Request r = request_of(registry);
  std::string wire;
  REQUIRE(r.SerializeToString(&wire));
  Request back;
  REQUIRE(back.ParseFromString(wire));
  CHECK(back.resource_metrics_size() == 2);
  CHECK(find_resource(back, "caf\xc3\xa9"));
}
