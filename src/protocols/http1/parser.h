// Bytes of one direction -> HTTP/1 messages. Never throws on wire bytes: what is not HTTP is
// counted as a parse error and skipped until the next plausible message start (a resync).
// Bodies are skipped by their declared length, whether or not their bytes were captured.
#pragma once

#include <functional>
#include <string_view>

#include "protocols/http1/message.h"
#include "protocols/protocol.h"
#include "stream/data_stream.h"

namespace weft::protocols::http1 {

// Largest header section weft waits for; a longer one is a parse error.
inline constexpr size_t kMaxHeaderBytes = 64 * 1024;

struct ParserCallbacks {
  // Start line and headers parsed. The callee may take them (method, target, version,
  // headers): from here on the parser needs only the framing fields and the timing, and
  // `complete` hands over what it kept.
  std::function<void(Message&)> head;
  std::function<void(Message&&)> complete;  // the whole message seen
  // Responses only: the method of the request the next response answers ("" if unknown).
  std::function<std::string_view()> request_method;
};

class MessageParser {
 public:
  MessageParser(MessageKind kind, ProtocolCounters& counters) : kind_(kind), counters_(counters) {}

  void parse(stream::DataStream& stream, const ParserCallbacks& cb);
  // The stream ended: a body delimited by the end of the connection is complete now; a message
  // cut short is dropped.
  void finish(stream::DataStream& stream, const ParserCallbacks& cb);
  // After an Upgrade or a CONNECT tunnel: the bytes are no longer HTTP.
  void stop() { state_ = State::Stopped; }
  bool stopped() const { return state_ == State::Stopped; }
  // Timing of the message being read so far, when it is the one whose head is in `timing`
  // (same first byte): bytes read up to now, last byte time of the latest of them.
  void progress(MessageTiming& timing, const stream::DataStream& stream) const;
  // Where the body bytes this parser will pass over by length end (a Content-Length body or
  // the current chunk's data): 0 when it is not inside one.
  uint64_t skipped_until(const stream::DataStream& stream) const;
  // Takes a header section still waiting for its end as complete as it will get (flagged
  // truncated): the other direction shows its message is over (a response has begun).
  void end_partial_head(stream::DataStream& stream, const ParserCallbacks& cb);

 private:
  enum class State {
    Start,
    Body,
    ChunkSize,
    ChunkData,
    ChunkEnd,
    Trailers,
    UntilClose,
    FramingLost,
    Resync,
    Stopped
  };

  bool step(stream::DataStream& s, const ParserCallbacks& cb);  // false: needs more bytes
  bool parse_head(stream::DataStream& s, const ParserCallbacks& cb);
  bool waits_for_rest(const stream::DataStream& s, std::string_view text) const;
  bool skip_body(stream::DataStream& s, const ParserCallbacks& cb);
  bool read_line(stream::DataStream& s, std::string_view& line, size_t& consumed);
  bool chunk_step(stream::DataStream& s, const ParserCallbacks& cb);
  bool resync(stream::DataStream& s, const ParserCallbacks& cb);
  void begin_body(stream::DataStream& s, const ParserCallbacks& cb);
  void complete(stream::DataStream& s, const ParserCallbacks& cb);
  void absorb(stream::DataStream& s, uint64_t n,
              bool body);  // consume n bytes into the open message
  void parse_error(stream::DataStream& s);

  MessageKind kind_;
  ProtocolCounters& counters_;
  State state_ = State::Start;
  Message open_;  // the message being read
  bool have_open_ = false;
  uint64_t remaining_ = 0;  // body or chunk bytes still to skip
  bool head_cut_ = false;   // set by end_partial_head()
};

// Whether `line` (without its line ending) is a valid start line of the given kind.
bool valid_start_line(std::string_view line, MessageKind kind, bool strict_method);

}  // namespace weft::protocols::http1
