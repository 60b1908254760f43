#include "trace/thread_evidence_feed.h"

namespace weft::trace {

void feed_thread_evidence(conn::ConnectionTracker& tracker, Stitcher& stitcher,
                          int64_t wall_offset_ns) {
  tracker.on_request_started(
      [&stitcher, wall_offset_ns](const ConnectionInfo& c, uint32_t tid, uint64_t start_mono) {
        stitcher.request_started(c.pid, tid, c.cookie, start_mono + wall_offset_ns);
      });
  tracker.on_opaque_server_io(
      [&stitcher](uint32_t pid, uint32_t tid) { stitcher.opaque_server_io(pid, tid); });
  tracker.on_connection_finished(
      [&stitcher](uint64_t cookie) { stitcher.connection_finished(cookie); });
}

}  // namespace weft::trace
