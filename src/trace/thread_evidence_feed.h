// The connection stage's outputs as the trace stage takes them: finished exchanges (to be built
// into spans by the caller), request heads as they arrive (a span will follow; calls on that
// thread wait for it), threads moving bytes on accepted connections weft cannot parse, and
// connections that are gone. One wiring for `weft run`, the replay benchmark and the replay
// tests.
#pragma once

#include <cstdint>
#include <functional>

#include "conn/connection_tracker.h"
#include "trace/stitcher.h"

namespace weft::trace {

class TraceFeed : public protocols::HandlerOutput {
 public:
  // `wall_offset_ns` converts kernel times to wall time.
  TraceFeed(Stitcher& stitcher, int64_t wall_offset_ns,
            std::function<void(Exchange&&)> on_exchange);

  void exchange(Exchange&& exchange) override { on_exchange_(std::move(exchange)); }
  void request_started(const ConnectionInfo& connection, uint32_t tid,
                       uint64_t start_mono_ns) override;

  // The tracker's outputs, all feeding this: the feed must outlive the tracker.
  conn::TrackerOutputs outputs();

 private:
  Stitcher& stitcher_;
  int64_t wall_offset_ns_;
  std::function<void(Exchange&&)> on_exchange_;
};

}  // namespace weft::trace
