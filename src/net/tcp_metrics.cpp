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

std::string service_of(const Event& e) {
  if (e.process && !e.process->service_name.empty()) return e.process->service_name;
  if (e.process && !e.process->exe.empty()) {
    size_t slash = e.process->exe.rfind('/');
    return slash == std::string::npos ? e.process->exe : e.process->exe.substr(slash + 1);
  }
  return e.comm;
}

}  // namespace

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
