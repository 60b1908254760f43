#include "protocols/redis/resp.h"

#include <algorithm>
#include <array>

#include "protocols/redis/commands.h"

namespace weft::protocols::redis {
namespace {

// How a line at the start of some bytes ends.
enum class LineScan { Found, Partial, TooLong, Bad };

struct Line {
  LineScan scan = LineScan::Partial;
  size_t length = 0;  // without its ending
  size_t total = 0;   // with it
};

std::string_view as_chars(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// A RESP line ends in CRLF; a lone CR or LF inside one means these bytes are not RESP.
Line scan_resp_line(std::span<const uint8_t> bytes, size_t max_line) {
  const size_t window = std::min(bytes.size(), max_line);
  for (size_t i = 0; i < window; ++i) {
    if (bytes[i] == '\n') return {LineScan::Bad};
    if (bytes[i] != '\r') continue;
    if (i + 1 == bytes.size()) return {LineScan::Partial};
    if (bytes[i + 1] != '\n') return {LineScan::Bad};
    return {LineScan::Found, i, i + 2};
  }
  return {bytes.size() >= max_line ? LineScan::TooLong : LineScan::Partial};
}

// An inline command ends at LF (Redis drops a CR before it). Control bytes are refused at once
// so that binary data is not mistaken for a command line still waiting for its end.
Line scan_inline_line(std::span<const uint8_t> bytes, size_t max_line) {
  const size_t window = std::min(bytes.size(), max_line);
  for (size_t i = 0; i < window; ++i) {
    const uint8_t c = bytes[i];
    if (c == '\n') return {LineScan::Found, i > 0 && bytes[i - 1] == '\r' ? i - 1 : i, i + 1};
    if (c == '\r' && i + 1 < bytes.size() && bytes[i + 1] != '\n') return {LineScan::Bad};
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) return {LineScan::Bad};
  }
  return {bytes.size() >= max_line ? LineScan::TooLong : LineScan::Partial};
}

bool known_type_byte(uint8_t c) {
  static constexpr std::string_view kTypes = "+-:$*_,#!=(%~|>;.";
  return kTypes.find(static_cast<char>(c)) != std::string_view::npos;
}

// A signed 64-bit decimal, strictly: no sign but '-', no spaces, no overflow.
std::optional<int64_t> parse_int(std::string_view s) {
  const bool negative = !s.empty() && s.front() == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || s.size() > 19) return std::nullopt;
  uint64_t value = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  const uint64_t max = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
  if (value > max) return std::nullopt;
  return negative ? static_cast<int64_t>(0 - value) : static_cast<int64_t>(value);
}

// A length or count: a non-negative decimal no larger than `max`.
std::optional<int64_t> parse_length(std::string_view s, int64_t max) {
  if (s.empty() || s.front() == '-') return std::nullopt;
  const auto value = parse_int(s);
  if (!value || *value > max) return std::nullopt;
  return value;
}

bool valid_double(std::string_view s) {
  if (s == "inf" || s == "-inf" || s == "nan") return true;
  bool digit = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digit = true;
    } else if (c != '+' && c != '-' && c != '.' && c != 'e' && c != 'E') {
      return false;
    }
  }
  return digit;
}

bool valid_big_number(std::string_view s) {
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void append_bounded(std::string& text, bool& truncated, std::string_view bytes, size_t limit) {
  const size_t room = limit - std::min(limit, text.size());
  text.append(bytes.substr(0, room));
  if (bytes.size() > room) truncated = true;
}

void upper_case(std::string& s) {
  for (char& c : s) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
}

bool equals_ignore_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') return (c | 0x20) - 'a' + 10;
  return -1;
}

// One escape inside a "double quoted" inline word, at line[i] == '\\'; returns the byte and moves
// i past the escape.
char double_quote_escape(std::string_view line, size_t& i) {
  if (i + 3 < line.size() && line[i + 1] == 'x' && hex_digit(line[i + 2]) >= 0 &&
      hex_digit(line[i + 3]) >= 0) {
    const char byte = static_cast<char>(hex_digit(line[i + 2]) * 16 + hex_digit(line[i + 3]));
    i += 4;
    return byte;
  }
  if (i + 1 >= line.size()) return line[i++];
  const char c = line[i + 1];
  i += 2;
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// One word of an inline command starting at line[i] (not a space), as Redis's sdssplitargs
// reads it; false: unbalanced quotes or a closing quote not followed by a space.
bool next_inline_word(std::string_view line, size_t& i, std::string& word) {
  word.clear();
  const char quote = line[i] == '"' || line[i] == '\'' ? line[i] : 0;
  if (quote == 0) {
    while (i < line.size() && !is_space(line[i])) word.push_back(line[i++]);
    return true;
  }
  ++i;
  while (i < line.size()) {
    if (line[i] == quote) {
      ++i;
      return i == line.size() || is_space(line[i]);
    }
    if (quote == '"' && line[i] == '\\') {
      word.push_back(double_quote_escape(line, i));
    } else if (quote == '\'' && line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '\'') {
      word.push_back('\'');
      i += 2;
    } else {
      word.push_back(line[i++]);
    }
  }
  return false;
}

std::string_view first_word(std::string_view text) {
  return text.substr(0, text.find(' '));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ReplySummary

std::string_view ReplySummary::error_prefix() const {
  return is_error() ? first_word(value.text) : std::string_view{};
}

PubSub ReplySummary::pubsub() const {
  if ((value.type != Type::Array && value.type != Type::Push) || head.empty()) return PubSub::None;
  const Element& kind = head.front();
  if (kind.type != Type::BulkString && kind.type != Type::SimpleString) return PubSub::None;
  static constexpr std::array<std::pair<std::string_view, PubSub>, 11> kKinds = {{
      {"message", PubSub::Message},
      {"pmessage", PubSub::PMessage},
      {"smessage", PubSub::SMessage},
      {"subscribe", PubSub::Subscribe},
      {"psubscribe", PubSub::PSubscribe},
      {"ssubscribe", PubSub::SSubscribe},
      {"unsubscribe", PubSub::Unsubscribe},
      {"punsubscribe", PubSub::PUnsubscribe},
      {"sunsubscribe", PubSub::SUnsubscribe},
      {"pong", PubSub::Pong},
      {"invalidate", PubSub::Invalidate},
  }};
  for (const auto& [name, kind_id] : kKinds) {
    if (equals_ignore_case(kind.text, name)) return kind_id;
  }
  return PubSub::None;
}

std::optional<int64_t> ReplySummary::subscription_count() const {
  const PubSub kind = pubsub();
  const bool confirmation = kind >= PubSub::Subscribe && kind <= PubSub::SUnsubscribe;
  if (!confirmation || head.size() < 3 || head[2].type != Type::Integer) return std::nullopt;
  return head[2].integer;
}

// ---------------------------------------------------------------------------------------------
// Framer

Framer::Framer(Role role, const Limits& limits) : role_(role), limits_(limits) {
  open_.reserve(8);
}

void Framer::start_message() {
  state_ = State::Line;
  complete_ = false;
  message_bytes_ = 0;
  open_.clear();
  attribute_depth_ = 0;
  in_streamed_string_ = false;
  body_left_ = 0;
  body_length_ = 0;
  sink_ = Sink::None;
  request_.inline_form = false;
  request_.command.clear();
  request_.subcommand.clear();
  request_.args.clear();
  request_.arg_count = 0;
  request_.name_truncated = false;
  reply_.value = {};
  reply_.has_attributes = false;
  reply_.head.clear();
  request_elements_ = 0;
  has_subcommand_ = false;
}

void Framer::reset() {
  start_message();
  error_ = "";
}

FrameResult Framer::feed(std::span<const uint8_t> bytes) {
  if (state_ == State::Failed) return result(Status::Invalid, 0);
  if (state_ == State::Done) start_message();
  size_t pos = 0;
  while (state_ != State::Done) {
    if (state_ == State::Body) {
      pos += take_body(bytes.subspan(pos));
      if (state_ == State::Failed) return result(Status::Invalid, pos);
      if (state_ == State::Body) return need_more(pos);
      continue;
    }
    const std::span<const uint8_t> rest = bytes.subspan(pos);
    if (rest.empty()) return need_more(pos);
    // Redis reads a request that does not start with '*' as an inline command.
    const bool inline_form = role_ == Role::Request && open_.empty() && rest[0] != '*';
    if (!inline_form && !known_type_byte(rest[0])) {
      fail("unknown type byte");
      return result(Status::Invalid, pos);
    }
    const Line line = inline_form ? scan_inline_line(rest, limits_.max_line)
                                  : scan_resp_line(rest, limits_.max_line);
    if (line.scan == LineScan::Partial) return need_more(pos);
    if (line.scan == LineScan::TooLong) fail("line too long");
    if (line.scan == LineScan::Bad) fail("line not ended by CRLF");
    if (state_ == State::Failed) return result(Status::Invalid, pos);
    const std::string_view text = as_chars(rest.first(line.length));
    if (!(inline_form ? inline_command(text) : handle_line(text))) {
      return result(Status::Invalid, pos);
    }
    pos += line.total;
    message_bytes_ += line.total;
  }
  return result(Status::Complete, pos);
}

FrameResult Framer::skip(uint64_t n) {
  if (state_ == State::Failed) return result(Status::Invalid, 0);
  if (state_ != State::Body) return need_more(0);
  const uint64_t taken = std::min(n, body_left_);
  const uint64_t at = body_length_ + 2 - body_left_;
  if (taken > 0 && at < body_length_) keep_cut();
  body_left_ -= taken;
  message_bytes_ += taken;
  if (body_left_ == 0) body_done();
  return state_ == State::Done ? result(Status::Complete, taken) : need_more(taken);
}

size_t Framer::take_body(std::span<const uint8_t> bytes) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes.size(), body_left_));
  const uint64_t at = body_length_ + 2 - body_left_;
  const size_t content =
      at < body_length_ ? static_cast<size_t>(std::min<uint64_t>(n, body_length_ - at)) : 0;
  keep(as_chars(bytes.first(content)));
  // The CRLF after the body, when it was captured, proves the declared length right.
  for (size_t i = content; i < n; ++i) {
    const char expected = at + i == body_length_ ? '\r' : '\n';
    if (bytes[i] != expected) {
      fail("bulk string not ended by CRLF");
      return i;
    }
  }
  body_left_ -= n;
  message_bytes_ += n;
  if (body_left_ == 0) body_done();
  return n;
}

bool Framer::handle_line(std::string_view line) {
  const char first = line.front();
  const std::string_view payload = line.substr(1);
  if (in_streamed_string_) {
    return first == ';' ? chunk_header(payload) : fail("expected a streamed string chunk");
  }
  if (first == '.') return end_streamed_aggregate(payload);
  // Redis accepts only bulk strings inside a request array.
  if (role_ == Role::Request && !open_.empty() && first != '$')
    return fail("request element is not a bulk string");
  const Type type = static_cast<Type>(first);
  switch (first) {
    case '$':
    case '!':
    case '=':
      return begin_string(type, payload);
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
      return begin_aggregate(type, payload);
    case ';':
      return fail("string chunk outside a streamed string");
    default:
      return scalar(type, payload);
  }
}

bool Framer::scalar(Type type, std::string_view payload) {
  std::optional<int64_t> integer;
  switch (type) {
    case Type::Integer:
      integer = parse_int(payload);
      if (!integer) return fail("bad integer");
      break;
    case Type::Null:
      if (!payload.empty()) return fail("bad null");
      break;
    case Type::Double:
      if (!valid_double(payload)) return fail("bad double");
      break;
    case Type::Boolean:
      if (payload != "t" && payload != "f") return fail("bad boolean");
      integer = payload == "t" ? 1 : 0;
      break;
    case Type::BigNumber:
      if (!valid_big_number(payload)) return fail("bad big number");
      break;
    default:  // simple strings and errors: any bytes but CR and LF
      break;
  }
  if (Element* slot = summary_slot(type)) {
    slot->null = type == Type::Null;
    slot->integer = integer.value_or(0);
    slot->length = static_cast<int64_t>(payload.size());
    append_bounded(slot->text, slot->truncated, payload, limits_.kept_text_bytes);
  }
  value_done(false);
  return true;
}

bool Framer::begin_string(Type type, std::string_view payload) {
  const bool request = role_ == Role::Request;
  Element* slot = summary_slot(type);
  if (request) note_request_element(static_cast<size_t>(open_.front().index));
  if (payload == "?") {  // RESP3 streamed string: ";n" chunks up to ";0"
    if (type != Type::BulkString || request) return fail("streamed string not allowed here");
    if (slot) slot->length = -1;
    in_streamed_string_ = true;
    return true;
  }
  if (payload == "-1") {  // RESP2 null bulk string
    if (type != Type::BulkString || request) return fail("null string not allowed here");
    if (slot) slot->null = true;
    sink_ = Sink::None;
    value_done(false);
    return true;
  }
  const auto length = parse_length(payload, limits_.max_bulk);
  if (!length) return fail("bad bulk length");
  if (slot) slot->length = *length;
  body_length_ = static_cast<uint64_t>(*length);
  body_left_ = body_length_ + 2;
  state_ = State::Body;
  return true;
}

bool Framer::chunk_header(std::string_view payload) {
  const auto length = parse_length(payload, limits_.max_bulk);
  if (!length) return fail("bad chunk length");
  if (*length == 0) {
    in_streamed_string_ = false;
    sink_ = Sink::None;
    value_done(false);
    return true;
  }
  body_length_ = static_cast<uint64_t>(*length);
  body_left_ = body_length_ + 2;
  state_ = State::Body;
  return true;
}

bool Framer::begin_aggregate(Type type, std::string_view payload) {
  const bool streamable = type == Type::Array || type == Type::Map || type == Type::Set;
  Element* slot = type == Type::Attribute ? nullptr : summary_slot(type);
  const bool too_deep = open_.size() >= limits_.max_depth;
  if (payload == "?") {  // RESP3 streamed aggregate, ended by '.'
    if (!streamable || role_ == Role::Request) return fail("streamed aggregate not allowed here");
    if (too_deep) return fail("aggregates nested too deep");
    if (slot) slot->length = -1;
    open_.push_back({type, -1, 0});
    return true;
  }
  if (payload == "-1") {  // RESP2 null array; Redis reads "*-1" from a client as nothing
    if (type != Type::Array) return fail("null aggregate not allowed here");
    if (slot) slot->null = true;
    value_done(false);
    return true;
  }
  const auto count = parse_length(payload, limits_.max_elements);
  if (!count) return fail("bad aggregate count");
  if (slot) slot->length = *count;
  if (role_ == Role::Request) request_elements_ = *count;
  const bool attribute = type == Type::Attribute;
  if (attribute && open_.empty() && role_ == Role::Reply) reply_.has_attributes = true;
  const bool pairs = type == Type::Map || attribute;
  const int64_t elements = pairs ? *count * 2 : *count;
  if (elements == 0) {
    value_done(attribute);
    return true;
  }
  if (too_deep) return fail("aggregates nested too deep");
  open_.push_back({type, elements, 0});
  if (attribute) ++attribute_depth_;
  return true;
}

bool Framer::end_streamed_aggregate(std::string_view payload) {
  if (!payload.empty() || open_.empty() || open_.back().remaining >= 0) {
    return fail("'.' outside a streamed aggregate");
  }
  open_.pop_back();
  value_done(false);
  return true;
}

bool Framer::inline_command(std::string_view line) {
  request_.inline_form = true;
  std::string word;
  size_t i = 0;
  for (;;) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) break;
    if (!next_inline_word(line, i, word)) return fail("unbalanced quotes in inline command");
    note_request_element(static_cast<size_t>(request_elements_++));
    keep(word);
    sink_ = Sink::None;
  }
  value_done(false);
  return true;
}

void Framer::body_done() {
  state_ = State::Line;
  if (in_streamed_string_) return;  // the next chunk goes on into the same summary
  sink_ = Sink::None;
  value_done(false);
}

void Framer::value_done(bool attribute) {
  while (!open_.empty()) {
    if (attribute) return;  // an attribute is not an element of what contains it
    Open& top = open_.back();
    ++top.index;
    if (top.remaining < 0 || --top.remaining > 0) return;
    attribute = top.type == Type::Attribute;
    if (attribute) --attribute_depth_;
    open_.pop_back();
  }
  if (attribute) return;  // attributes before a reply are part of it: the reply follows
  state_ = State::Done;
  complete_ = true;
  if (role_ == Role::Request) finish_request();
}

// Replies summarise the top value and the first elements of a top aggregate; nothing inside an
// attribute. Request elements go through note_request_element() instead.
Element* Framer::summary_slot(Type type) {
  sink_ = Sink::None;
  if (role_ != Role::Reply || attribute_depth_ > 0) return nullptr;
  Element* slot = nullptr;
  if (open_.empty()) {
    slot = &reply_.value;
  } else if (open_.size() == 1 && reply_.head.size() < kReplyHeadElements &&
             static_cast<size_t>(open_.front().index) == reply_.head.size()) {
    slot = &reply_.head.emplace_back();
  }
  if (slot == nullptr) return nullptr;
  slot->type = type;
  const bool body =
      type == Type::BulkString || type == Type::BlobError || type == Type::VerbatimString;
  if (body) sink_ = open_.empty() ? Sink::Value : Sink::Head;
  return slot;
}

void Framer::note_request_element(size_t index) {
  sink_ = Sink::None;
  if (index == 0) {
    sink_ = Sink::Command;
    return;
  }
  if (index == 1) {
    upper_case(request_.command);
    has_subcommand_ = has_subcommands(request_.command);
    if (has_subcommand_) {
      sink_ = Sink::Subcommand;
      return;
    }
  }
  if (request_.args.size() < limits_.kept_args) {
    request_.args.emplace_back();
    sink_ = Sink::Arg;
  }
}

void Framer::finish_request() {
  upper_case(request_.command);
  upper_case(request_.subcommand);
  const int64_t named = std::min<int64_t>(request_elements_, has_subcommand_ ? 2 : 1);
  request_.arg_count = static_cast<uint64_t>(request_elements_ - named);
}

void Framer::keep(std::string_view bytes) {
  switch (sink_) {
    case Sink::None:
      return;
    case Sink::Command:
      return append_bounded(request_.command, request_.name_truncated, bytes, kMaxCommandName);
    case Sink::Subcommand:
      return append_bounded(request_.subcommand, request_.name_truncated, bytes, kMaxCommandName);
    case Sink::Arg: {
      Argument& arg = request_.args.back();
      return append_bounded(arg.value, arg.truncated, bytes, limits_.kept_arg_bytes);
    }
    case Sink::Value:
      return append_bounded(reply_.value.text, reply_.value.truncated, bytes,
                            limits_.kept_text_bytes);
    case Sink::Head: {
      Element& element = reply_.head.back();
      return append_bounded(element.text, element.truncated, bytes, limits_.kept_text_bytes);
    }
  }
}

// Bytes of the value being read were not captured: its kept text is not all of it.
void Framer::keep_cut() {
  switch (sink_) {
    case Sink::Command:
    case Sink::Subcommand:
      request_.name_truncated = true;
      break;
    case Sink::Arg:
      request_.args.back().truncated = true;
      break;
    case Sink::Value:
      reply_.value.truncated = true;
      break;
    case Sink::Head:
      reply_.head.back().truncated = true;
      break;
    case Sink::None:
      break;
  }
}

bool Framer::fail(const char* why) {
  state_ = State::Failed;
  error_ = why;
  return false;
}

FrameResult Framer::need_more(size_t consumed) const {
  FrameResult r = result(Status::NeedMore, consumed);
  if (state_ == State::Body) r.skippable = body_left_;
  r.needed = state_ == State::Body ? body_left_ : 1;
  return r;
}

FrameResult Framer::result(Status status, size_t consumed) const {
  FrameResult r;
  r.status = status;
  r.consumed = consumed;
  if (status == Status::Invalid) r.error = error_;
  return r;
}

FrameResult frame_message(std::span<const uint8_t> bytes, Role role, const Limits& limits) {
  Framer framer(role, limits);
  return framer.feed(bytes);
}

}  // namespace weft::protocols::redis
