// The protocol plug-in interface. Each protocol lives in its own folder and adds one entry to
// the registry (registry.cpp); nothing else in weft names a protocol.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "conn/data_stream.h"
#include "weft/exchange.h"

namespace weft::protocols {

using ExchangeSink = std::function<void(Exchange&&)>;
// Told when this process has begun receiving a request (its head is parsed): the trace stage
// then knows a server span is open on that thread and waits for it before judging the calls
// made inside it.
using RequestStartSink = std::function<void(const ConnectionInfo&, uint32_t tid, uint64_t start_mono_ns)>;

// Counters every protocol feeds; shown to users by `weft exchanges` and kept per protocol.
struct ProtocolCounters {
  uint64_t messages = 0;
  uint64_t exchanges = 0;
  uint64_t parse_errors = 0;         // bytes that were not a valid message
  uint64_t resyncs = 0;              // times a parser skipped ahead to find a message start
  uint64_t unmatched_requests = 0;   // requests never answered (connection ended first)
  uint64_t unmatched_responses = 0;  // responses without a request
  uint64_t truncated_messages = 0;   // headers longer than the capture limit
  uint64_t skipped_bytes = 0;        // uncaptured or lost bytes skipped by length
};

enum class Detection { NeedMore, No, Requests, Responses };

// One connection's protocol state. Streams are indexed by weft::Direction: [Send] holds what
// this process wrote, [Recv] what it read.
class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;
  // Parses what is available on streams[dir] and emits finished exchanges.
  virtual void on_data(Direction dir, std::array<conn::DataStream, 2>& streams, const ExchangeSink& out) = 0;
  // The connection ended (closed, idle or evicted): finish what can be, count the rest.
  virtual void on_close(std::array<conn::DataStream, 2>& streams, const ExchangeSink& out) = 0;
  // False once the protocol left the conversation (e.g. after an HTTP Upgrade): the tracker
  // then stops buffering the connection's bytes.
  virtual bool active() const = 0;
};

struct ProtocolSpec {
  std::string_view name;
  // Looks at the first captured bytes of one direction.
  Detection (*detect)(std::span<const uint8_t> first_bytes);
  // `requests_sent`: this process writes the requests (it is the client).
  // `on_request_start` may be null or empty.
  std::unique_ptr<ProtocolHandler> (*create)(std::shared_ptr<const ConnectionInfo> connection,
                                             bool requests_sent, ProtocolCounters& counters,
                                             const RequestStartSink* on_request_start);
};

const std::vector<ProtocolSpec>& registry();

}  // namespace weft::protocols
