#include "net/ack_wait.h"

#include <utility>

namespace weft::net {
namespace {

// Events after which no ACK of a held response will be reported.
bool ends_connection(const Event& e) {
  if (e.kind == EventKind::Close) return true;
  return e.kind == EventKind::Tcp &&
         (e.tcp_what == TcpWhat::Closed || e.tcp_what == TcpWhat::ResetReceived ||
          e.tcp_what == TcpWhat::ResetSent);
}

}  // namespace

void AckWait::add(trace::Span&& span) {
  const Exchange* ex = span.exchange.get();
  if (!ex || ex->side != Role::Server || facts_.response_ack(*ex) == ResponseAck::Unknown) {
    ++counters_.not_held;
    release_(std::move(span));
    return;
  }
  ++counters_.held;
  uint64_t cookie = ex->connection->cookie;
  uint64_t since = ex->response.end_ns;
  held_[cookie].push_back({std::move(span), since});
  ++held_count_;
  release_answered(cookie, false);  // the ACK may have been processed already
}

void AckWait::on_event(const Event& e) {
  if (held_count_ == 0) return;
  if (e.kind == EventKind::Tcp || e.kind == EventKind::Close)
    release_answered(e.cookie, ends_connection(e));
}

// Responses are acknowledged in order: the first one still pending keeps those after it.
void AckWait::release_answered(uint64_t cookie, bool connection_ended) {
  auto it = held_.find(cookie);
  if (it == held_.end()) return;
  std::deque<Held>& queue = it->second;
  while (!queue.empty()) {
    ResponseAck state = facts_.response_ack(*queue.front().span.exchange);
    if (state == ResponseAck::Pending && !connection_ended) break;
    if (state == ResponseAck::Seen)
      ++counters_.acked;
    else if (state == ResponseAck::Unseen)
      ++counters_.ack_unseen;
    else
      ++counters_.closed_first;
    release(queue.front());
    queue.pop_front();
  }
  if (queue.empty()) held_.erase(it);
}

void AckWait::release(Held& h) {
  --held_count_;
  release_(std::move(h.span));
}

void AckWait::expire(uint64_t now_mono_ns) {
  for (auto it = held_.begin(); it != held_.end();) {
    std::deque<Held>& queue = it->second;
    while (!queue.empty() && now_mono_ns > queue.front().since_ns + max_hold_ns_) {
      ++counters_.timed_out;
      release(queue.front());
      queue.pop_front();
    }
    it = queue.empty() ? held_.erase(it) : std::next(it);
  }
}

void AckWait::flush_all() {
  for (auto& [cookie, queue] : held_)
    for (Held& h : queue) {
      ++counters_.timed_out;  // weft stops: unanswered
      release(h);
    }
  held_.clear();
}

}  // namespace weft::net
