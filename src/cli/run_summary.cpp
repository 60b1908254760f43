#include "cli/run_summary.h"

#include <cstdio>

namespace weft::cli {
namespace {

std::string n(uint64_t v) {
  return std::to_string(v);
}

// Four significant digits: 1, 0.5, 0.01234.
std::string ratio(double r) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", r);
  return text;
}

}  // namespace

int64_t SpanTally::unaccounted() const {
  return static_cast<int64_t>(built) - static_cast<int64_t>(exported + sampled_out + dropped());
}

SpanTally tally(const trace::StitchCounters& s, const exporter::QueueCounters& q) {
  SpanTally t;
  // The stitcher counts every span it is given, deferred client spans included.
  t.deferred = s.client_spans_deferred;
  t.built = s.spans - s.client_spans_deferred;
  t.sampled_out = s.spans_sampled_out;
  t.exported = q.spans_exported;
  t.dropped_queue_full = q.spans_dropped_full;
  t.dropped_refused = q.spans_dropped_refused;
  t.unsent_at_exit = q.spans_unsent_at_exit;
  return t;
}

std::string spans_line(const SpanTally& t) {
  std::string line = "weft run: spans: " + n(t.built) + " built = " + n(t.exported) +
                     " exported + " + n(t.sampled_out) + " sampled out + " + n(t.dropped()) +
                     " dropped (queue full " + n(t.dropped_queue_full) + ", refused " +
                     n(t.dropped_refused) + ", unsent at exit " + n(t.unsent_at_exit) + ")";
  // Never expected; printed so that the line stays true if a stage miscounts.
  if (int64_t rest = t.unaccounted(); rest != 0)
    line += " + " + std::to_string(rest) + " unaccounted";
  return line + "; not built: " + n(t.deferred) +
         " client spans deferred to the context their request carried";
}

std::string links_line(const trace::StitchCounters& s) {
  return "weft run: traces: " + n(s.traces_exported + s.traces_sampled_out) + " finished, " +
         n(s.traces_exported) + " kept, " + n(s.traces_sampled_out) +
         " sampled out; links: same-node=" + n(s.linked_same_node) + " wire=" + n(s.linked_wire) +
         " inferred=" + n(s.linked_inferred) +
         // Calls a server span on their thread could have held, left without a parent, by reason.
         "; not inferred: ambiguous=" + n(s.ambiguous_inference) +
         " concurrent-requests=" + n(s.not_inferred_concurrent_requests) +
         " thread-hopping=" + n(s.not_inferred_thread_hopping) +
         " opaque-server-traffic=" + n(s.not_inferred_opaque_server_traffic) +
         " calls-outside-requests=" + n(s.not_inferred_calls_outside_requests) +
         " event-loop-runtime=" + n(s.not_inferred_event_loop_runtime) +
         "; conflicts=" + n(s.conflicts) + " forced-early=" + n(s.forced_early) +
         " settled-early=" + n(s.traces_settled_early) +
         " waited-for-parent=" + n(s.waited_for_parent) +
         " start-bounded-by-child=" + n(s.start_bounded_by_child) +
         // The root ratio in force at the end, and roots over --max-traces-per-second.
         "; sampling: root ratio " + ratio(s.sampling_ratio) +
         " rate-limited=" + n(s.traces_rate_limited);
}

std::string export_line(const exporter::QueueCounters& q, const std::string& last_error) {
  return "weft run: export attempts: " + n(q.export_failures) + " failed, " + n(q.retries) +
         " retries" + (last_error.empty() ? "" : "; last error: " + last_error);
}

}  // namespace weft::cli
