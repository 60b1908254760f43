// The lines `weft run` prints on stderr at the end. The spans line is an equation a reader can
// check: every span built is exported, sampled out or dropped for a stated reason.
#pragma once

#include <string>

#include "export/export_queue.h"
#include "trace/stitcher.h"

namespace weft::cli {

// Where the spans went, from the stitcher's and the export queue's counters after both have
// finished (Stitcher::flush_all, ExportQueue::shutdown).
struct SpanTally {
  uint64_t built = 0;  // spans that entered a trace
  uint64_t exported = 0;
  uint64_t sampled_out = 0;
  uint64_t dropped_queue_full = 0;
  uint64_t dropped_refused = 0;
  uint64_t unsent_at_exit = 0;
  // Client spans weft did not build because the request carried trace context: the caller's
  // own span stands for the call. Not part of `built`.
  uint64_t deferred = 0;

  uint64_t dropped() const { return dropped_queue_full + dropped_refused + unsent_at_exit; }
  // Built spans none of the other figures account for: 0 unless a stage miscounts.
  int64_t unaccounted() const;
};

SpanTally tally(const trace::StitchCounters& stitch, const exporter::QueueCounters& queue);

// "weft run: spans: B built = E exported + S sampled out + D dropped (...); ..."
std::string spans_line(const SpanTally& t);
// "weft run: traces: ...; links: ...; not linked: ...; ..."
std::string links_line(const trace::StitchCounters& s);
// "weft run: export attempts: ...; last error: ..."
std::string export_line(const exporter::QueueCounters& q, const std::string& last_error);

}  // namespace weft::cli
