// Where events come from: the kernel (live) or a recorded file. Both look the same to the
// stages after capture.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "weft/event.h"
#include "weft_events.h"

namespace weft::capture {

using EventSink = std::function<void(Event&&)>;

// What the source itself saw and lost. Kernel losses are read from the BPF side.
struct SourceStats {
  uint64_t records = 0;    // well-formed records delivered
  uint64_t malformed = 0;  // records that failed to decode (never expected from the kernel)
  std::array<uint64_t, WEFT_LOSS_COUNT> kernel{};  // indexed by enum weft_loss
  // Start-up scan failures: connections open before weft started are not traced.
  uint64_t scan_errors = 0;
  // Capture verdicts the kernel map refused: the connection keeps its payload.
  uint64_t verdict_failures = 0;
  std::array<uint64_t, WEFT_TLS_COUNT_MAX> tls{};  // indexed by enum weft_tls_count
};

const char* loss_name(int cause);      // "ringbuf_full", "truncated", ...
const char* tls_count_name(int what);  // "calls", "unmapped", ...

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Delivers what is available, waiting up to `timeout` for something to arrive. Returns false
  // once the source is exhausted (end of a recording); a live source never is.
  virtual bool poll(std::chrono::milliseconds timeout, const EventSink& sink) = 0;
  // The source's notion of "now" on the kernel monotonic clock: the wall of time before which
  // no more events are expected, give or take the reorder window.
  virtual uint64_t now_mono_ns() const = 0;
  virtual SourceStats stats() const = 0;
  // Wall clock minus kernel monotonic clock, for converting timestamps.
  virtual int64_t wall_offset_ns() const = 0;
  // `local` is an address weft itself listens on (an all-zero address: every address):
  // connections to it are weft talking to itself and are not reported. Recordings ignore it.
  virtual void exclude_peers_of(const Endpoint& /*local*/) {}
  // What the kernel should copy for one connection from now on (Payload: everything, the
  // default). Best effort: a refusal is counted, never fatal. Recordings ignore it.
  virtual void set_verdict(uint64_t /*cookie*/, const CaptureVerdict& /*verdict*/) {}
  // Processes that have exited since the last call, for stages that keep state per process.
  // Recordings report none (their processes are not this machine's).
  virtual std::vector<uint32_t> exited_processes() { return {}; }
  // On shutdown: delivers what the source has already captured but not yet delivered (a live
  // source's ring buffer), within a bounded time. Returns how many events it delivered.
  virtual size_t drain(const EventSink& /*sink*/) { return 0; }
};

}  // namespace weft::capture
