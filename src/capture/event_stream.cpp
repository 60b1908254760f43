#include "capture/event_stream.h"

#include <algorithm>

namespace weft::capture {
namespace {

constexpr size_t kMaxTrackedStreams = 1 << 20;
constexpr uint64_t kUnknown = UINT64_MAX;  // no expectation for a stream direction yet
constexpr std::array<uint64_t, 4> kUnknownStreams{kUnknown, kUnknown, kUnknown, kUnknown};

}  // namespace

void EventOrderer::push(Event&& event) {
  uint32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
  }
  std::swap(slots_[slot], event);
  Key key{slots_[slot].mono_ns, arrivals_++, slot};
  if (order_.empty() || !Earlier{}(key, order_.back()))
    order_.push_back(key);
  else  // an event older than the newest held: its place is near the back
    order_.insert(std::upper_bound(order_.begin(), order_.end(), key, Earlier{}), key);
}

void EventOrderer::measure_gap(Event& event) {
  if (event.kind == EventKind::Close) {
    next_pos_.erase(event.cookie);
    return;
  }
  if (event.kind != EventKind::Data || !event.has_position() || event.chunk_offset != 0) return;
  if (next_pos_.size() >= kMaxTrackedStreams && !next_pos_.contains(event.cookie)) {
    next_pos_.clear();  // bounded memory; positions re-learnt from the next events
    forgot_streams_ = true;
  }
  // Positions start at 0 when the kernel first sees a connection, so a first syscall that
  // starts later means the records before it were lost, unless weft forgot that stream.
  // Socket bytes and a TLS library's plaintext are two streams each, with their own positions.
  auto [it, fresh] = next_pos_.try_emplace(event.cookie, kUnknownStreams);
  uint64_t& expected =
      it->second[static_cast<int>(event.direction) + 2 * static_cast<int>(event.source)];
  uint64_t start = event.syscall_pos();
  if (expected == kUnknown) expected = forgot_streams_ ? start : 0;
  if (start > expected) {
    event.gap_before = start - expected;
    ++stats_.gaps;
    stats_.gap_bytes += event.gap_before;
  } else if (start < expected) {
    ++stats_.overlaps;
  }
  uint64_t end = start + event.syscall_len;
  if (end > expected) expected = end;
}

void EventOrderer::release(Event& event, const EventSink& sink) {
  if (event.mono_ns < last_released_ns_) {
    ++stats_.late_events;
    window_ns_ = std::min(window_ns_ * 2, max_window_ns_);
    stats_.window_ns = window_ns_;
  } else {
    last_released_ns_ = event.mono_ns;
  }
  measure_gap(event);
  sink(std::move(event));
}

void EventOrderer::release_first(const EventSink& sink) {
  uint32_t slot = order_.front().slot;
  order_.pop_front();
  Event& event = slots_[slot];
  release(event, sink);
  // A sink that kept the event moved its buffers out; one that did not leaves them for reuse.
  if (free_slots_.size() >= kMaxRecycledBuffers) event.data = {};
  free_slots_.push_back(slot);
}

void EventOrderer::release_older_than(uint64_t now_mono_ns, const EventSink& sink) {
  uint64_t horizon = now_mono_ns > window_ns_ ? now_mono_ns - window_ns_ : 0;
  while (!order_.empty() && order_.front().mono_ns < horizon) release_first(sink);
}

void EventOrderer::release_all(const EventSink& sink) {
  while (!order_.empty()) release_first(sink);
}

bool EventStream::next(std::chrono::milliseconds timeout, const EventSink& sink) {
  bool more = source_->poll(timeout, [this](Event&& e) { orderer_.push(std::move(e)); });
  if (!more) {
    orderer_.release_all(sink);
    return false;
  }
  orderer_.release_older_than(source_->now_mono_ns(), sink);
  return true;
}

void EventStream::drain(const EventSink& sink) {
  source_->drain([this](Event&& e) { orderer_.push(std::move(e)); });
  orderer_.release_all(sink);
}

}  // namespace weft::capture
