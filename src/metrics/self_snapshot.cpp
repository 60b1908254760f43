#include "metrics/self_snapshot.h"

#include "protocols/protocol.h"

namespace weft::metrics {
namespace {

std::map<std::string, uint64_t> events_lost(const capture::SourceStats& source,
                                            const capture::StreamStats& stream) {
  std::map<std::string, uint64_t> lost;
  for (int cause = 0; cause < WEFT_LOSS_COUNT; ++cause)
    lost[capture::loss_name(cause)] = source.kernel[cause];
  lost["stream_gap"] = stream.gaps;
  lost["malformed"] = source.malformed;
  return lost;
}

// The tracker keeps protocol counters in registry order.
std::map<std::string, uint64_t> parse_errors(const conn::ConnectionTracker& tracker) {
  std::map<std::string, uint64_t> errors;
  const auto& counters = tracker.protocol_counters();
  const auto& protocols = protocols::registry();
  for (size_t i = 0; i < counters.size() && i < protocols.size(); ++i)
    errors[std::string(protocols[i]->name())] = counters[i].parse_errors;
  return errors;
}

}  // namespace

SelfSnapshot collect_self_snapshot(const capture::SourceStats& source,
                                   const capture::StreamStats& stream,
                                   const conn::ConnectionTracker& tracker,
                                   const trace::StitchCounters& stitch,
                                   const exporter::QueueCounters& queue) {
  SelfSnapshot s;
  s.events = source.records;
  s.events_lost = events_lost(source, stream);
  s.parse_errors = parse_errors(tracker);
  s.connections_evicted = tracker.counters().evicted;
  s.skip_verdicts = tracker.counters().skip_verdicts;
  s.skipped_bytes = tracker.counters().skipped_bytes;
  for (int what = 0; what < WEFT_TLS_COUNT_MAX; ++what)
    s.tls_calls[capture::tls_count_name(what)] = source.tls[what];
  // The stitcher also counts client spans it deferred to the caller's context; they are
  // never built, so they would make the exported + dropped + sampled-out figures fall short.
  s.spans_built = stitch.spans - stitch.client_spans_deferred;
  s.traces_sampled_out = stitch.traces_sampled_out;
  s.spans_sampled_out = stitch.spans_sampled_out;
  s.trace_sampling_ratio = stitch.sampling_ratio;
  s.links = {{"same_node", stitch.linked_same_node},
             {"wire", stitch.linked_wire},
             {"inferred", stitch.linked_inferred}};
  s.links_not_inferred = {{"ambiguous", stitch.ambiguous_inference},
                          {"concurrent_requests", stitch.not_inferred_concurrent_requests},
                          {"thread_hopping", stitch.not_inferred_thread_hopping},
                          {"opaque_server_traffic", stitch.not_inferred_opaque_server_traffic},
                          {"calls_outside_requests", stitch.not_inferred_calls_outside_requests},
                          {"event_loop_runtime", stitch.not_inferred_event_loop_runtime}};
  s.link_conflicts = stitch.conflicts;
  s.traces_settled_early = stitch.traces_settled_early;
  s.spans_forced_early = stitch.forced_early;
  s.waited_for_parent = stitch.waited_for_parent;
  s.spans_exported = queue.spans_exported;
  s.spans_dropped_queue_full = queue.spans_dropped_full;
  s.spans_dropped_failed = queue.spans_dropped_refused + queue.spans_unsent_at_exit;
  s.export_failures = queue.export_failures;
  s.export_retries = queue.retries;
  s.export_queue_spans = queue.queued_spans;
  s.export_queue_bytes = queue.queued_bytes;
  return s;
}

}  // namespace weft::metrics
