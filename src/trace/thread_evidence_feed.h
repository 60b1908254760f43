// What the stitcher needs from the connection stage besides finished exchanges: request heads
// as they arrive (a span will follow; calls on that thread wait for it), threads moving bytes
// on accepted connections weft cannot parse, and connections that are gone. One wiring for
// `weft run`, the replay benchmark and the replay tests.
#pragma once

#include <cstdint>

#include "conn/connection_tracker.h"
#include "trace/stitcher.h"

namespace weft::trace {

// Sets the tracker's request-start, opaque-traffic and connection-finished sinks to feed
// `stitcher`; call before the first event. `wall_offset_ns` converts kernel times to wall time.
void feed_thread_evidence(conn::ConnectionTracker& tracker, Stitcher& stitcher,
                          int64_t wall_offset_ns);

}  // namespace weft::trace
