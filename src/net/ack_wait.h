// Server spans held until the kernel reports the ACK of their response's last byte (--ack-wait),
// so the span carries the time the response waited for it and every retransmission of the
// response: both happen after the last write, when the exchange is complete. A span leaves at
// that ACK, when weft learns the ACK came unreported, at the connection's close or reset, or
// after max_hold_ns; only the first gives weft.tcp.last_ack.wait. docs/network.md.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <unordered_map>

#include "net/tcp_facts.h"
#include "trace/span.h"

namespace weft::net {

struct AckWaitCounters {
  uint64_t held = 0;
  uint64_t acked = 0;         // left with the ACK's time
  uint64_t ack_unseen = 0;    // acknowledged by an ACK weft was not told of
  uint64_t closed_first = 0;  // the connection closed or was reset before any ACK was seen
  uint64_t timed_out = 0;     // held max_hold_ns without an answer
  uint64_t not_held = 0;      // server spans whose response bytes weft cannot place
};

class AckWait {
 public:
  // Called once per span as it leaves (the caller annotates it then).
  using Release = std::function<void(trace::Span&&)>;

  AckWait(const TcpFacts& facts, uint64_t max_hold_ns, Release release)
      : facts_(facts), max_hold_ns_(max_hold_ns), release_(std::move(release)) {}

  // Holds a server span whose response weft can place in sequence space; otherwise releases
  // it at once.
  void add(trace::Span&& span);
  // After TcpFacts has seen the event: releases the spans of its connection it answers.
  void on_event(const Event& e);
  // Releases spans held longer than max_hold_ns.
  void expire(uint64_t now_mono_ns);
  void flush_all();
  const AckWaitCounters& counters() const { return counters_; }
  size_t size() const { return held_count_; }

 private:
  struct Held {
    trace::Span span;
    uint64_t since_ns;  // the response's last write (kernel time)
  };
  void release_answered(uint64_t cookie, bool connection_ended);
  void release(Held& h);

  const TcpFacts& facts_;
  uint64_t max_hold_ns_;
  Release release_;
  std::unordered_map<uint64_t, std::deque<Held>> held_;  // by socket cookie, in response order
  size_t held_count_ = 0;
  AckWaitCounters counters_;
};

}  // namespace weft::net
