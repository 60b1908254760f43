#include "net/tcp_facts.h"

#include <algorithm>

namespace weft::net {
namespace {

constexpr uint8_t kStateSynSent = 2;
constexpr uint8_t kStateSynRecv = 3;
constexpr uint8_t kStateClose = 7;

bool in_handshake(uint8_t state) {
  return state == kStateSynSent || state == kStateSynRecv;
}

// Whether `seq` lies in [from, to), in sequence-number space (it wraps at 2^32).
bool seq_within(uint32_t seq, uint32_t from, uint32_t to) {
  return seq - from < to - from;
}

// Whether `a` comes before `b` in sequence-number space.
bool seq_before(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b) < 0;
}

bool overlaps(const Retransmission& r, const SeqRange& range) {
  return seq_before(r.seq, range.end) && seq_before(range.start, r.end_seq);
}

bool is_lifecycle(EventKind kind) {
  return kind == EventKind::Connect || kind == EventKind::Accept || kind == EventKind::Existing ||
         kind == EventKind::Close || kind == EventKind::Tcp;
}

}  // namespace

bool is_reset_after_close(const Event& e) {
  return e.kind == EventKind::Tcp && e.tcp_what == TcpWhat::ResetSent &&
         e.tcp_state == kStateClose && e.pid == 0;
}

void TcpFacts::on_event(const Event& e) {
  if (!is_lifecycle(e.kind)) return;
  if ((e.kind == EventKind::Close || is_reset_after_close(e)) && !facts_.contains(e.cookie)) return;
  ConnectionFacts& f = facts_for(e);
  switch (e.kind) {
    case EventKind::Connect:
      f.connect_seen = true;
      f.connect_end_ns = e.mono_ns;
      f.connect_duration_ns = e.duration_ns;
      f.connect_result = e.result;
      // A clean handshake has no TCP record: SYN to SYN-ACK was the first RTT sample.
      if (e.result == 0 && f.srtt_us == 0 && f.handshake_retransmits == 0)
        note_rtt(f, TcpCounters{.srtt_us = static_cast<uint32_t>(e.duration_ns / 1000),
                                .min_rtt_us = static_cast<uint32_t>(e.duration_ns / 1000)});
      if (e.result != 0) {  // a failed connect ends the connection: no close follows
        ++counters_.failed_connects;
        f.closed = true;
        f.closed_ns = e.mono_ns;
        if (on_closed_) on_closed_(f);
      }
      break;
    case EventKind::Close:
      f.closed = true;
      f.closed_ns = e.mono_ns;
      f.lifetime_ns = e.duration_ns;
      f.bytes_sent = e.bytes_sent;
      f.bytes_received = e.bytes_received;
      if (on_closed_) on_closed_(f);
      break;
    case EventKind::Tcp:
      on_tcp(f, e);
      break;
    default:
      break;
  }
}

ConnectionFacts& TcpFacts::facts_for(const Event& e) {
  auto it = facts_.find(e.cookie);
  if (it == facts_.end()) {
    if (facts_.size() >= max_connections_) evict_one();
    it = facts_.emplace(e.cookie, ConnectionFacts{}).first;
    it->second.cookie = e.cookie;
    ++counters_.connections;
  }
  ConnectionFacts& f = it->second;
  // Lifecycle events name the owner; a server's first Tcp record may come before its accept.
  if (e.pid != 0 || f.pid == 0) {
    f.pid = e.pid;
    f.comm = e.comm;
  }
  if (e.process) f.process = e.process;
  if (e.role != Role::Unknown) f.role = e.role;
  f.local = e.local;
  f.remote = e.remote;
  return f;
}

void TcpFacts::on_tcp(ConnectionFacts& f, const Event& e) {
  note_rtt(f, e.tcp);
  switch (e.tcp_what) {
    case TcpWhat::Retransmit: {
      if (in_handshake(e.tcp_state)) {
        f.handshake_retransmits += e.tcp_segs;
        counters_.handshake_retransmits += e.tcp_segs;
      } else {
        f.retransmitted_segments += e.tcp_segs;
        counters_.retransmitted_segments += e.tcp_segs;
      }
      if (f.retransmissions.size() >= kMaxRetransmissionsKept) {
        f.retransmissions.erase(f.retransmissions.begin());
        ++f.retransmissions_forgotten;
      }
      f.retransmissions.push_back({e.mono_ns, e.tcp_seq, e.tcp_end_seq, e.tcp_segs, e.tcp_state});
      break;
    }
    case TcpWhat::ResetSent:
      ++f.resets_sent;
      ++counters_.resets_sent;
      break;
    case TcpWhat::ResetReceived:
      ++f.resets_received;
      ++counters_.resets_received;
      break;
    case TcpWhat::Established:
      // The kernel's count covers SYN-ACKs too, which no retransmit record names a socket for.
      if (e.tcp.total_retrans > f.handshake_retransmits) {
        counters_.handshake_retransmits += e.tcp.total_retrans - f.handshake_retransmits;
        f.handshake_retransmits = e.tcp.total_retrans;
      }
      break;
    case TcpWhat::Closed:
      f.bytes_acked = e.tcp.bytes_acked;
      break;
    case TcpWhat::DataQueued:
      if (f.arrivals.size() >= kMaxArrivalsKept) f.arrivals.erase(f.arrivals.begin());
      f.arrivals.push_back({e.mono_ns, e.tcp_seq, e.tcp_end_seq});
      break;
    case TcpWhat::Acked:
      if (f.acks.size() >= kMaxAcksKept) f.acks.erase(f.acks.begin());
      f.acks.push_back({e.mono_ns, e.tcp_seq, e.tcp_end_seq});
      break;
    case TcpWhat::ZeroWindow:
      ++f.zero_windows;
      ++counters_.zero_windows;
      if (f.zero_window_acks.size() >= kMaxAcksKept)
        f.zero_window_acks.erase(f.zero_window_acks.begin());
      f.zero_window_acks.push_back({e.mono_ns, e.tcp_seq, e.tcp_end_seq});
      break;
  }
}

void TcpFacts::note_rtt(ConnectionFacts& f, const TcpCounters& c) {
  f.kernel_total_retrans = std::max(f.kernel_total_retrans, c.total_retrans);
  if (c.srtt_us == 0) return;  // no sample yet (a SYN retransmitted before any answer)
  f.srtt_us = c.srtt_us;
  f.srtt_low_us = f.srtt_low_us ? std::min(f.srtt_low_us, c.srtt_us) : c.srtt_us;
  f.srtt_high_us = std::max(f.srtt_high_us, c.srtt_us);
  if (c.min_rtt_us != ~0u) f.min_rtt_us = c.min_rtt_us;
}

void TcpFacts::evict_one() {
  // Any one, in constant time (closed ones leave within kClosedGraceNs anyway): the table is
  // only full with as many live connections as the kernel map holds. Counted.
  facts_.erase(facts_.begin());
  ++counters_.evicted;
}

void TcpFacts::expire(uint64_t now_mono_ns) {
  std::erase_if(facts_, [&](const auto& entry) {
    const ConnectionFacts& f = entry.second;
    return f.closed && now_mono_ns > f.closed_ns + kClosedGraceNs;
  });
}

const ConnectionFacts* TcpFacts::find(uint64_t cookie) const {
  auto it = facts_.find(cookie);
  return it == facts_.end() ? nullptr : &it->second;
}

std::optional<SeqRange> sent_range(const Exchange& ex) {
  const MessageTiming& sent = ex.side == Role::Server ? ex.response : ex.request;
  const ConnectionInfo* c = ex.connection.get();
  // TLS: the stream holds plaintext, whose lengths are not the ciphertext's on the wire. A
  // degraded capture: positions and sequence numbers disagreed once, so may this exchange's.
  // tcp_seq 0: bytes a TLS library had buffered, no sequence number.
  if (!c || c->tls || c->capture_degraded || sent.tcp_seq == 0 || sent.wire_bytes == 0)
    return std::nullopt;
  return SeqRange{sent.tcp_seq, sent.tcp_seq + static_cast<uint32_t>(sent.wire_bytes)};
}

ExchangeFacts TcpFacts::for_exchange(const Exchange& ex) const {
  ExchangeFacts out;
  const ConnectionFacts* f = ex.connection ? find(ex.connection->cookie) : nullptr;
  if (!f) return out;
  // The first request on a connection weft saw open was what the connect was made for.
  out.opened_connection = ex.side == Role::Client && f->connect_seen && f->connect_result == 0 &&
                          ex.request.stream_pos == 0;
  if (out.opened_connection) {
    out.connect_duration_ns = f->connect_duration_ns;
    out.handshake_retransmits = f->handshake_retransmits;
  }
  if (auto sent = sent_range(ex)) {
    out.sent_bytes_known = true;
    for (const Retransmission& r : f->retransmissions) {
      if (in_handshake(r.state) || !overlaps(r, *sent)) continue;
      out.retransmitted_segments += r.segs;
      out.retransmissions.push_back(r);
    }
    // The window stopped the byte the peer awaited: the exchange that byte belongs to.
    for (const Ack& z : f->zero_window_acks)
      if (seq_within(z.ack, sent->start, sent->end)) out.zero_windows.push_back(z.mono_ns);
  }
  out.srtt_us = f->srtt_us;
  if (ex.side == Role::Server) {
    receive_queue_wait(*f, ex, out);
    uint64_t acked_ns = 0;
    if (response_ack(ex, &acked_ns) == ResponseAck::Seen) {
      out.has_last_ack_wait = true;
      out.last_ack_wait_ns = acked_ns > ex.response.end_ns ? acked_ns - ex.response.end_ns : 0;
    }
  }
  return out;
}

// The first reported ACK whose range holds the response's last byte acknowledged it. A
// reported ACK that starts beyond that byte means an unreported one did (it came while later
// bytes were in flight, or its record was forgotten): when is unknown, not guessed.
ResponseAck TcpFacts::response_ack(const Exchange& ex, uint64_t* acked_ns) const {
  auto sent = sent_range(ex);
  if (ex.side != Role::Server || !sent) return ResponseAck::Unknown;
  const ConnectionFacts* f = find(ex.connection->cookie);
  if (!f) return ResponseAck::Pending;
  uint32_t last_byte = sent->end - 1;
  for (const Ack& a : f->acks) {
    if (seq_within(last_byte, a.una_before, a.ack)) {
      if (acked_ns) *acked_ns = a.mono_ns;
      return ResponseAck::Seen;
    }
    if (!seq_before(a.una_before, sent->end)) return ResponseAck::Unseen;
  }
  return ResponseAck::Pending;
}

// The latest arrival before the read whose range holds the request's first byte: that byte
// has been in the queue since then. A byte that came in a later segment of the same batch
// (no record: the queue was not empty) would give a bound, not the wait, so it gives nothing.
void TcpFacts::receive_queue_wait(const ConnectionFacts& f, const Exchange& ex,
                                  ExchangeFacts& out) {
  for (auto it = f.arrivals.rbegin(); it != f.arrivals.rend(); ++it) {
    if (it->mono_ns > ex.request.start_ns) continue;
    if (!seq_within(ex.request.tcp_seq, it->seq, it->end_seq)) return;
    out.has_receive_queue_wait = true;
    out.receive_queue_wait_ns = ex.request.start_ns - it->mono_ns;
    return;
  }
}

}  // namespace weft::net
