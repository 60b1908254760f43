#include "metrics/self_metrics.h"

namespace weft::metrics {
namespace {

SelfMetric counter(std::string otel_name, std::string description, std::string unit,
                   uint64_t value) {
  std::string prometheus_name = otel_name;
  for (char& c : prometheus_name)
    if (c == '.') c = '_';
  return {std::move(otel_name), prometheus_name + "_total", std::move(description),
          std::move(unit),      SelfMetricKind::Counter,    "",
          {{"", value}}};
}

SelfMetric labelled_counter(std::string otel_name, std::string description, std::string unit,
                            std::string label_key, const std::map<std::string, uint64_t>& values) {
  SelfMetric m = counter(std::move(otel_name), std::move(description), std::move(unit), 0);
  m.label_key = std::move(label_key);
  m.points.clear();
  for (const auto& [label, value] : values) m.points.push_back({label, value});
  return m;
}

SelfMetric gauge(std::string otel_name, std::string prometheus_name, std::string description,
                 std::string unit, uint64_t value) {
  return {std::move(otel_name), std::move(prometheus_name), std::move(description),
          std::move(unit),      SelfMetricKind::Gauge,      "",
          {{"", value}}};
}

SelfMetric ratio_gauge(std::string otel_name, std::string prometheus_name, std::string description,
                       double value) {
  return {std::move(otel_name),   std::move(prometheus_name),
          std::move(description), "1",
          SelfMetricKind::Ratio,  "",
          {{"", 0, value}}};
}

}  // namespace

std::vector<SelfMetric> self_metrics(const SelfSnapshot& s, const SeriesOverflow& overflow) {
  return {
      counter("weft.events", "Events weft received from the kernel or a recording.", "{event}",
              s.events),
      labelled_counter("weft.events.lost", "Events lost or cut short, by cause.", "{event}",
                       "cause", s.events_lost),
      labelled_counter("weft.parse_errors", "Bytes that were not a valid message, by protocol.",
                       "{error}", "protocol", s.parse_errors),
      counter("weft.connections.evicted",
              "Connections freed early to stay within the memory budget.", "{connection}",
              s.connections_evicted),
      counter("weft.capture.skip_verdicts",
              "Verdicts that let the kernel count a body's bytes without copying them.",
              "{verdict}", s.skip_verdicts),
      counter("weft.capture.skipped_bytes",
              "Body bytes the kernel counted without copying them (skip verdicts; not a loss).",
              "By", s.skipped_bytes),
      labelled_counter("weft.tls.calls",
                       "TLS library calls weft's uprobes saw (kind=calls), and those it could "
                       "not tie to a connection or read, by kind.",
                       "{call}", "kind", s.tls_calls),
      counter("weft.spans", "Spans built, before sampling.", "{span}", s.spans_built),
      counter("weft.traces.sampled_out", "Traces the sampler did not keep.", "{trace}",
              s.traces_sampled_out),
      ratio_gauge("weft.traces.sampling_ratio", "weft_traces_sampling_ratio",
                  "The ratio root traces are kept at now: the configured ratio, or what "
                  "--max-traces-per-second allows.",
                  s.trace_sampling_ratio),
      labelled_counter("weft.links", "Parent links made, by evidence.", "{link}", "evidence",
                       s.links),
      labelled_counter("weft.links.not_inferred",
                       "Calls a request on their thread could have held, left without a parent "
                       "because the thread-per-request premise does not hold, by reason.",
                       "{link}", "reason", s.links_not_inferred),
      counter("weft.links.conflicts",
              "Wire trace contexts that disagreed with stronger evidence (the evidence won).",
              "{link}", s.link_conflicts),
      counter("weft.traces.settled_early",
              "Traces that left before --trace-wait because nothing could still join them.",
              "{trace}", s.traces_settled_early),
      counter("weft.spans.forced_early",
              "Spans resolved before their wait to stay within the pending-span limit.", "{span}",
              s.spans_forced_early),
      counter("weft.spans.waited_for_parent",
              "Client calls held past their wait for a request still open on their thread.",
              "{span}", s.waited_for_parent),
      counter("weft.spans.exported", "Spans the exporter accepted.", "{span}", s.spans_exported),
      labelled_counter("weft.spans.dropped", "Spans not exported, by reason.", "{span}", "reason",
                       {{"queue_full", s.spans_dropped_queue_full},
                        {"export_failed", s.spans_dropped_failed},
                        {"sampled_out", s.spans_sampled_out}}),
      counter("weft.export.failures", "Failed export attempts, retryable or not.", "{attempt}",
              s.export_failures),
      counter("weft.export.retries", "Export attempts that were retries.", "{attempt}",
              s.export_retries),
      gauge("weft.export.queue.spans", "weft_export_queue_spans", "Spans waiting to be exported.",
            "{span}", s.export_queue_spans),
      gauge("weft.export.queue.bytes", "weft_export_queue_bytes",
            "Bytes of spans waiting to be exported.", "By", s.export_queue_bytes),
      labelled_counter(
          "weft.metric.series_overflow",
          "Measurements recorded under \"other\" labels past a cardinality limit.", "{measurement}",
          "limit",
          {{"routes_per_service", overflow.routes}, {"series_per_metric", overflow.series}}),
  };
}

}  // namespace weft::metrics
