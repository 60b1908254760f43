// weft's own counters gathered from the pipeline's stages into one SelfSnapshot. Read on the
// pipeline thread, which owns every stage's counters.
#pragma once

#include "capture/event_stream.h"
#include "conn/connection_tracker.h"
#include "export/export_queue.h"
#include "metrics/metrics_registry.h"
#include "trace/stitcher.h"

namespace weft::metrics {

// Events lost by cause: each kernel loss cause by its name (ringbuf_full, truncated, map_full,
// read_failed, no_cookie), "stream_gap" for places where a byte stream skipped bytes, and
// "malformed" for records that failed to decode. Parse errors by protocol name.
SelfSnapshot collect_self_snapshot(const capture::SourceStats& source,
                                   const capture::StreamStats& stream,
                                   const conn::ConnectionTracker& tracker,
                                   const trace::StitchCounters& stitch,
                                   const exporter::QueueCounters& queue);

}  // namespace weft::metrics
