// RESP, the Redis serialization protocol (RESP2 and RESP3), framed incrementally over the bytes
// of one direction, with a bounded summary of each message taken while framing.
//
// Pure code: no stream, tracker or span types. The caller owns the bytes; the framer keeps no
// copy of them beyond the bounded summary. Captures can cut long payloads short, so a bulk
// string's body never has to be seen: the framer says how many body bytes it can pass over
// (FrameResult::skippable) and skip() passes over them by their declared length.
//
// Never throws and never trusts a length: what is not RESP is reported Invalid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace weft::protocols::redis {

// Which side's messages a framer reads: clients send requests, servers send replies (and pushes).
enum class Role : uint8_t { Request, Reply };

// A RESP value's type, named by its first byte. Inline is a request written as a plain line
// ("PING\r\n"); None is "not seen yet".
enum class Type : uint8_t {
  None = 0,
  Inline = 1,
  SimpleString = '+',
  SimpleError = '-',
  Integer = ':',
  BulkString = '$',
  Array = '*',
  Null = '_',            // RESP3
  Double = ',',          // RESP3
  Boolean = '#',         // RESP3
  BlobError = '!',       // RESP3
  VerbatimString = '=',  // RESP3
  BigNumber = '(',       // RESP3
  Map = '%',             // RESP3
  Set = '~',             // RESP3
  Attribute = '|',       // RESP3: metadata about the value that follows it
  Push = '>',            // RESP3: out-of-band data, not a reply
};

// Bounds on what the framer accepts and keeps. Every one of them caps memory or work per byte.
struct Limits {
  size_t max_depth = 64;             // nested aggregates
  size_t max_line = 64 * 1024;       // a header line or an inline command, CRLF included
  int64_t max_elements = INT32_MAX;  // elements of one aggregate; Redis refuses more than INT_MAX
  int64_t max_bulk = 512LL << 20;    // a bulk string's length; Redis's default proto-max-bulk-len
  size_t kept_args = 8;              // request arguments whose first bytes are kept
  size_t kept_arg_bytes = 128;       // bytes kept of each of them
  size_t kept_text_bytes = 128;      // bytes kept of a reply's text (an error message, a status)
};

// Longest command or subcommand name kept; real ones are under 32 bytes.
inline constexpr size_t kMaxCommandName = 64;
// Elements of an aggregate reply kept in ReplySummary::head: enough for pub/sub messages
// ("message", channel, payload) and (un)subscribe confirmations (kind, channel, count).
inline constexpr size_t kReplyHeadElements = 3;

// One value of a reply, as far as it was kept.
struct Element {
  Type type = Type::None;
  bool null = false;       // "$-1", "*-1" (RESP2) or "_" (RESP3)
  int64_t length = 0;      // strings: declared bytes; aggregates: elements (maps: pairs);
                           // -1: streamed ("$?", "*?")
  int64_t integer = 0;     // Integer: its value; Boolean: 1 for true
  std::string text;        // first bytes of a string, error, number or verbatim string
  bool truncated = false;  // text is shorter than the value (past the limit, or not captured)
};

// A request argument: its first bytes.
struct Argument {
  std::string value;
  bool truncated = false;  // longer than kept, or its bytes were not captured
};

// A request: a RESP array of bulk strings or an inline command line.
struct RequestSummary {
  bool inline_form = false;
  std::string command;          // upper-cased; "" for an empty request ("*0", a blank line)
  std::string subcommand;       // upper-cased, for commands that have them (CLIENT SETNAME)
  std::vector<Argument> args;   // the first arguments after command and subcommand (bounded)
  uint64_t arg_count = 0;       // all arguments after command and subcommand, kept or not
  bool name_truncated = false;  // the command or subcommand name was not all seen
};

// Pub/sub messages and confirmations, recognised by the first element of an array (RESP2) or a
// push (RESP3).
enum class PubSub : uint8_t {
  None,
  Message,    // "message", channel, payload: not a reply
  PMessage,   // "pmessage", pattern, channel, payload: not a reply
  SMessage,   // "smessage", shard channel, payload: not a reply
  Subscribe,  // confirmations: kind, channel, subscription count
  PSubscribe,
  SSubscribe,
  Unsubscribe,
  PUnsubscribe,
  SUnsubscribe,
  Pong,        // "pong", payload: PING's reply in RESP2 subscribed mode
  Invalidate,  // RESP3 client-side caching: "invalidate", keys (a push, not a reply)
};

// A reply (or a push) as far as was kept.
struct ReplySummary {
  Element value;                // the reply itself, after any attributes
  bool has_attributes = false;  // RESP3 attributes ('|') preceded it
  std::vector<Element> head;    // the first elements of an aggregate (kReplyHeadElements)

  Type type() const { return value.type; }
  bool is_error() const { return value.type == Type::SimpleError || value.type == Type::BlobError; }
  // RESP3 pushes are not replies: pub/sub messages, client-side caching invalidations.
  bool is_push() const { return value.type == Type::Push; }
  // An error's first word ("ERR", "WRONGTYPE", "MOVED"); "" if not an error.
  std::string_view error_prefix() const;
  // What pub/sub message or confirmation this is, if any. In RESP2 a subscribed connection's
  // "message" arrays are not replies; the caller knows whether the connection is subscribed.
  PubSub pubsub() const;
  // The subscription count a (un)subscribe confirmation carries (its third element).
  std::optional<int64_t> subscription_count() const;
};

enum class Status : uint8_t {
  Complete,  // a whole message: `consumed` bytes of this input end it
  NeedMore,  // the message goes on past these bytes
  Invalid,   // not RESP here; `error` says why
};

struct FrameResult {
  Status status = Status::NeedMore;
  // Bytes of the input the framer took. On NeedMore the rest (a partial line) was not taken:
  // offer it again, followed by more bytes.
  size_t consumed = 0;
  // NeedMore inside a bulk body: bytes of it (CRLF included) that skip() can pass over unseen.
  uint64_t skippable = 0;
  // NeedMore: at least this many more bytes are needed before the message can end.
  uint64_t needed = 0;
  const char* error = "";  // Invalid: a static description
};

// Frames one message after another. feed() bytes from a message boundary; after Complete the
// next feed() starts the next message (the summary of the last one stays readable until then).
// After Invalid the framer stays Invalid until reset().
class Framer {
 public:
  explicit Framer(Role role, const Limits& limits = {});

  FrameResult feed(std::span<const uint8_t> bytes);
  // Passes over up to `n` bytes of the bulk body being read without seeing them (they were not
  // captured). Takes at most FrameResult::skippable bytes; consumed says how many it took.
  FrameResult skip(uint64_t n);
  // Forgets the message being read; the next bytes are a message boundary.
  void reset();
  // Bytes of the bulk body being read still to come, CRLF included (what skip() can pass over
  // unseen); 0 outside a body.
  uint64_t body_left() const { return state_ == State::Body ? body_left_ : 0; }

  Role role() const { return role_; }
  // Bytes of the current (or just completed) message taken so far, skipped ones included.
  uint64_t message_bytes() const { return message_bytes_; }
  // Between messages: nothing of the next one has been taken yet.
  bool at_boundary() const {
    return state_ == State::Done || (state_ == State::Line && message_bytes_ == 0);
  }
  const RequestSummary& request() const { return request_; }
  const ReplySummary& reply() const { return reply_; }

 private:
  // An aggregate being read.
  struct Open {
    Type type;
    int64_t remaining;  // elements still to come; -1: streamed, ends with '.'
    int64_t index;      // elements seen so far
  };
  // Where the bytes of the value being read are summarised: a place, not a pointer, so that a
  // framer can be copied or moved in the middle of a message. Args and head: their last entry.
  enum class Sink : uint8_t { None, Command, Subcommand, Arg, Value, Head };
  enum class State : uint8_t { Line, Body, Done, Failed };

  void start_message();
  size_t take_body(std::span<const uint8_t> bytes);
  bool handle_line(std::string_view line);
  bool scalar(Type type, std::string_view payload);
  bool begin_string(Type type, std::string_view payload);
  bool begin_aggregate(Type type, std::string_view payload);
  bool end_streamed_aggregate(std::string_view payload);
  bool chunk_header(std::string_view payload);
  bool inline_command(std::string_view line);
  void body_done();
  void value_done(bool attribute);
  Element* summary_slot(Type type);
  void keep(std::string_view bytes);
  void keep_cut();
  bool fail(const char* why);
  FrameResult need_more(size_t consumed) const;
  FrameResult result(Status status, size_t consumed) const;
  void note_request_element(size_t index);
  void finish_request();

  Role role_;
  Limits limits_;
  State state_ = State::Line;
  bool complete_ = false;
  const char* error_ = "";
  uint64_t message_bytes_ = 0;
  std::vector<Open> open_;      // bounded by max_depth
  size_t attribute_depth_ = 0;  // open attributes: their contents are not summarised
  bool in_streamed_string_ = false;
  uint64_t body_left_ = 0;    // bulk body bytes still to come, CRLF included
  uint64_t body_length_ = 0;  // the declared length of that body
  Sink sink_ = Sink::None;    // where that body's first bytes go
  RequestSummary request_;
  ReplySummary reply_;
  int64_t request_elements_ = 0;  // the request array's count (or the inline words)
  bool has_subcommand_ = false;   // the request's second element is its subcommand
};

// Frames the one message at the start of `bytes` (a convenience over Framer): Complete with the
// message's size in `consumed`, NeedMore, or Invalid.
FrameResult frame_message(std::span<const uint8_t> bytes, Role role, const Limits& limits = {});

}  // namespace weft::protocols::redis
