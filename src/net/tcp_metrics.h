// TCP metrics from kernel facts (docs/network.md): the connect duration histogram, labelled by
// the connecting service, the server address (bounded per service like routes) and the outcome.
#pragma once

#include "metrics/metrics_registry.h"
#include "weft/event.h"

namespace weft::net {

const MetricFamily& connect_duration_family();

// A Connect event's duration in weft.tcp.connect.duration; other events are ignored.
void record_connect(metrics::MetricsRegistry& registry, const Event& e);

}  // namespace weft::net
