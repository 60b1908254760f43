// Connections: one tracker per socket (cookie), holding its two byte streams and its protocol
// state, within one memory budget for all of them.
#pragma once

#include <array>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "protocols/protocol.h"
#include "stream/data_stream.h"
#include "weft/event.h"
#include "weft/exchange.h"

namespace weft::conn {

struct TrackerConfig {
  size_t memory_budget_bytes = 96u << 20;      // heap of all connection state (buffers, handlers)
  uint64_t idle_timeout_ns = 120'000'000'000;  // state of a silent connection is freed after this
  // Bytes one look at a message boundary may wait for before it counts as "no protocol here"
  // (a start line still without its end).
  size_t max_detect_bytes = 16 * 1024;
  // Turns of the conversation (a miss in the other direction than the last one) whose
  // message boundaries (syscall starts) are looked at before a connection is given up on: a
  // connection first seen mid-conversation is picked up at its next message.
  uint32_t max_detect_attempts = 64;
  // ... and bytes passed over looking, however few the turns (a one-way stream).
  uint64_t max_detect_skip_bytes = 64u << 20;
};

struct TrackerCounters {
  uint64_t connections = 0;   // trackers created
  uint64_t closed = 0;        // freed on close
  uint64_t idle_expired = 0;  // freed after idle_timeout
  uint64_t evicted = 0;       // freed early to stay within the memory budget
  uint64_t undetected = 0;    // connections that carried bytes of no protocol weft knows
  uint64_t detect_bytes = 0;  // bytes passed over while looking for a protocol
  uint64_t redetected = 0;    // connections whose protocol was found after a first miss
  uint64_t late_bytes = 0;    // bytes arriving for positions already passed
  uint64_t unpositioned = 0;  // data events without a kernel stream position
  // Data events whose TCP sequence number and stream position did not advance together (bytes
  // of another writer, a splice, a position the kernel lost): the connection is degraded.
  uint64_t sequence_mismatches = 0;
  uint64_t superseded_bytes = 0;  // socket bytes dropped because the library's plaintext is known
  uint64_t tls_connections = 0;   // connections whose TLS library plaintext took over
  uint64_t verdicts = 0;          // capture verdicts sent to the kernel
  uint64_t skip_verdicts = 0;     // ... of which to skip a body's bytes
  uint64_t skipped_bytes = 0;     // bytes the kernel reported without copying them (skipped)
};

// What the tracker tells the stages after it besides exchanges.
struct TrackerOutputs {
  protocols::HandlerOutput* exchanges = nullptr;  // exchanges and request starts; required
  // A thread moved bytes on a connection it accepted whose protocol weft cannot parse (TLS
  // ciphertext, an unknown protocol, after an Upgrade): requests the trace stage cannot see are
  // being served on that thread. Once per connection and thread.
  std::function<void(uint32_t pid, uint32_t tid)> opaque_server_io;
  // A connection's state was freed (closed, idle, evicted), after its last exchanges.
  std::function<void(uint64_t cookie)> connection_finished;
  // What the kernel should copy for a connection from now on.
  std::function<void(uint64_t cookie, const CaptureVerdict& verdict)> capture_verdict;
};

class ConnectionTracker {
 public:
  ConnectionTracker(TrackerConfig config, TrackerOutputs outputs, int64_t wall_offset_ns);
  // Exchanges only: request starts and the other outputs go nowhere.
  ConnectionTracker(TrackerConfig config, std::function<void(Exchange&&)> on_exchange,
                    int64_t wall_offset_ns);
  ~ConnectionTracker();

  void on_event(const Event& event);
  // Frees connections silent since before now - idle timeout, finishing what they hold; gives
  // the memory of connections freed in large numbers back to the system. Call it periodically.
  void expire_idle(uint64_t now_mono_ns);
  // Finishes every connection (shutdown, end of a recording).
  void close_all();

  const TrackerCounters& counters() const { return counters_; }
  // Per protocol, in registry order.
  const std::vector<protocols::ProtocolCounters>& protocol_counters() const {
    return protocol_counters_;
  }
  // Heap bytes the connections hold (what the memory budget counts): objects and buffer
  // capacity as allocated, not just the bytes in use.
  size_t memory_used() const { return memory_used_; }
  size_t connection_count() const { return connections_.size(); }

 private:
  enum class State { Detecting, Tracking, Ignored };
  struct Connection {
    std::shared_ptr<ConnectionInfo> info;
    ByteSource source = ByteSource::Socket;  // whose bytes the streams hold
    protocols::Streams streams;
    std::unique_ptr<protocols::ProtocolHandler> handler;
    size_t protocol = 0;  // registry index of the handler's protocol
    protocols::Confidence confidence = protocols::Confidence::Strong;
    State state = State::Detecting;
    uint32_t detect_attempts = 0;
    uint64_t detect_skipped = 0;  // bytes passed over looking for a protocol
    Direction last_miss = Direction::Send;
    uint32_t rejected = 0;  // registry indexes (bits) whose weak match did not parse here
    bool missed = false;    // a look found no protocol
    bool carried_bytes = false;
    uint64_t last_activity_ns = 0;
    uint32_t opaque_reported_tid = 0;  // the last thread reported as opaque_server_io
    CaptureVerdict verdict;            // as last sent to the kernel
    // The server's first bytes while they may still be a TLS ServerHello being read (a client's
    // library reads a record's header, then its body); freed once decided.
    std::string server_hello;
    bool hello_decided = false;
    // Per direction: TCP sequence number minus stream position, once known (mod 2^32).
    std::array<uint32_t, 2> seq_offset{};
    std::array<bool, 2> seq_known{};
    size_t accounted = 0;
    std::list<uint64_t>::iterator lru;
  };
  class Output;

  Connection& find_or_create(const Event& event);
  void update_identity(Connection& c, const Event& event);
  void read_server_hello(Connection& c, const Event& event);
  static void decide_hello(Connection& c);
  bool accept_source(Connection& c, const Event& event);
  void check_sequence(Connection& c, const Event& event);
  void on_data(Connection& c, const Event& event);
  void detect(Connection& c, Direction dir);
  bool try_protocols(Connection& c, Direction dir, std::span<const uint8_t> bytes, bool& undecided);
  void adopt(Connection& c, size_t index, protocols::DetectResult result, Direction dir);
  void reconsider_weak(Connection& c, Direction dir);
  bool hand_off(Connection& c);
  void give_up(Connection& c, const Event& event);
  static void free_streams(Connection& c);
  void report_opaque(Connection& c, const Event& event);
  void send_verdict(Connection& c, CaptureMode mode);
  void offer_skip(Connection& c, Direction dir);
  void finish(uint64_t cookie);  // handler->on_close, then forget
  static size_t cost(const Connection& c);
  void account(Connection& c);
  void enforce_budget(uint64_t keep_cookie);

  static const size_t kFixedCost;
  // What a handler allocates besides itself, between HTTP/1's ~610 bytes (its queue of pending
  // requests) and Redis's ~990, measured with mallinfo2 (tests/unit/
  // test_connection_tracker_memory.cpp fails when the budget and the heap differ by over 10%).
  static constexpr size_t kHandlerStateBytes = 800;
  // A skip verdict costs a map update (a syscall on the pipeline thread, about a microsecond):
  // sent only when the part of a body not seen yet spans several records' worth of copies.
  static constexpr uint64_t kMinSkipBytes = 16 * 1024;
  // A ServerHello longer than this is not waited for (one with a post-quantum key share is
  // ~1.2 KB; a classic one ~100 bytes).
  static constexpr size_t kMaxServerHelloBytes = 2048;

  TrackerConfig config_;
  std::unique_ptr<Output> exchange_only_;  // the output of the exchanges-only constructor
  TrackerOutputs outputs_;
  int64_t wall_offset_ns_;
  std::unordered_map<uint64_t, Connection> connections_;
  std::list<uint64_t> lru_;  // least recently active first
  size_t memory_used_ = 0;
  TrackerCounters counters_;
  std::vector<protocols::ProtocolCounters> protocol_counters_;
};

}  // namespace weft::conn
