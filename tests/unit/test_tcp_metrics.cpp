// TCP metrics (docs/network.md): retransmission and reset counters, the RTT and receive-queue
// wait histograms, as /metrics and OTLP show them.
#include <doctest/doctest.h>

#include <memory>
#include <sstream>
#include <string>

#include "metrics/metrics_registry.h"
#include "metrics/otlp_metrics.h"
#include "net/tcp_facts.h"
#include "net/tcp_metrics.h"

// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::net {
namespace {

constexpr uint64_t kMs = 1'000'000;

Endpoint v4(uint8_t last, uint16_t port) {
  Endpoint e;
  e.addr = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, last};
  e.port = port;
  return e;
}

Event event(EventKind kind, uint64_t cookie, uint8_t peer, Role role = Role::Client) {
  Event e;
  e.kind = kind;
  e.mono_ns = 10 * kMs;
  e.cookie = cookie;
  e.pid = 10;
  e.comm = "curl";
  e.role = role;
  e.local = v4(1, 40000);
  e.remote = v4(peer, 80);
  return e;
}

Event tcp(TcpWhat what, uint64_t cookie, uint8_t peer, uint8_t state = 1) {
  Event e = event(EventKind::Tcp, cookie, peer);
  e.tcp_what = what;
  e.tcp_state = state;
  e.tcp.min_rtt_us = ~0u;
  return e;
}

Event retransmit(uint64_t cookie, uint8_t peer, uint8_t state, uint16_t segs) {
  Event e = tcp(TcpWhat::Retransmit, cookie, peer, state);
  e.tcp_segs = segs;
  return e;
}

// Feeds an event as `weft run` does: TcpFacts first, then the metrics of what it added.
struct Feed {
  metrics::MetricsRegistry registry;
  TcpFacts facts;
  explicit Feed(metrics::MetricsLimits limits = {}) : registry(limits) {}
  void operator()(const Event& e) {
    NetCounters before = facts.counters();
    facts.on_event(e);
    record_tcp(registry, e, before, facts.counters(), facts.find(e.cookie));
  }
  bool has_line(const std::string& line) const {
    std::istringstream text(registry.render_prometheus());
    for (std::string l; std::getline(text, l);)
      if (l == line) return true;
    return false;
  }
};

}  // namespace

TEST_CASE("tcp metrics: retransmitted segments of SYNs, SYN-ACKs and data, per service and peer") {
  Feed feed;
  feed(retransmit(1, 2, 2, 1));  // a SYN sent again
  feed(retransmit(1, 2, 1, 3));  // a GSO buffer of three data segments
  Event accepted = tcp(TcpWhat::Established, 2, 3);
  accepted.role = Role::Server;
  accepted.tcp.total_retrans = 2;  // two SYN-ACKs sent again: no record names them but this
  feed(accepted);
  CHECK(feed.has_line(
      "weft_tcp_retransmits_total{service_name=\"curl\",network_peer_address=\"10.0.0.2\"} 4"));
  CHECK(feed.has_line(
      "weft_tcp_retransmits_total{service_name=\"curl\",network_peer_address=\"10.0.0.3\"} 2"));
  CHECK(feed.has_line("# TYPE weft_tcp_retransmits_total counter"));
}

TEST_CASE("tcp metrics: a client's SYN retransmissions are not counted again at ESTABLISHED") {
  Feed feed;
  feed(retransmit(1, 2, 2, 1));
  Event established = tcp(TcpWhat::Established, 1, 2);
  established.tcp.total_retrans = 1;
  feed(established);
  CHECK(feed.has_line(
      "weft_tcp_retransmits_total{service_name=\"curl\",network_peer_address=\"10.0.0.2\"} 1"));
}

TEST_CASE("tcp metrics: resets sent and received are separate series") {
  Feed feed;
  feed(tcp(TcpWhat::ResetSent, 1, 2));
  feed(tcp(TcpWhat::ResetReceived, 1, 2));
  feed(tcp(TcpWhat::ResetReceived, 3, 2));
  CHECK(
      feed.has_line("weft_tcp_resets_total{service_name=\"curl\",network_peer_address=\"10.0.0."
                    "2\",network_io_direction=\"transmit\"} 1"));
  CHECK(
      feed.has_line("weft_tcp_resets_total{service_name=\"curl\",network_peer_address=\"10.0.0."
                    "2\",network_io_direction=\"receive\"} 2"));
}

TEST_CASE("tcp metrics: a reset sent after close counts for the connection of its cookie") {
  Feed feed;
  Event accept = event(EventKind::Accept, 1, 2, Role::Server);
  auto process = std::make_shared<ProcessInfo>();
  process->exe = "/usr/bin/api-server";
  accept.process = process;
  feed(accept);
  feed(event(EventKind::Close, 1, 2, Role::Server));
  // The kernel's record of an abortive close: no owner, state CLOSE.
  Event reset = tcp(TcpWhat::ResetSent, 1, 2, 7);
  reset.pid = 0;
  reset.comm.clear();
  reset.role = Role::Unknown;
  feed(reset);
  Event unknown = reset;
  unknown.cookie = 99;  // a socket weft never tracked (its own, a peer of it): nothing
  feed(unknown);
  CHECK(feed.facts.find(99) == nullptr);
  CHECK(
      feed.has_line("weft_tcp_resets_total{service_name=\"api-server\",network_peer_address="
                    "\"10.0.0.2\",network_io_direction=\"transmit\"} 1"));
  CHECK(feed.facts.counters().resets_sent == 1);
}

TEST_CASE("tcp metrics: each connection's latest smoothed RTT at its close, once") {
  Feed feed;
  Event closing = tcp(TcpWhat::Closed, 1, 2);
  closing.tcp.srtt_us = 3000;  // 3 ms: above the 2.5 ms bound, within 5 ms
  feed(closing);
  feed(event(EventKind::Close, 1, 2));
  feed(event(EventKind::Close, 5, 2));  // a connection TcpFacts never saw: no RTT to tell
  const std::string labels = "service_name=\"curl\",network_peer_address=\"10.0.0.2\"";
  CHECK(feed.has_line("weft_tcp_rtt_seconds_count{" + labels + "} 1"));
  CHECK(feed.has_line("weft_tcp_rtt_seconds_sum{" + labels + "} 0.003"));
  CHECK(feed.has_line("weft_tcp_rtt_seconds_bucket{" + labels + ",le=\"0.0025\"} 0"));
  CHECK(feed.has_line("weft_tcp_rtt_seconds_bucket{" + labels + ",le=\"0.005\"} 1"));
}

TEST_CASE("tcp metrics: peers past a service's limit read \"other\"") {
  Feed feed(metrics::MetricsLimits{.max_routes_per_service = 1});
  feed(retransmit(1, 2, 1, 1));
  feed(retransmit(2, 3, 1, 1));
  CHECK(feed.has_line(
      "weft_tcp_retransmits_total{service_name=\"curl\",network_peer_address=\"10.0.0.2\"} 1"));
  CHECK(feed.has_line(
      "weft_tcp_retransmits_total{service_name=\"curl\",network_peer_address=\"other\"} 1"));
}

TEST_CASE("tcp metrics: a server span's receive-queue wait, labelled by its service and client") {
  metrics::MetricsRegistry registry;
  trace::Span span;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = "api";
  span.resource = resource;
  auto exchange = std::make_shared<Exchange>();
  auto connection = std::make_shared<ConnectionInfo>();
  connection->remote = v4(9, 51000);
  exchange->connection = connection;
  span.exchange = exchange;
  ExchangeFacts facts;
  record_receive_queue_wait(registry, span, facts);  // no wait known: nothing recorded
  facts.has_receive_queue_wait = true;
  facts.receive_queue_wait_ns = 500 * kMs;
  record_receive_queue_wait(registry, span, facts);
  std::string text = registry.render_prometheus();
  const std::string labels = "service_name=\"api\",network_peer_address=\"10.0.0.9\"";
  CHECK(text.find("weft_tcp_receive_queue_wait_seconds_count{" + labels + "} 1\n") !=
        std::string::npos);
  CHECK(text.find("weft_tcp_receive_queue_wait_seconds_sum{" + labels + "} 0.5\n") !=
        std::string::npos);
}

TEST_CASE("tcp metrics: OTLP carries a counter as a cumulative monotonic integer sum") {
  Feed feed;
  feed(retransmit(1, 2, 1, 7));
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
  metrics::to_otlp(feed.registry.snapshot(), 1'800'000'000'000'000'000ull, {}, &request);
  const opentelemetry::proto::metrics::v1::Metric* found = nullptr;
  for (const auto& rm : request.resource_metrics())
    for (const auto& scope : rm.scope_metrics())
      for (const auto& m : scope.metrics())
        if (m.name() == "weft.tcp.retransmits") found = &m;
  REQUIRE(found);
  REQUIRE(found->has_sum());
  CHECK(found->sum().is_monotonic());
  CHECK(found->sum().aggregation_temporality() ==
        opentelemetry::proto::metrics::v1::AGGREGATION_TEMPORALITY_CUMULATIVE);
  REQUIRE(found->sum().data_points_size() == 1);
  CHECK(found->sum().data_points(0).as_int() == 7);
  REQUIRE(found->sum().data_points(0).attributes_size() == 1);
  CHECK(found->sum().data_points(0).attributes(0).value().string_value() == "10.0.0.2");
}

}  // namespace weft::net
