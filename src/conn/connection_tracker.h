// Connections: one tracker per socket (cookie), holding its two byte streams and its protocol
// state, within one memory budget for all of them.
#pragma once

#include <array>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "conn/data_stream.h"
#include "protocols/protocol.h"
#include "weft/event.h"
#include "weft/exchange.h"

namespace weft::conn {

struct TrackerConfig {
  size_t memory_budget_bytes = 64u << 20;      // buffered bytes plus per-connection overhead
  uint64_t idle_timeout_ns = 120'000'000'000;  // state of a silent connection is freed after this
  size_t max_detect_bytes = 16 * 1024;         // bytes to look at before giving up on detection
};

struct TrackerCounters {
  uint64_t connections = 0;   // trackers created
  uint64_t closed = 0;        // freed on close
  uint64_t idle_expired = 0;  // freed after idle_timeout
  uint64_t evicted = 0;       // freed early to stay within the memory budget
  uint64_t undetected = 0;    // connections in no protocol weft knows (e.g. TLS, binary)
  uint64_t late_bytes = 0;    // bytes arriving for positions already passed
  uint64_t unpositioned = 0;  // data events without a kernel stream position
};

// Told when a thread moves bytes on a connection it accepted whose protocol weft cannot parse
// (TLS ciphertext, an unknown protocol, after an Upgrade): requests the trace stage cannot see
// are being served on that thread. Once per connection and thread.
using OpaqueServerIoSink = std::function<void(uint32_t pid, uint32_t tid)>;

class ConnectionTracker {
 public:
  ConnectionTracker(TrackerConfig config, protocols::ExchangeSink sink, int64_t wall_offset_ns);
  ~ConnectionTracker();

  // Set before the first event: handlers keep a pointer to this sink.
  void on_request_started(protocols::RequestStartSink sink) { on_request_start_ = std::move(sink); }
  void on_opaque_server_io(OpaqueServerIoSink sink) { on_opaque_server_io_ = std::move(sink); }
  // Told when a connection's state is freed (closed, idle, evicted), after its last exchanges.
  void on_connection_finished(std::function<void(uint64_t cookie)> sink) {
    on_finished_ = std::move(sink);
  }

  void on_event(const Event& event);
  // Frees connections silent since before now - idle timeout, finishing what they hold.
  void expire_idle(uint64_t now_mono_ns);
  // Finishes every connection (shutdown, end of a recording).
  void close_all();

  const TrackerCounters& counters() const { return counters_; }
  // Per protocol, in registry order.
  const std::vector<protocols::ProtocolCounters>& protocol_counters() const {
    return protocol_counters_;
  }
  size_t memory_used() const { return memory_used_; }
  size_t connection_count() const { return connections_.size(); }

 private:
  enum class State { Detecting, Tracking, Ignored };
  struct Connection {
    std::shared_ptr<ConnectionInfo> info;
    std::array<DataStream, 2> streams;
    std::unique_ptr<protocols::ProtocolHandler> handler;
    State state = State::Detecting;
    uint64_t last_activity_ns = 0;
    uint32_t opaque_reported_tid = 0;  // the last thread reported to on_opaque_server_io
    size_t accounted = 0;
    std::list<uint64_t>::iterator lru;
  };

  Connection& find_or_create(const Event& event);
  void update_identity(Connection& c, const Event& event);
  void on_data(Connection& c, const Event& event);
  void detect(Connection& c, Direction dir);
  void report_opaque(Connection& c, const Event& event);
  void finish(uint64_t cookie);  // handler->on_close, then forget
  void account(Connection& c);
  void enforce_budget(uint64_t keep_cookie);

  TrackerConfig config_;
  protocols::ExchangeSink sink_;
  protocols::RequestStartSink on_request_start_;
  OpaqueServerIoSink on_opaque_server_io_;
  std::function<void(uint64_t cookie)> on_finished_;
  int64_t wall_offset_ns_;
  std::unordered_map<uint64_t, Connection> connections_;
  std::list<uint64_t> lru_;  // least recently active first
  size_t memory_used_ = 0;
  TrackerCounters counters_;
  std::vector<protocols::ProtocolCounters> protocol_counters_;
};

}  // namespace weft::conn
