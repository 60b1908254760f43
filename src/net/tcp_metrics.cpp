#include "net/tcp_metrics.h"

#include <cerrno>

namespace weft::net {
namespace {

// Bounded: a connect ends in one of a few ways; anything rarer is "other".
std::string error_type(int32_t result) {
  switch (-result) {
    case 0:
      return "";
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ENETUNREACH:
      return "ENETUNREACH";
    case ECONNRESET:
      return "ECONNRESET";
    default:
      return "other";
  }
}

std::string service_of(const ProcessInfo* process, const std::string& comm) {
  if (process && !process->service_name.empty()) return process->service_name;
  if (process && !process->exe.empty()) {
    size_t slash = process->exe.rfind('/');
    return slash == std::string::npos ? process->exe : process->exe.substr(slash + 1);
  }
  return comm;
}

std::string service_of(const Event& e) {
  return service_of(e.process.get(), e.comm);
}

// A record without an owner (a reset sent after close) takes the connection's.
std::string service_of(const Event& e, const ConnectionFacts* facts) {
  if (e.pid == 0 && facts) return service_of(facts->process.get(), facts->comm);
  return service_of(e);
}

// RTTs from a loopback's tens of microseconds to a satellite link's seconds.
const std::vector<double> kRttBounds{0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
                                     0.001,   0.0025,   0.005,   0.01,   0.025,   0.05,
                                     0.1,     0.25,     0.5,     1,      2.5,     5};

metrics::SeriesLabels peer_labels(std::string service, const Endpoint& peer) {
  metrics::SeriesLabels labels;
  labels.service = std::move(service);
  labels.values = {AttributeValue(peer.address())};
  return labels;
}

void count_resets(metrics::MetricsRegistry& registry, const Event& e, const ConnectionFacts* facts,
                  uint64_t n, const char* direction) {
  if (n == 0) return;
  metrics::SeriesLabels labels = peer_labels(service_of(e, facts), e.remote);
  labels.values.push_back(AttributeValue(std::string(direction)));
  registry.record_count(&resets_family(), std::move(labels), n);
}

}  // namespace

const MetricFamily& retransmits_family() {
  static const MetricFamily family{
      "weft.tcp.retransmits",
      "TCP segments sent again (SYN, SYN-ACK and data), as the kernel's RetransSegs counts them.",
      {"network.peer.address"},
      "network.peer.address",
      {}};
  return family;
}

const MetricFamily& resets_family() {
  static const MetricFamily family{
      "weft.tcp.resets",
      "TCP resets sent (transmit) or received (receive) on traced connections.",
      {"network.peer.address", "network.io.direction"},
      "network.peer.address",
      {}};
  return family;
}

const MetricFamily& rtt_family() {
  static const MetricFamily family{
      "weft.tcp.rtt",
      "Smoothed TCP round-trip time of each connection when it closed (the latest the kernel "
      "reported for it).",
      {"network.peer.address"},
      "network.peer.address",
      kRttBounds};
  return family;
}

const MetricFamily& receive_queue_wait_family() {
  static const MetricFamily family{
      "weft.tcp.receive_queue.wait",
      "Time a request's first byte waited in a server's receive queue before the application "
      "read it.",
      {"network.peer.address"},
      "network.peer.address",
      {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
       0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
  return family;
}

const MetricFamily& connect_duration_family() {
  static const MetricFamily family{
      "weft.tcp.connect.duration",
      "Time from a TCP connect's SYN to its result, SYN retransmissions included.",
      {"server.address", "error.type"},
      "server.address",
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
       10, 30}};
  return family;
}

void record_connect(metrics::MetricsRegistry& registry, const Event& e) {
  if (e.kind != EventKind::Connect) return;
  metrics::SeriesLabels labels;
  labels.service = service_of(e);
  labels.values = {AttributeValue(e.remote.address())};
  std::string error = error_type(e.result);
  labels.values.push_back(error.empty() ? LabelValue() : LabelValue(AttributeValue(error)));
  registry.record_duration(&connect_duration_family(), std::move(labels), e.duration_ns);
}

}  // namespace weft::net

namespace weft::net {

void record_tcp(metrics::MetricsRegistry& registry, const Event& e, const NetCounters& before,
                const NetCounters& after, const ConnectionFacts* facts) {
  uint64_t retransmits = (after.retransmitted_segments - before.retransmitted_segments) +
                         (after.handshake_retransmits - before.handshake_retransmits);
  if (retransmits)
    registry.record_count(&retransmits_family(), peer_labels(service_of(e), e.remote), retransmits);
  count_resets(registry, e, facts, after.resets_sent - before.resets_sent, "transmit");
  count_resets(registry, e, facts, after.resets_received - before.resets_received, "receive");
  if (e.kind == EventKind::Close && facts && facts->srtt_us)
    registry.record_duration(&rtt_family(), peer_labels(service_of(e), e.remote),
                             uint64_t{facts->srtt_us} * 1000);
}

void record_receive_queue_wait(metrics::MetricsRegistry& registry, const trace::Span& span,
                               const ExchangeFacts& facts) {
  if (!facts.has_receive_queue_wait || !span.exchange || !span.exchange->connection) return;
  std::string service = span.resource ? span.resource->service_name : "";
  registry.record_duration(&receive_queue_wait_family(),
                           peer_labels(std::move(service), span.exchange->connection->remote),
                           facts.receive_queue_wait_ns);
}

}  // namespace weft::net
