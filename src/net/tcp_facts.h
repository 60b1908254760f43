// What the kernel's TCP did to each connection (connect, retransmissions, resets, RTT, counters),
// kept per socket cookie from lifecycle and Tcp events, and what of it fell inside one exchange.
// Fed by the pipeline thread before the connection tracker, so an exchange finds every fact
// raised before its last byte (events arrive in kernel time order). docs/network.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "weft/event.h"
#include "weft/exchange.h"

namespace weft::net {

struct Retransmission {
  uint64_t mono_ns = 0;
  uint32_t seq = 0;
  uint32_t end_seq = 0;
  uint16_t segs = 0;
  uint8_t state = 0;  // TCP state when it was sent again (2: SYN_SENT)
};

// Bytes arrived on a server socket whose application had read everything before: from `seq`
// (the application's read position then) to `end_seq` they waited in the receive queue.
struct Arrival {
  uint64_t mono_ns = 0;
  uint32_t seq = 0;
  uint32_t end_seq = 0;
};

// Sequence numbers [start, end) (they wrap at 2^32).
struct SeqRange {
  uint32_t start = 0;
  uint32_t end = 0;
};

// The bytes this end sent for an exchange, in sequence space: the request of a client span,
// the response of a server span. None when weft cannot place them (TLS plaintext, a degraded
// capture, bytes without a sequence number).
std::optional<SeqRange> sent_range(const Exchange& ex);

// An ACK that left a server connection nothing in flight: it acknowledged [una_before, ack).
struct Ack {
  uint64_t mono_ns = 0;
  uint32_t una_before = 0;
  uint32_t ack = 0;
};

// Whether the last byte of a server's response has been acknowledged, as far as weft knows.
enum class ResponseAck : uint8_t {
  Pending,  // no ACK covering it yet
  Seen,     // the ACK that first covered it was reported
  Unseen,   // acknowledged by an ACK weft was not told of (data after it was still in flight)
  Unknown,  // no sequence range for the response (TLS, degraded capture)
};

struct ConnectionFacts {
  uint64_t cookie = 0;
  uint32_t pid = 0;
  std::string comm;
  std::shared_ptr<const ProcessInfo> process;  // may be null
  Role role = Role::Unknown;
  Endpoint local;
  Endpoint remote;
  // Client: the connect() (SYN sent to its result).
  bool connect_seen = false;
  uint64_t connect_end_ns = 0;  // kernel time of the result
  uint64_t connect_duration_ns = 0;
  int32_t connect_result = 0;  // 0 or -errno (ECONNREFUSED: reset, ETIMEDOUT: no answer)
  // SYN (client) or SYN-ACK (server) segments sent again during the handshake.
  uint32_t handshake_retransmits = 0;
  uint64_t retransmitted_segments = 0;          // after the handshake, from tcp_retransmit_skb
  std::vector<Retransmission> retransmissions;  // the last kMaxRetransmissionsKept
  uint64_t retransmissions_forgotten = 0;       // older ones no longer in the list
  std::vector<Arrival> arrivals;                // the last kMaxArrivalsKept (server connections)
  std::vector<Ack> acks;              // the last kMaxAcksKept (server connections, with --ack-wait)
  uint32_t zero_windows = 0;          // the peer advertised a zero window (with --ack-wait)
  std::vector<Ack> zero_window_acks;  // the last kMaxAcksKept of those
  uint32_t resets_sent = 0;
  uint32_t resets_received = 0;
  // RTT: the latest smoothed value and the range of smoothed values seen (microseconds).
  uint32_t srtt_us = 0;
  uint32_t srtt_low_us = 0;
  uint32_t srtt_high_us = 0;
  uint32_t min_rtt_us = 0;            // the kernel's windowed minimum, latest
  uint32_t kernel_total_retrans = 0;  // tcp_sock.total_retrans, latest (handshake included)
  // At close.
  bool closed = false;
  uint64_t closed_ns = 0;
  uint64_t lifetime_ns = 0;
  uint64_t bytes_sent = 0;  // by the application (weft's stream totals)
  uint64_t bytes_received = 0;
  uint64_t bytes_acked = 0;  // kernel: acknowledged by the peer
};

// What the kernel did during one exchange (client side: the exchange's own socket).
struct ExchangeFacts {
  bool opened_connection = false;  // the exchange is the first on a connection weft saw open
  uint64_t connect_duration_ns = 0;
  uint32_t handshake_retransmits = 0;
  // Segments sent again that carried bytes of sent_range(): a client's request, a server's
  // response (by sequence range, not by time). Only when that range is known:
  bool sent_bytes_known = false;
  uint32_t retransmitted_segments = 0;
  std::vector<Retransmission> retransmissions;  // those, in time order
  uint32_t srtt_us = 0;  // latest smoothed RTT known at the exchange's end; 0 unknown
  // Server: from the request's first byte arriving to the read that took it; unknown when no
  // arrival record covers that byte.
  bool has_receive_queue_wait = false;
  uint64_t receive_queue_wait_ns = 0;
  // Server, with --ack-wait: from the response's last write to the ACK of its last byte.
  bool has_last_ack_wait = false;
  uint64_t last_ack_wait_ns = 0;
  // Zero windows the peer advertised while it awaited a byte of sent_range() (kernel times).
  std::vector<uint64_t> zero_windows;
};

struct NetCounters {
  uint64_t connections = 0;  // connections facts were kept for
  uint64_t evicted = 0;      // forgotten early to stay within max_connections
  uint64_t retransmitted_segments = 0;
  uint64_t handshake_retransmits = 0;
  uint64_t resets_sent = 0;
  uint64_t resets_received = 0;
  uint64_t failed_connects = 0;
  uint64_t zero_windows = 0;
};

// A reset the kernel sent after the socket reached CLOSE (an abortive close): the record has
// no owner, only the cookie of a connection weft may know (bpf/tcp_programs.h).
bool is_reset_after_close(const Event& e);

class TcpFacts {
 public:
  static constexpr size_t kMaxRetransmissionsKept = 64;
  static constexpr size_t kMaxArrivalsKept = 16;
  static constexpr size_t kMaxAcksKept = 16;
  // How long a closed connection's facts stay for exchanges finished at its close.
  static constexpr uint64_t kClosedGraceNs = 5'000'000'000;

  explicit TcpFacts(size_t max_connections = 65536) : max_connections_(max_connections) {}

  // Connect, Accept, Existing, Close and Tcp events; every other kind is ignored.
  void on_event(const Event& e);
  // Forgets closed connections once their grace has passed.
  void expire(uint64_t now_mono_ns);
  // Called once per connection when its facts are final (at close).
  void on_closed(std::function<void(const ConnectionFacts&)> f) { on_closed_ = std::move(f); }

  const ConnectionFacts* find(uint64_t cookie) const;
  ExchangeFacts for_exchange(const Exchange& ex) const;
  // For a server exchange: has its response's last byte been acknowledged? `acked_ns`: when.
  ResponseAck response_ack(const Exchange& ex, uint64_t* acked_ns = nullptr) const;
  const NetCounters& counters() const { return counters_; }
  size_t size() const { return facts_.size(); }

 private:
  ConnectionFacts& facts_for(const Event& e);
  void on_tcp(ConnectionFacts& f, const Event& e);
  void note_rtt(ConnectionFacts& f, const TcpCounters& c);
  void evict_one();
  static void receive_queue_wait(const ConnectionFacts& f, const Exchange& ex, ExchangeFacts& out);

  size_t max_connections_;
  std::unordered_map<uint64_t, ConnectionFacts> facts_;
  NetCounters counters_;
  std::function<void(const ConnectionFacts&)> on_closed_;
};

}  // namespace weft::net
