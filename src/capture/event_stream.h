// The capture stage's one interface to the rest of weft: events from a source (kernel or
// recording), put in timestamp order, with gaps in each byte stream measured.
#pragma once

#include <algorithm>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "capture/event_source.h"

namespace weft::capture {

struct StreamStats {
  uint64_t gaps = 0;         // places where a stream skipped bytes weft never saw
  uint64_t gap_bytes = 0;    // how many bytes those were
  uint64_t overlaps = 0;     // a syscall starting before the previous one ended (reordering)
  uint64_t late_events = 0;  // arrived after newer events had already been released
  uint64_t window_ns = 0;    // the orderer's window now (it widens after a late event)
};

// Holds events for a short window and releases them ordered by kernel timestamp: the ring
// buffer is shared by all CPUs, so records can arrive slightly out of order.
//
// How short: everything the ring holds is read at each poll, so a record can only miss the
// poll that releases its neighbours by the time between its program taking the timestamp and
// committing the record (microseconds: a copy of at most a few KiB; more only if the program
// is preempted). A window far above that costs memory and latency (events wait in it before
// any verdict can act on their connection), so it starts small and doubles, up to
// `max_window_ns`, whenever an event does arrive after newer ones were released.
class EventOrderer {
 public:
  explicit EventOrderer(uint64_t window_ns, uint64_t max_window_ns = 0)
      : window_ns_(window_ns), max_window_ns_(std::max(window_ns, max_window_ns)) {
    stats_.window_ns = window_ns;
  }

  // Takes the event's contents and leaves `event` holding a released one, whose buffers a
  // source can decode its next record into without allocating.
  void push(Event&& event);
  // Releases, in order, every held event older than now_mono_ns - window.
  void release_older_than(uint64_t now_mono_ns, const EventSink& sink);
  void release_all(const EventSink& sink);
  size_t held() const { return order_.size(); }
  const StreamStats& stats() const { return stats_; }

 private:
  // Events stay where they were pushed (slots_, reused once released); the heap orders small
  // keys, so sifting never moves an Event.
  struct Key {
    uint64_t mono_ns;
    uint64_t arrival;
    uint32_t slot;
  };
  struct Earlier {
    bool operator()(const Key& a, const Key& b) const {
      return a.mono_ns != b.mono_ns ? a.mono_ns < b.mono_ns : a.arrival < b.arrival;
    }
  };
  // Released slots keep their payload buffers for the next events, up to this many.
  static constexpr size_t kMaxRecycledBuffers = 1024;
  void release_first(const EventSink& sink);
  void release(Event& event, const EventSink& sink);
  void measure_gap(Event& event);

  uint64_t window_ns_;
  uint64_t max_window_ns_;
  uint64_t arrivals_ = 0;
  uint64_t last_released_ns_ = 0;
  // Sorted by (mono_ns, arrival). Events arrive nearly in timestamp order (the ring is filled
  // in reservation order; CPUs differ by microseconds), so a push lands at or next to the back
  // and a release pops the front, in memory order: a heap paid log2(n) cache misses per release
  // with ~10 000 events held under load (56% of the orderer's samples in perf).
  std::deque<Key> order_;
  std::vector<Event> slots_;
  std::vector<uint32_t> free_slots_;
  // Next expected position per (cookie, direction + 2 * byte source).
  std::unordered_map<uint64_t, std::array<uint64_t, 4>> next_pos_;
  bool forgot_streams_ = false;  // next_pos_ was cleared once: new streams may be old ones
  StreamStats stats_;
};

class EventStream {
 public:
  static constexpr uint64_t kDefaultWindowNs = 10'000'000;
  static constexpr uint64_t kMaxWindowNs = 160'000'000;

  explicit EventStream(std::unique_ptr<EventSource> source, uint64_t window_ns = kDefaultWindowNs,
                       uint64_t max_window_ns = kMaxWindowNs)
      : source_(std::move(source)), orderer_(window_ns, max_window_ns) {}

  // Delivers ordered events; waits up to `timeout` for new ones. Returns false once a
  // recording is exhausted and everything held has been delivered.
  bool next(std::chrono::milliseconds timeout, const EventSink& sink);
  // On shutdown: reads what the source captured but did not deliver yet, then delivers
  // everything held, in order.
  void drain(const EventSink& sink);

  EventSource& source() { return *source_; }
  SourceStats source_stats() const { return source_->stats(); }
  const StreamStats& stream_stats() const { return orderer_.stats(); }

 private:
  std::unique_ptr<EventSource> source_;
  EventOrderer orderer_;
};

}  // namespace weft::capture
