#include "trace/thread_evidence_feed.h"

namespace weft::trace {

TraceFeed::TraceFeed(Stitcher& stitcher, int64_t wall_offset_ns,
                     std::function<void(Exchange&&)> on_exchange)
    : stitcher_(stitcher), wall_offset_ns_(wall_offset_ns), on_exchange_(std::move(on_exchange)) {}

void TraceFeed::request_started(const ConnectionInfo& c, uint32_t tid, uint64_t start_mono_ns) {
  stitcher_.request_started(c.pid, tid, c.cookie, start_mono_ns + wall_offset_ns_);
}

conn::TrackerOutputs TraceFeed::outputs() {
  conn::TrackerOutputs out;
  out.exchanges = this;
  out.opaque_server_io = [this](uint32_t pid, uint32_t tid) {
    stitcher_.opaque_server_io(pid, tid);
  };
  out.connection_finished = [this](uint64_t cookie) { stitcher_.connection_finished(cookie); };
  return out;
}

}  // namespace weft::trace
