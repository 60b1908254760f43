// PostgreSQL protocol 3 messages on a stream: a type byte and a big-endian int32 length that
// counts itself (the startup family has no type byte), read one at a time. Only the first bytes
// of a body are kept (the statement of a Query or Parse, a tag, an error's fields); the rest
// (DataRow values, CopyData) is passed over by its length.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "protocols/protocol.h"
#include "stream/data_stream.h"
#include "weft/exchange.h"

namespace weft::protocols::postgres {

// Startup-family codes (the second int32 of an untyped message).
constexpr uint32_t kProtocol3 = 196608;  // 3.0
constexpr uint32_t kSslRequest = 80877103;
constexpr uint32_t kGssEncRequest = 80877104;
constexpr uint32_t kCancelRequest = 80877102;
// Body bytes kept per message: a statement longer than this is cut (and still sanitised).
constexpr size_t kKeptBodyBytes = 16384;
// Longest message a sane peer sends (PostgreSQL's own limit is 1 GiB for any message).
constexpr uint32_t kMaxMessageLength = 1u << 30;

// Whether a type byte is one the frontend (client) or the backend (server) sends.
bool frontend_type(uint8_t type);
bool backend_type(uint8_t type);
// A startup-family message: its length and code are plausible.
bool startup_code(uint32_t code);

uint32_t read_be32(std::span<const uint8_t> bytes);

// One message's first bytes and where it was.
struct Message {
  uint8_t type = 0;       // 0: a startup-family message (code in `code`); 'N'/'S' SSL answer bytes
  uint32_t code = 0;      // startup family only
  std::string body;       // the first kKeptBodyBytes of the body
  bool body_cut = false;  // the body is longer than what was kept, or was not captured whole
  uint32_t body_length = 0;
  MessageTiming timing;
};

// Reads one direction's messages.
class MessageReader {
 public:
  MessageReader(bool frontend, ProtocolCounters& counters)
      : frontend_(frontend), counters_(counters) {}

  enum class Step { Message, Waiting, Error };
  // Message: message() holds it. Error: bytes that are not a message (skipped to the next
  // syscall boundary, where one is likeliest to begin).
  Step next(stream::DataStream& s);
  const Message& message() const { return message_; }
  // The next backend byte is the one-byte answer to an SSLRequest or GSSENCRequest.
  void expect_ssl_answer() { ssl_answer_ = true; }
  // Where the body being passed over ends (the kernel need not copy it), 0 outside one.
  uint64_t skipped_until(const stream::DataStream& s) const {
    return in_body_ && body_left_ > 0 ? s.head() + body_left_ : 0;
  }
  // Bytes never seen where messages should have been (an uncaptured end of a syscall, lost
  // records) since the last call: what they held is unknown, only their count. 0: none.
  uint64_t take_unseen() { return std::exchange(unseen_, 0); }
  // A whole valid message was read: bytes that are not one are errors from then on (before,
  // they are the rest of a message weft joined in its middle).
  bool in_step() const { return messages_ > 0; }

 private:
  Step start_message(stream::DataStream& s);
  Step pass_body(stream::DataStream& s);
  void resync(stream::DataStream& s);

  bool frontend_;
  ProtocolCounters& counters_;
  Message message_;
  bool in_body_ = false;
  uint64_t body_left_ = 0;
  bool ssl_answer_ = false;
  uint64_t unseen_ = 0;
  uint64_t messages_ = 0;
};

// Fields of message bodies. Each reads what is there and stops at a cut body.
struct ErrorFields {
  std::string code;      // 'C': SQLSTATE
  std::string severity;  // 'V' (not localised), else 'S'
};
ErrorFields read_error(std::string_view body);
// A NUL-terminated string at `at` (advanced past it); the rest of the body when cut.
std::string_view read_cstring(std::string_view body, size_t& at);
// The row count at the end of a CommandComplete tag ("INSERT 0 5", "SELECT 3"), or -1.
int64_t tag_rows(std::string_view tag);

}  // namespace weft::protocols::postgres
