// HTTP/2 frames -> exchanges. Each direction is a sequence of frames (after the client's
// preface); frame lengths keep the reader on frame boundaries through every hole whose size the
// kernel reported, so lost bytes cost only what they covered: a DATA payload is skipped by
// length, a header block that lost bytes is decoded up to the loss (and the direction's HPACK
// table history is then unknown). Where a frame header itself was lost, or weft joined late,
// frame boundaries are found again at syscall boundaries by how plausible a frame header is.
//
// Streams interleave: each stream's request (HEADERS [+CONTINUATION] [+DATA...]) and response
// (HEADERS, DATA, trailers) make one exchange, emitted at the response's END_STREAM (or an
// RST_STREAM), with the kernel times of its own first and last frames.
#include <algorithm>
#include <string>
#include <vector>

#include "protocols/http1/route.h"
#include "protocols/http2/frame.h"
#include "protocols/http2/hpack.h"
#include "protocols/http2/http2.h"
#include "stream/message_framing.h"

namespace weft::protocols::http2 {
namespace {

// Streams tracked at once per connection; beyond, the oldest is dropped and counted (unmatched
// requests).
constexpr size_t kMaxStreams = 1024;
// Header block bytes kept per block; a larger block is decoded up to here and counted.
constexpr size_t kMaxHeaderBlock = 64 * 1024;
// Bytes kept of a SETTINGS payload (170 settings; peers send a handful).
constexpr size_t kMaxSettingsPayload = 1020;
// Kept header values, and kept headers per message.
constexpr size_t kMaxValue = 4096;
constexpr size_t kMaxKeptHeaders = 32;

constexpr std::string_view kKeptHeaders[] = {"user-agent",   "content-type",      "content-length",
                                             "traceparent",  "tracestate",        "b3",
                                             "x-b3-traceid", "x-b3-spanid",       "x-b3-sampled",
                                             "x-b3-flags",   "x-b3-parentspanid", "uber-trace-id",
                                             "grpc-status",  "grpc-message",      "host"};

bool kept(std::string_view name) {
  for (std::string_view k : kKeptHeaders)
    if (k == name) return true;
  return false;
}

std::string bounded(std::string_view v, size_t limit = kMaxValue) {
  return std::string(v.substr(0, limit));
}

int parse_int(std::string_view v) {
  if (v.empty() || v.size() > 9) return -1;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::string_view as_chars(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

uint32_t read_u32(std::string_view b, size_t at) {
  return (uint32_t{static_cast<uint8_t>(b[at])} << 24) |
         (uint32_t{static_cast<uint8_t>(b[at + 1])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[at + 2])} << 8) | static_cast<uint8_t>(b[at + 3]);
}

// Fields of one header block, into an exchange's request or response side.
class BlockFields : public FieldSink {
 public:
  BlockFields(Http2Exchange& x, bool request) : x_(x), request_(request) {}

  void field(const Field& f) override {
    if (!f.name_known || !f.value_known) return;  // counted by the decoder
    if (request_)
      request_field(f.name, f.value);
    else
      response_field(f.name, f.value);
  }

  int status = 0;
  bool saw_method = false;
  bool saw_path = false;
  bool saw_content_type = false;  // a request's content-type, whatever it is

 private:
  void request_field(std::string_view name, std::string_view value) {
    if (name == ":method") {
      x_.method = bounded(value, 64);
      saw_method = true;
    } else if (name == ":path") {
      x_.path = bounded(value);
      saw_path = true;
    } else if (name == ":scheme") {
      x_.scheme = bounded(value, 16);
    } else if (name == ":authority") {
      x_.authority = bounded(value, 256);
    } else if (kept(name) && x_.request_headers.size() < kMaxKeptHeaders) {
      if (name == "content-type") saw_content_type = true;
      if (name == "content-type" && value.starts_with("application/grpc")) x_.grpc = true;
      x_.request_headers.emplace_back(std::string(name), bounded(value));
    }
  }

  void response_field(std::string_view name, std::string_view value) {
    if (name == ":status") {
      status = parse_int(value);
    } else if (name == "grpc-status") {
      x_.grpc_status = parse_int(value);
    } else if (name == "grpc-message") {
      x_.grpc_message = bounded(value, 256);
    } else if (name == "content-type" && value.starts_with("application/grpc")) {
      x_.grpc = true;
    } else if (kept(name) && x_.response_headers.size() < kMaxKeptHeaders) {
      x_.response_headers.emplace_back(std::string(name), bounded(value));
    }
  }

  Http2Exchange& x_;
  bool request_;
};

class DiscardFields : public FieldSink {
 public:
  void field(const Field&) override {}
};

// One direction: its frame reader and its HPACK decoder.
struct Side {
  HpackDecoder hpack;
  bool started = false;  // first read done (sync and history decided)
  bool synced = false;   // the head is at a frame boundary (or the preface)
  bool in_frame = false;
  FrameHeader frame;
  MessageTiming frame_timing;
  uint64_t payload_left = 0;
  size_t keep = 0;  // payload bytes to keep
  std::string payload;
  bool payload_lost = false;                       // bytes of the kept part were never seen
  uint32_t max_frame_size = kDefaultMaxFrameSize;  // what the receiving peer allows
  bool carries_requests = false;
  uint32_t counted_stream = 0;  // the gRPC stream whose messages the current DATA frame carries
  // A header block under assembly (HEADERS or PUSH_PROMISE, then CONTINUATION frames).
  bool in_block = false;
  bool block_push = false;
  uint32_t block_stream = 0;
  bool block_end_stream = false;
  bool block_lost = false;
  std::string block;
  MessageTiming block_timing;
};

struct Message {
  bool seen = false;
  bool ended = false;
  MessageTiming timing;
};

// gRPC's length-prefixed messages in one direction of a stream (a flag byte, a 4-byte length,
// the message), counted from DATA payloads as they pass, never kept.
struct MessageCounter {
  uint64_t left = 0;  // bytes of the current message still to come
  uint8_t prefix_have = 0;
  uint8_t prefix[5] = {};
  uint32_t count = 0;
  bool lost = false;       // bytes never seen: the count cannot be trusted
  bool malformed = false;  // a flag byte gRPC never sends (only 0 and 1, "compressed"): not gRPC

  // The bytes so far are whole gRPC messages, ending on a message boundary.
  bool framed_exactly() const { return !lost && !malformed && left == 0 && prefix_have == 0; }

  void feed(std::span<const uint8_t> bytes) {
    while (!bytes.empty() && !lost && !malformed) {
      if (left > 0) {
        uint64_t n = std::min<uint64_t>(left, bytes.size());
        left -= n;
        bytes = bytes.subspan(n);
        continue;
      }
      if (prefix_have == 0 && bytes[0] > 1) {
        malformed = true;
        return;
      }
      prefix[prefix_have++] = bytes[0];
      bytes = bytes.subspan(1);
      if (prefix_have < sizeof(prefix)) continue;
      prefix_have = 0;
      left = read_u32(std::string_view(reinterpret_cast<const char*>(prefix) + 1, 4), 0);
      ++count;
    }
  }
};

struct StreamState {
  uint32_t id = 0;
  std::shared_ptr<Http2Exchange> http;
  Message request;
  Message response;
  MessageCounter messages[2];        // request, response
  uint64_t informational_bytes = 0;  // 1xx responses before the final one
  // The request's content-type or method rules gRPC out (a known type other than
  // application/grpc*, a method other than POST): its DATA is not walked for messages.
  bool not_grpc = false;
  // The response ended with a header block (trailers, or a trailers-only response), as every
  // gRPC response does; and fields of that last block named table entries weft never saw.
  bool ended_by_headers = false;
  bool last_block_unknown = false;
};

class Http2Handler : public ProtocolHandler {
 public:
  Http2Handler(std::shared_ptr<const ConnectionInfo> connection, bool requests_sent,
               ProtocolCounters& counters)
      : connection_(std::move(connection)),
        request_dir_(requests_sent ? Direction::Send : Direction::Recv),
        counters_(counters) {}

  // A connection an HTTP/1.1 Upgrade to h2c handed on: HTTP/2 begins exactly at the handoff's
  // positions, with empty HPACK tables (a new HTTP/2 connection), and the upgrade request is
  // stream 1's request, answered in HTTP/2 (RFC 7540, 3.2).
  Http2Handler(std::shared_ptr<const ConnectionInfo> connection, ProtocolCounters& counters,
               Handoff&& handoff)
      : Http2Handler(std::move(connection), handoff.requests_sent, counters) {
    upgraded_ = true;
    if (handoff.request) open_upgrade_stream(std::move(*handoff.request));
  }

  void on_data(Direction dir, Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    if (dir != request_dir_) {
      // The server answered: what it answers was sent before, so holes in the requests are
      // final, and the request frames are read first (a response ends its exchange).
      stream::DataStream& requests = streams[index(request_dir_)];
      stream::peer_moved_on(requests);
      read(request_dir_, requests);
    }
    read(dir, streams[index(dir)]);
    out_ = nullptr;
  }

  void on_close(Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    for (auto& s : streams) s.settle();
    read(Direction::Send, streams[index(Direction::Send)]);
    read(Direction::Recv, streams[index(Direction::Recv)]);
    for (const StreamState& st : streams_)
      if (st.request.seen) ++counters_.unmatched_requests;
    streams_.clear();
    out_ = nullptr;
  }

  bool active() const override { return true; }
  bool confirmed() const override { return confirmed_; }
  uint64_t errors() const override { return errors_; }

  uint64_t skipped_until(Direction dir, const Streams& streams) const override {
    const Side& side = sides_[index(dir)];
    if (!side.in_frame || side.frame.kind() != FrameType::Data || side.payload_left == 0 ||
        side.payload.size() < side.keep)
      return 0;
    return streams[index(dir)].head() + side.payload_left;
  }

 private:
  static int index(Direction d) { return static_cast<int>(d); }

  void read(Direction dir, stream::DataStream& s) {
    Side& side = sides_[index(dir)];
    side.carries_requests = dir == request_dir_;
    if (!side.started) start(side, s);
    for (;;) {
      if (!side.in_frame) {
        if (!next_frame(side, s)) return;
        continue;
      }
      if (!read_payload(side, s)) return;
      side.in_frame = false;
      finish_frame(dir, side);
    }
  }

  // A direction seen from the connection's first byte is framed and its table known; any other
  // begins at a guessed boundary with an unknown table.
  void start(Side& side, const stream::DataStream& s) {
    side.started = true;
    if (upgraded_ || (connection_->seen_from_start && s.head() == 0)) {
      side.synced = true;
      return;
    }
    side.hpack.lose_history();
  }

  // Frame boundaries are no longer known (a frame header lost or malformed): so is the table.
  void lose_framing(Side& side) {
    side.synced = false;
    side.in_frame = false;
    if (side.in_block) ++counters_.truncated_messages;
    side.in_block = false;
    side.hpack.lose_history();
    ++counters_.resyncs;
  }

  // Reads the next frame header (or the preface). False: wait for more bytes.
  bool next_frame(Side& side, stream::DataStream& s) {
    std::span<const uint8_t> r = s.readable();
    if (r.empty()) {
      uint64_t gap = stream::skip_unseen(s);
      if (gap == 0) return false;
      counters_.skipped_bytes += gap;
      if (side.synced) lose_framing(side);  // a frame header was in what was never seen
      return true;
    }
    if (!side.synced) return find_boundary(side, s);
    if (r[0] == static_cast<uint8_t>(kPreface[0])) return read_preface(side, s);
    if (r.size() < kFrameHeaderSize) {
      if (s.missing_after_readable() == 0) return false;
      ++counters_.truncated_messages;  // a frame header cut by the capture limit
      s.consume(r.size());
      lose_framing(side);
      return true;
    }
    FrameHeader h = parse_frame_header(r);
    if (!plausible(h, Strictness::Framed, side.max_frame_size)) {
      ++counters_.parse_errors;
      ++errors_;
      lose_framing(side);
      return true;
    }
    side.frame = h;
    side.frame_timing = stream::begin_message(s);
    s.consume(kFrameHeaderSize);
    side.in_frame = true;
    side.payload_left = h.length;
    side.payload.clear();
    side.payload_lost = false;
    side.keep = keep_of(h);
    side.counted_stream = 0;
    if (h.kind() == FrameType::Data) {
      auto it = find_stream(h.stream, side.carries_requests);
      // Walked for gRPC messages while the stream may be gRPC: the framing is evidence too.
      if (it != streams_.end() && (it->http->grpc || !it->not_grpc)) side.counted_stream = h.stream;
    }
    return true;
  }

  MessageCounter* counter_of(const Side& side) {
    if (side.counted_stream == 0) return nullptr;
    auto it = find_stream(side.counted_stream, side.carries_requests);
    return it == streams_.end() ? nullptr : &it->messages[side.carries_requests ? 0 : 1];
  }

  // DATA payload bytes at payload offset `pos`, without the pad length byte and the padding.
  void count_messages(Side& side, std::span<const uint8_t> bytes, uint64_t pos) {
    MessageCounter* counter = counter_of(side);
    if (!counter) return;
    const bool padded = side.frame.has(flags::kPadded);
    if (padded && side.payload.empty()) return;  // the pad length byte itself
    uint64_t begin = padded ? 1 : 0;
    uint64_t pad = padded ? static_cast<uint8_t>(side.payload[0]) : 0;
    uint64_t end = side.frame.length > pad ? side.frame.length - pad : begin;
    uint64_t lo = std::max(pos, begin);
    uint64_t hi = std::min<uint64_t>(pos + bytes.size(), end);
    if (lo < hi) counter->feed(bytes.subspan(lo - pos, hi - lo));
  }

  bool read_preface(Side& side, stream::DataStream& s) {
    std::string_view r = as_chars(s.readable());
    size_t n = std::min(r.size(), kPreface.size());
    if (r.substr(0, n) != kPreface.substr(0, n)) {
      ++counters_.parse_errors;
      ++errors_;
      lose_framing(side);
      return true;
    }
    if (n < kPreface.size()) {
      if (s.missing_after_readable() == 0) return false;
      s.consume(n);
      lose_framing(side);
      return true;
    }
    s.consume(kPreface.size());
    return true;
  }

  // At a guessed boundary: frames only where headers look like frames (a plausible header, and
  // the next one too when it is here); else the next syscall boundary is tried.
  bool find_boundary(Side& side, stream::DataStream& s) {
    std::span<const uint8_t> r = s.readable();
    std::string_view text = as_chars(r);
    size_t n = std::min(text.size(), kPreface.size());
    bool preface = text.substr(0, n) == kPreface.substr(0, n);
    if (preface && n < kPreface.size() && s.missing_after_readable() == 0) return false;
    if (preface && n == kPreface.size()) {
      side.synced = true;
      return true;
    }
    if (r.size() < kFrameHeaderSize && !preface && s.missing_after_readable() == 0 &&
        s.skippable() == 0)
      return false;
    if (!preface && r.size() >= kFrameHeaderSize) {
      switch (guess_boundary(r, s)) {
        case Guess::Frames:
          side.synced = true;
          return true;
        case Guess::Wait:
          return false;
        case Guess::No:
          break;
      }
    }
    uint64_t skipped = s.skip_to_next_boundary();
    counters_.skipped_bytes += skipped;
    return skipped > 0;
  }

  enum class Guess { Frames, Wait, No };
  // A plausible frame header is taken for a boundary when the next header is plausible too,
  // when its frame ends exactly where the captured bytes end, or when the capture stops inside
  // it (a long DATA frame): a header read from the middle of another frame seldom passes all
  // three. A frame that runs past what has arrived so far waits for more.
  static Guess guess_boundary(std::span<const uint8_t> r, const stream::DataStream& s) {
    FrameHeader h = parse_frame_header(r);
    if (!plausible(h, Strictness::Guessed, kDefaultMaxFrameSize)) return Guess::No;
    if (r.size() >= h.wire_size() + kFrameHeaderSize) {
      FrameHeader next = parse_frame_header(r.subspan(h.wire_size()));
      return plausible(next, Strictness::Guessed, kDefaultMaxFrameSize) ? Guess::Frames : Guess::No;
    }
    if (r.size() == h.wire_size() && s.known_end() == s.head() + r.size()) return Guess::Frames;
    if (s.missing_after_readable() > 0) return Guess::Frames;
    return Guess::Wait;
  }

  static size_t keep_of(const FrameHeader& h) {
    switch (h.kind()) {
      case FrameType::Data:
        return h.has(flags::kPadded) ? 1 : 0;
      case FrameType::Headers:
      case FrameType::Continuation:
      case FrameType::PushPromise:
        return std::min<size_t>(h.length, kMaxHeaderBlock);
      case FrameType::Settings:
        return std::min<size_t>(h.length, kMaxSettingsPayload);
      case FrameType::RstStream:
      case FrameType::WindowUpdate:
        return 4;
      case FrameType::Goaway:
        return 8;
      default:
        return 0;
    }
  }

  // Reads (keeps or skips) the current frame's payload. False: wait for more bytes.
  bool read_payload(Side& side, stream::DataStream& s) {
    while (side.payload_left > 0) {
      std::span<const uint8_t> r = s.readable();
      if (r.empty()) {
        uint64_t gap = s.skippable();
        if (gap == 0) return false;
        uint64_t n = std::min(gap, side.payload_left);
        s.consume(n);
        side.payload_left -= n;
        counters_.skipped_bytes += n;
        if (side.payload.size() < side.keep) side.payload_lost = true;
        if (MessageCounter* counter = counter_of(side)) counter->lost = true;
        continue;
      }
      size_t n = static_cast<size_t>(std::min<uint64_t>(r.size(), side.payload_left));
      if (!side.payload_lost && side.payload.size() < side.keep) {
        size_t k = std::min(n, side.keep - side.payload.size());
        side.payload.append(reinterpret_cast<const char*>(r.data()), k);
      }
      if (side.counted_stream)
        count_messages(side, r.first(n), side.frame.length - side.payload_left);
      s.consume(n);
      side.payload_left -= n;
    }
    stream::end_message(side.frame_timing, s);
    return true;
  }

  void finish_frame(Direction dir, Side& side) {
    const FrameHeader& h = side.frame;
    if (side.in_block && h.kind() != FrameType::Continuation) {
      // RFC 9113, 6.10: nothing may come between a block's frames.
      ++counters_.parse_errors;
      ++errors_;
      side.in_block = false;
      side.hpack.lose_history();
    }
    switch (h.kind()) {
      case FrameType::Data:
        return on_data_frame(dir, side);
      case FrameType::Headers:
      case FrameType::PushPromise:
        return on_block_start(dir, side);
      case FrameType::Continuation:
        return on_continuation(dir, side);
      case FrameType::RstStream:
        return on_reset(side);
      case FrameType::Settings:
        return on_settings(dir, side);
      default:
        return;  // PRIORITY, PING, GOAWAY, WINDOW_UPDATE, extensions: nothing an exchange needs
    }
  }

  // The header block fragment of a HEADERS or PUSH_PROMISE frame: after the pad length, the
  // priority fields or the promised stream, before the padding.
  static std::string_view fragment_of(const Side& side, bool& lost) {
    const FrameHeader& h = side.frame;
    std::string_view p = side.payload;
    size_t skip = 0;
    size_t pad = 0;
    if (h.has(flags::kPadded)) {
      if (p.empty()) {
        lost = true;
        return {};
      }
      pad = static_cast<uint8_t>(p[0]);
      skip = 1;
    }
    if (h.kind() == FrameType::Headers && h.has(flags::kPriority)) skip += 5;
    if (h.kind() == FrameType::PushPromise) skip += 4;
    if (skip + pad > h.length) {
      lost = true;  // malformed: padding longer than the payload
      return {};
    }
    size_t end = h.length - pad;
    if (end > p.size()) end = p.size();
    if (skip >= end) return {};
    return p.substr(skip, end - skip);
  }

  void on_block_start(Direction dir, Side& side) {
    const FrameHeader& h = side.frame;
    bool lost = side.payload_lost || h.length > kMaxHeaderBlock;
    if (h.length > kMaxHeaderBlock) ++counters_.truncated_messages;
    std::string_view fragment = fragment_of(side, lost);
    side.in_block = true;
    side.block_push = h.kind() == FrameType::PushPromise;
    side.block_stream = h.stream;
    side.block_end_stream = h.kind() == FrameType::Headers && h.has(flags::kEndStream);
    side.block_lost = lost;
    side.block.assign(fragment);
    side.block_timing = side.frame_timing;
    side.block_timing.wire_bytes = h.wire_size();
    if (h.has(flags::kEndHeaders)) end_block(dir, side);
  }

  void on_continuation(Direction dir, Side& side) {
    const FrameHeader& h = side.frame;
    if (!side.in_block || h.stream != side.block_stream) {
      ++counters_.parse_errors;
      ++errors_;
      side.hpack.lose_history();  // a block whose start was not seen
      return;
    }
    side.block_timing.end_ns = side.frame_timing.end_ns;
    side.block_timing.end_tid = side.frame_timing.end_tid;
    side.block_timing.wire_bytes += h.wire_size();
    if (side.block.size() + h.length > kMaxHeaderBlock && !side.block_lost) {
      ++counters_.truncated_messages;
      side.block_lost = true;
    }
    if (!side.block_lost) side.block += side.payload;
    side.block_lost |= side.payload_lost;
    if (h.has(flags::kEndHeaders)) end_block(dir, side);
  }

  HpackDecoder::Result decode(Side& side, FieldSink& sink) {
    auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(side.block.data()),
                                          side.block.size());
    HpackDecoder::Result r = side.hpack.decode(bytes, !side.block_lost, sink);
    if (r.malformed) {
      ++counters_.parse_errors;
      ++errors_;
    }
    return r;
  }

  void end_block(Direction dir, Side& side) {
    side.in_block = false;
    ++counters_.messages;
    if (side.block_push) {
      DiscardFields discard;  // a promised request: decoded only to keep the table in step
      decode(side, discard);
      ++counters_.not_replies;
      return;
    }
    if (dir == request_dir_)
      on_request_block(side);
    else
      on_response_block(side);
  }

  // Streams in the order their requests began. A stream id is never reused on a connection,
  // but a capture may show it twice (a stream whose end weft missed, test conversations): the
  // oldest open use of an id is the one a frame belongs to.
  using StreamIt = std::vector<StreamState>::iterator;
  StreamIt find_stream(uint32_t id, bool for_request) {
    return std::find_if(streams_.begin(), streams_.end(), [&](const StreamState& st) {
      return st.id == id && (for_request ? !st.request.ended : !st.response.ended);
    });
  }

  void on_request_block(Side& side) {
    auto it = find_stream(side.block_stream, true);
    if (it != streams_.end() && it->request.seen) {
      // Trailers of the request (a second block on the stream).
      DiscardFields discard;
      decode(side, discard);
      Message& m = it->request;
      extend(m.timing, side.block_timing);
      if (side.block_end_stream) m.ended = true;
      return;
    }
    if (streams_.size() >= kMaxStreams) {
      // Peers allow ~100 concurrent streams: the oldest of this many lost its end (or is a
      // flood). It makes room, counted as never answered.
      streams_.erase(streams_.begin());
      ++counters_.unmatched_requests;
    }
    StreamState& st = streams_.emplace_back();
    st.id = side.block_stream;
    st.http = std::make_shared<Http2Exchange>();
    st.http->stream_id = side.block_stream;
    BlockFields fields(*st.http, true);
    HpackDecoder::Result r = decode(side, fields);
    note_unknown(*st.http, r, side.block_lost);
    if (!fields.saw_method && (r.unknown_fields > 0 || r.cut || r.malformed))
      st.http->method_unknown = true;
    if (!fields.saw_path && (r.unknown_fields > 0 || r.cut || r.malformed))
      st.http->path_unknown = true;
    st.not_grpc = !st.http->grpc &&
                  ((fields.saw_content_type) || (fields.saw_method && st.http->method != "POST"));
    st.request.seen = true;
    st.request.ended = side.block_end_stream;
    st.request.timing = side.block_timing;
    if (request_dir_ == Direction::Recv && out_)
      out_->request_started(*connection_, st.request.timing.start_tid, st.request.timing.start_ns);
  }

  void on_response_block(Side& side) {
    Http2Exchange block;
    BlockFields fields(block, false);
    HpackDecoder::Result r = decode(side, fields);
    auto it = find_stream(side.block_stream, false);
    if (it != streams_.end() && it->response.seen && fields.status >= 200) {
      // A final status on a stream whose response had begun (trailers carry none): the end of
      // that response was lost with the framing. It is dropped, counted; the status answers
      // the next use of the id weft saw (a capture may show an id twice).
      streams_.erase(it);
      ++counters_.unmatched_requests;
      it = find_stream(side.block_stream, false);
    }
    if (it == streams_.end()) {
      // Even streams are server pushes; odd ones answer a request weft did not see.
      if (side.block_stream % 2 == 0)
        ++counters_.not_replies;
      else
        ++counters_.unmatched_responses;
      return;
    }
    StreamState& st = *it;
    merge_response(*st.http, block);
    note_unknown(*st.http, r, side.block_lost);
    if (!st.response.seen) {
      if (fields.status >= 100 && fields.status < 200) {
        st.informational_bytes += side.block_timing.wire_bytes;
        return;
      }
      st.http->status = fields.status > 0 ? fields.status : 0;
      if (fields.status <= 0 && (r.unknown_fields > 0 || r.cut || r.malformed))
        st.http->status_unknown = true;
      st.response.seen = true;
      st.response.timing = side.block_timing;
      st.response.timing.wire_bytes += st.informational_bytes;
    } else {
      extend(st.response.timing, side.block_timing);
    }
    if (side.block_end_stream) {
      st.ended_by_headers = true;
      st.last_block_unknown = r.unknown_fields > 0 || r.cut || r.malformed || side.block_lost;
      finish(it);
    }
  }

  // A response block's fields (decoded apart) into the stream's exchange.
  static void merge_response(Http2Exchange& x, Http2Exchange& block) {
    // A grpc-status (or a gRPC content-type) answers only gRPC: the call is gRPC even when its
    // request's content-type was a table entry weft never saw.
    if (block.grpc_status >= 0 || block.grpc) x.grpc = true;
    if (block.grpc_status >= 0) x.grpc_status = block.grpc_status;
    if (!block.grpc_message.empty()) x.grpc_message = std::move(block.grpc_message);
    for (auto& header : block.response_headers) {
      if (x.response_headers.size() >= kMaxKeptHeaders) break;
      x.response_headers.push_back(std::move(header));
    }
  }

  static void note_unknown(Http2Exchange& x, const HpackDecoder::Result& r, bool lost) {
    x.fields += r.fields;
    x.unknown_fields += r.unknown_fields;
    if (lost || r.cut || r.malformed) x.headers_damaged = true;
  }

  // A later frame of a message: its end moves, its bytes add up.
  static void extend(MessageTiming& m, const MessageTiming& frame) {
    m.end_ns = std::max(m.end_ns, frame.end_ns);
    m.end_tid = frame.end_tid;
    m.wire_bytes += frame.wire_bytes;
  }

  void on_data_frame(Direction dir, Side& side) {
    const FrameHeader& h = side.frame;
    auto it = find_stream(h.stream, dir == request_dir_);
    if (it == streams_.end()) return;
    Message& m = dir == request_dir_ ? it->request : it->response;
    if (!m.seen) return;  // DATA before HEADERS: nothing to add it to
    MessageTiming frame = side.frame_timing;
    frame.wire_bytes = h.wire_size();
    extend(m.timing, frame);
    uint64_t pad = h.has(flags::kPadded) && !side.payload.empty()
                       ? 1 + static_cast<uint8_t>(side.payload[0])
                       : 0;
    m.timing.body_bytes += h.length > pad ? h.length - pad : 0;
    if (!h.has(flags::kEndStream)) return;
    m.ended = true;
    if (dir != request_dir_) finish(it);
  }

  void on_reset(Side& side) {
    auto it = find_stream(side.frame.stream, false);
    if (it == streams_.end()) return;
    StreamState& st = *it;
    if (side.payload.size() == 4 && !side.payload_lost)
      st.http->reset_code = read_u32(side.payload, 0);
    else
      st.http->reset_code = 0;
    if (!st.response.seen) {
      st.response.seen = true;
      st.response.timing = side.frame_timing;
      st.response.timing.start_ns = side.frame_timing.end_ns;
      st.response.timing.wire_bytes = 0;
    }
    finish(it);
  }

  void on_settings(Direction dir, Side& side) {
    const FrameHeader& h = side.frame;
    if (h.has(flags::kAck) || side.payload_lost) return;
    // A peer's settings govern what the other direction carries.
    Side& other = sides_[index(dir == Direction::Send ? Direction::Recv : Direction::Send)];
    std::string_view p = side.payload;
    for (size_t at = 0; at + 6 <= p.size(); at += 6) {
      uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(p[at]) << 8) |
                                          static_cast<uint8_t>(p[at + 1]));
      uint32_t value = read_u32(p, at + 2);
      if (id == kSettingsHeaderTableSize) other.hpack.set_settings_limit(value);
      if (id == kSettingsMaxFrameSize && value >= kDefaultMaxFrameSize &&
          value <= kLargestMaxFrameSize)
        other.max_frame_size = value;
    }
  }

  void finish(StreamIt it) {
    StreamState st = std::move(*it);
    streams_.erase(it);
    st.http->route = http1::route_of_target(st.http->path);
    if (!st.http->grpc && framed_as_grpc(st)) st.http->grpc = st.http->grpc_inferred = true;
    // A gRPC call always ends with a grpc-status: when its block named entries weft never saw,
    // the status is unknown (flagged), never taken for OK.
    if (st.http->grpc && st.http->grpc_status < 0 && st.ended_by_headers && st.last_block_unknown)
      st.http->grpc_status_unknown = true;
    if (st.http->grpc && !st.messages[0].lost && !st.messages[1].lost) {
      st.http->request_messages = st.messages[0].count;
      st.http->response_messages = st.messages[1].count;
    }
    Exchange ex;
    ex.protocol = st.http->grpc ? &grpc_protocol() : &protocol();
    ex.side = request_dir_ == Direction::Send ? weft::Role::Client : weft::Role::Server;
    ex.connection = connection_;
    ex.request = st.request.timing;
    ex.response = st.response.timing;
    ex.details = std::move(st.http);
    ++counters_.exchanges;
    confirmed_ = true;
    if (out_) out_->exchange(std::move(ex));
  }

  // A stream whose content-type and grpc-status weft could not read (HPACK entries from before
  // it joined) is gRPC by its shape, when every sign that can be read says so: a POST (or an
  // unknown method) to a /Service/Method path (or an unknown one), a request that ended after
  // at least one whole length-prefixed message, a response whose DATA is whole messages too
  // and that ended with a header block (trailers), a 200 (or an unknown status), no reset.
  // A plain HTTP/2 exchange seldom passes: its body would have to begin with a 0 or 1 byte
  // and a length that lands exactly on the end of the body, and its response end in trailers.
  static bool framed_as_grpc(const StreamState& st) {
    const Http2Exchange& h = *st.http;
    if (st.not_grpc || h.reset_code >= 0 || !st.ended_by_headers) return false;
    if (!(h.method == "POST" || (h.method.empty() && h.method_unknown))) return false;
    std::string_view service, method;
    if (!(split_rpc(h.path, service, method) || (h.path.empty() && h.path_unknown))) return false;
    if (!(h.status == 200 || (h.status == 0 && h.status_unknown))) return false;
    const MessageCounter& requests = st.messages[0];
    const MessageCounter& responses = st.messages[1];
    return st.request.ended && requests.count >= 1 && requests.framed_exactly() &&
           responses.framed_exactly();
  }

  // Stream 1 of an upgraded connection: the HTTP/1.1 request, whole (RFC 7540, 3.2: the
  // stream is half-closed from the client), waiting for its HTTP/2 response.
  void open_upgrade_stream(UpgradeRequest&& request) {
    StreamState& st = streams_.emplace_back();
    st.id = 1;
    st.http = std::make_shared<Http2Exchange>();
    Http2Exchange& x = *st.http;
    x.stream_id = 1;
    x.upgraded = true;
    x.method = bounded(request.method, 64);
    x.path = bounded(request.target);
    x.scheme = "http";                                             // h2c
    x.fields = static_cast<uint32_t>(request.headers.size()) + 2;  // with method and target
    for (auto& [name, value] : request.headers) {
      if (name == "host") x.authority = bounded(value, 256);
      if (name == "content-type" && value.starts_with("application/grpc")) x.grpc = true;
      if (kept(name) && x.request_headers.size() < kMaxKeptHeaders)
        x.request_headers.emplace_back(std::move(name), bounded(value));
    }
    st.not_grpc = true;  // its body, if any, was HTTP/1's: no DATA frames to walk
    st.request.seen = st.request.ended = true;
    st.request.timing = request.timing;
  }

  std::shared_ptr<const ConnectionInfo> connection_;
  Direction request_dir_;
  ProtocolCounters& counters_;
  bool upgraded_ = false;  // begun by an HTTP/1.1 Upgrade
  Side sides_[2];
  std::vector<StreamState> streams_;
  HandlerOutput* out_ = nullptr;
  bool confirmed_ = false;
  uint64_t errors_ = 0;
};

// The first field of a header block fragment, from the static table only: a request
// pseudo-header (indexes 1-7) or :status (8-14). Unknown otherwise.
Detection classify_block(std::span<const uint8_t> p) {
  size_t at = 0;
  while (at < p.size() && (p[at] & 0xe0) == 0x20) {  // table size updates come first
    ++at;
    if ((p[at - 1] & 0x1f) == 0x1f)
      while (at < p.size() && (p[at++] & 0x80)) {
      }
  }
  if (at >= p.size()) return Detection::NeedMore;
  uint8_t b = p[at];
  uint32_t index = (b & 0x80) ? (b & 0x7f) : (b & 0xc0) == 0x40 ? (b & 0x3f) : (b & 0x0f);
  if ((b & 0xe0) == 0x20) return Detection::No;
  if (index >= 1 && index <= 7) return Detection::Requests;
  if (index >= 8 && index <= 14) return Detection::Responses;
  return Detection::No;
}

}  // namespace

DetectResult detect(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return {Detection::NeedMore};
  std::string_view text = as_chars(bytes);
  if (text[0] == kPreface[0]) {
    size_t n = std::min(text.size(), kPreface.size());
    if (text.substr(0, n) != kPreface.substr(0, n)) return {Detection::No};
    return {n == kPreface.size() ? Detection::Requests : Detection::NeedMore};
  }
  // Joined late: frames whose headers are plausible, up to a HEADERS frame whose first field
  // says which way requests go.
  size_t at = 0;
  for (int frames = 0; frames < 16; ++frames) {
    // A length of at most 16 KiB: a zero first byte and a second one of at most 0x40.
    if (bytes[at] != 0 || (bytes.size() - at > 1 && bytes[at + 1] > 0x40)) return {Detection::No};
    if (bytes.size() - at < kFrameHeaderSize) return {Detection::NeedMore};
    FrameHeader h = parse_frame_header(bytes.subspan(at));
    if (!plausible(h, Strictness::Guessed, kDefaultMaxFrameSize)) return {Detection::No};
    if (h.kind() == FrameType::Headers) {
      size_t p = at + kFrameHeaderSize + (h.has(flags::kPadded) ? 1 : 0) +
                 (h.has(flags::kPriority) ? 5 : 0);
      if (p >= at + h.wire_size()) return {Detection::No};
      Detection d = p < bytes.size()
                        ? classify_block(bytes.subspan(p, std::min<size_t>(bytes.size() - p, 16)))
                        : Detection::NeedMore;
      if (d == Detection::NeedMore) return {d};
      // Requests open client streams, which are odd.
      if (d == Detection::Requests && h.stream % 2 == 1) return {d, Confidence::Strong};
      if (d == Detection::Responses) return {d, Confidence::Strong};
    }
    at += h.wire_size();
    if (at >= bytes.size()) return {Detection::NeedMore};
  }
  return {Detection::No};
}

std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters) {
  return std::make_unique<Http2Handler>(std::move(connection), requests_sent, counters);
}

std::unique_ptr<ProtocolHandler> take_over_upgrade(std::shared_ptr<const ConnectionInfo> connection,
                                                   ProtocolCounters& counters, Handoff&& handoff) {
  return std::make_unique<Http2Handler>(std::move(connection), counters, std::move(handoff));
}

}  // namespace weft::protocols::http2
