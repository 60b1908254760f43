// TCP metrics from kernel facts (docs/network.md): connect duration, retransmissions, resets,
// RTT and receive-queue wait, labelled by the traced service and the peer's address (bounded per
// service like routes: beyond max_routes_per_service addresses it reads "other").
#pragma once

#include "metrics/metrics_registry.h"
#include "net/tcp_facts.h"
#include "trace/span.h"
#include "weft/event.h"

namespace weft::net {

const MetricFamily& connect_duration_family();
const MetricFamily& retransmits_family();         // counter, segments
const MetricFamily& resets_family();              // counter, by network.io.direction
const MetricFamily& rtt_family();                 // histogram, one per connection at its close
const MetricFamily& receive_queue_wait_family();  // histogram, one per server span with a wait

// A Connect event's duration in weft.tcp.connect.duration; other events are ignored.
void record_connect(metrics::MetricsRegistry& registry, const Event& e);

// What one event added to TcpFacts' counters (`before` it was fed, `after`) under the event's
// service and peer; at a Close, the connection's latest smoothed RTT (`facts`, may be null).
void record_tcp(metrics::MetricsRegistry& registry, const Event& e, const NetCounters& before,
                const NetCounters& after, const ConnectionFacts* facts);

// A server span's receive-queue wait, when its exchange has one.
void record_receive_queue_wait(metrics::MetricsRegistry& registry, const trace::Span& span,
                               const ExchangeFacts& facts);

}  // namespace weft::net
