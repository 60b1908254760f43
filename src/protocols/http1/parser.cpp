#include "protocols/http1/parser.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "stream/message_framing.h"

namespace weft::protocols::http1 {
namespace {

// Headers later stages use. Credentials (Authorization, Cookie) are deliberately absent.
constexpr std::string_view kKeptHeaders[] = {
    "host",       "user-agent",   "content-type", "content-length",    "transfer-encoding",
    "connection", "upgrade",      "expect",       "traceparent",       "tracestate",
    "b3",         "x-b3-traceid", "x-b3-spanid",  "x-b3-parentspanid", "x-b3-sampled",
    "x-b3-flags", "uber-trace-id"};

// Methods accepted when hunting for a message start after garbage: a looser rule would find
// "requests" inside bodies.
constexpr std::string_view kKnownMethods[] = {"GET",       "HEAD",    "POST",   "PUT",   "DELETE",
                                              "CONNECT",   "OPTIONS", "TRACE",  "PATCH", "PROPFIND",
                                              "PROPPATCH", "MKCOL",   "COPY",   "MOVE",  "LOCK",
                                              "UNLOCK",    "REPORT",  "SEARCH", "PURGE"};

constexpr size_t kMaxMethodLength = 20;
constexpr size_t kUsualKeptHeaders = 6;
constexpr size_t kMaxChunkSizeLine = 1024;
constexpr size_t kMaxStartLineWait = 16 * 1024;

std::string_view as_text(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || c == '-' || c == '_';
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r'))
    v.remove_suffix(1);
  return v;
}

// ASCII only, as header names are (RFC 9110 tokens): std::tolower asks the locale per byte.
char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c;
}

std::string lowercase(std::string_view v) {
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(), ascii_lower);
  return out;
}

// Longer header names are none weft keeps: they are skipped without a look at their bytes.
constexpr size_t kLongestUsefulName = 20;

// The kept names by length: a header's length picks the few names it could be (most of a
// message's headers have a length no kept name has, or differ from them in the first byte).
struct KeptNamesOfLength {
  std::array<std::string_view, 4> names{};
  size_t count = 0;
};

constexpr std::array<KeptNamesOfLength, kLongestUsefulName + 1> kept_by_length() {
  std::array<KeptNamesOfLength, kLongestUsefulName + 1> table{};
  for (std::string_view name : kKeptHeaders) {
    if (name.size() > kLongestUsefulName) throw "a kept header name longer than kLongestUsefulName";
    KeptNamesOfLength& same = table[name.size()];
    if (same.count == same.names.size()) throw "more kept names of one length than room for them";
    same.names[same.count++] = name;
  }
  return table;
}
constexpr auto kKeptByLength = kept_by_length();

// Whether `raw` is `lower` in any case (ASCII, as header names are: RFC 9110 tokens).
bool equal_ignoring_case(std::string_view raw, std::string_view lower) {
  for (size_t i = 0; i < raw.size(); ++i)
    if (ascii_lower(raw[i]) != lower[i]) return false;
  return true;
}

// The kept header a name on the wire is, as kKeptHeaders spells it (lowercase), or empty.
std::string_view kept_name(std::string_view raw) {
  if (raw.size() > kLongestUsefulName) return {};
  const KeptNamesOfLength& same = kKeptByLength[raw.size()];
  for (size_t i = 0; i < same.count; ++i)
    if (equal_ignoring_case(raw, same.names[i])) return same.names[i];
  return {};
}

// Could these first bytes begin a message of this kind? Catches garbage without waiting for a
// whole header section.
bool plausible_prefix(std::string_view text, MessageKind kind) {
  if (kind == MessageKind::Response) {
    constexpr std::string_view kPrefix = "HTTP/1.";
    size_t n = std::min(text.size(), kPrefix.size());
    return text.substr(0, n) == kPrefix.substr(0, n);
  }
  for (size_t i = 0; i < text.size() && i <= kMaxMethodLength; ++i) {
    if (text[i] == ' ') return i > 0;
    if (!is_token_char(text[i])) return false;
  }
  return text.size() <= kMaxMethodLength;
}

bool parse_decimal(std::string_view v, uint64_t& out) {
  v = trim(v);
  if (v.empty()) return false;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && end == v.data() + v.size();
}

bool parse_hex(std::string_view v, uint64_t& out) {
  v = trim(v.substr(0, v.find(';')));
  if (v.empty() || v.size() > 15) return false;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, 16);
  return ec == std::errc() && end == v.data() + v.size();
}

bool contains_token(std::string_view value, std::string_view token) {
  return lowercase(value).find(token) != std::string::npos;
}

}  // namespace

bool valid_start_line(std::string_view line, MessageKind kind, bool strict_method) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (kind == MessageKind::Response) {
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ')
      return false;
    for (size_t i = 9; i < 12; ++i)
      if (line[i] < '0' || line[i] > '9') return false;
    return line.size() == 12 || line[12] == ' ';
  }
  size_t sp1 = line.find(' ');
  if (sp1 == 0 || sp1 == std::string_view::npos || sp1 > kMaxMethodLength) return false;
  std::string_view method = line.substr(0, sp1);
  if (!std::all_of(method.begin(), method.end(), is_token_char)) return false;
  if (strict_method && std::find(std::begin(kKnownMethods), std::end(kKnownMethods), method) ==
                           std::end(kKnownMethods))
    return false;
  size_t sp2 = line.rfind(' ');
  if (sp2 == sp1) return false;
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (target.empty() || (version != "HTTP/1.1" && version != "HTTP/1.0")) return false;
  return std::none_of(target.begin(), target.end(),
                      [](char c) { return c == ' ' || static_cast<unsigned char>(c) < 0x21; });
}

void MessageParser::parse(stream::DataStream& s, const ParserCallbacks& cb) {
  while (step(s, cb)) {
  }
}

bool MessageParser::step(stream::DataStream& s, const ParserCallbacks& cb) {
  switch (state_) {
    case State::Start:
      return parse_head(s, cb);
    case State::Body:
    case State::ChunkData:
      return skip_body(s, cb);
    case State::ChunkSize:
    case State::ChunkEnd:
    case State::Trailers:
      return chunk_step(s, cb);
    case State::UntilClose:
    case State::FramingLost:
    case State::Resync:
      return resync(s, cb);
    case State::Stopped:
      // The bytes are another protocol's from here: left where they are for the one the
      // connection is handed on to (an Upgrade), or dropped with the streams when none is.
      return false;
  }
  return false;
}

void MessageParser::absorb(stream::DataStream& s, uint64_t n, bool body) {
  s.consume(n);
  if (!have_open_) return;
  open_.timing.wire_bytes += n;
  if (body) open_.timing.body_bytes += n;
}

void MessageParser::parse_error(stream::DataStream& s) {
  ++counters_.parse_errors;
  ++counters_.resyncs;
  have_open_ = false;
  state_ = State::Resync;
  // Step past the offending line so the hunt for the next message starts after it.
  std::string_view text = as_text(s.readable());
  size_t nl = text.find('\n');
  s.consume(nl == std::string_view::npos ? text.size() : nl + 1);
}

namespace {

// The request or status line, already validated, into `m`.
void read_start_line(std::string_view start, Message& m) {
  if (m.kind == MessageKind::Request) {
    size_t sp1 = start.find(' ');
    size_t sp2 = start.rfind(' ');
    m.method = start.substr(0, sp1);
    m.target = start.substr(sp1 + 1, sp2 - sp1 - 1);
    m.version = start.substr(sp2 + 6);
  } else {
    m.version = start.substr(5, 3);
    m.status = (start[9] - '0') * 100 + (start[10] - '0') * 10 + (start[11] - '0');
  }
}

// One header line (CR and LF removed) into `m`. `last_kept`: the value an obsolete folded line
// continues, null when the previous header was not kept. Returns false for a bad length.
bool read_header_line(std::string_view line, Message& m, std::string*& last_kept) {
  if (line.front() == ' ' || line.front() == '\t') {  // obsolete line folding
    if (last_kept) last_kept->append(" ").append(trim(line));
    return true;
  }
  last_kept = nullptr;
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return true;  // tolerated, ignored
  // Every header weft reads is kept (content-length and transfer-encoding too): the others,
  // most of a message's headers, cost only a look at their name.
  std::string_view name = kept_name(trim(line.substr(0, colon)));
  if (name.empty()) return true;
  std::string_view value = trim(line.substr(colon + 1));
  bool good = true;
  if (name == "content-length") {
    uint64_t length = 0;
    good = parse_decimal(value, length) && (!m.content_length || *m.content_length == length);
    m.content_length = length;
  } else if (name == "transfer-encoding" && contains_token(value, "chunked")) {
    m.chunked = true;
  }
  m.headers.emplace_back(std::string(name), std::string(value));
  last_kept = &m.headers.back().second;
  return good;
}

}  // namespace

bool MessageParser::parse_head(stream::DataStream& s, const ParserCallbacks& cb) {
  std::string_view text = as_text(s.readable());
  if (text.empty()) {
    uint64_t gap = stream::skip_unseen(s);
    if (gap == 0) return false;
    // Unknown bytes where a message should start: whatever follows may be mid-message.
    counters_.skipped_bytes += gap;
    ++counters_.resyncs;
    state_ = State::Resync;
    return true;
  }
  // RFC 9112 2.2: an empty line before a request line is tolerated (old clients add one).
  if (text.front() == '\n' || text.starts_with("\r\n")) {
    s.consume(text.front() == '\n' ? 1 : 2);
    return true;
  }
  if (!plausible_prefix(text, kind_)) {
    parse_error(s);
    return true;
  }
  size_t eol = text.find('\n');
  if (eol == std::string_view::npos) {
    if (waits_for_rest(s, text)) return false;
    parse_error(s);
    return true;
  }
  if (!valid_start_line(text.substr(0, eol), kind_, false)) {
    parse_error(s);
    return true;
  }
  Message m;
  m.kind = kind_;
  // Room for the kept headers a message usually has: growing 1, 2, 4 moved every string.
  m.headers.reserve(kUsualKeptHeaders);
  read_start_line(trim(text.substr(0, eol)), m);

  // One pass over the header lines finds the end of the head too: the head is parsed as it
  // arrives, and thrown away in the rare case that its end has not arrived yet.
  size_t limit = std::min(text.size(), kMaxHeaderBytes);
  size_t head_len = std::string_view::npos;
  bool bad_length = false;
  std::string* last_kept = nullptr;
  for (size_t pos = eol + 1; pos < limit;) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos || end >= limit) break;  // a cut line of a truncated head
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line == "\r") {  // the empty line that ends the head
      head_len = pos;
      break;
    }
    if (!read_header_line(line, m, last_kept)) bad_length = true;
  }
  bool truncated = head_len == std::string_view::npos;
  if (truncated) {
    if (waits_for_rest(s, text)) return false;
    if (text.size() >= kMaxHeaderBytes) {
      parse_error(s);
      return true;
    }
    // The header section runs past the capture limit: keep what was captured.
    head_len = text.size();
  }
  if (bad_length) {
    parse_error(s);
    return true;
  }

  m.timing = stream::begin_message(s);
  m.timing.truncated = truncated;
  if (truncated) ++counters_.truncated_messages;
  open_ = std::move(m);
  have_open_ = true;
  absorb(s, head_len, false);
  if (cb.head) cb.head(open_);
  if (truncated) {
    state_ = State::FramingLost;  // the body starts somewhere in bytes weft never saw
    return true;
  }
  begin_body(s, cb);
  return true;
}

// No end of the head among the readable bytes, and the rest can still come: neither cut by
// the capture limit nor lost, and the head is not already longer than any weft accepts.
bool MessageParser::waits_for_rest(const stream::DataStream& s, std::string_view text) const {
  return text.size() < kMaxHeaderBytes && !head_cut_ && s.missing_after_readable() == 0;
}

void MessageParser::begin_body(stream::DataStream& s, const ParserCallbacks& cb) {
  bool stop_after = false;
  bool no_body = false;
  if (kind_ == MessageKind::Response) {
    std::string_view method = cb.request_method ? cb.request_method() : std::string_view();
    int status = open_.status;
    no_body = method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304;
    stop_after = status == 101 || (method == "CONNECT" && status >= 200 && status < 300);
    if (!no_body && !stop_after && !open_.chunked && !open_.content_length) {
      state_ = State::UntilClose;
      return;
    }
  } else {
    no_body = !open_.chunked && !open_.content_length;
  }
  if (stop_after || no_body || (!open_.chunked && *open_.content_length == 0)) {
    complete(s, cb);
    if (stop_after) state_ = State::Stopped;
    return;
  }
  if (open_.chunked) {
    state_ = State::ChunkSize;
  } else {
    remaining_ = *open_.content_length;
    state_ = State::Body;
  }
}

void MessageParser::complete(stream::DataStream& s, const ParserCallbacks& cb) {
  stream::end_message(open_.timing, s);
  have_open_ = false;
  state_ = State::Start;
  ++counters_.messages;
  if (cb.complete) cb.complete(std::move(open_));
}

bool MessageParser::skip_body(stream::DataStream& s, const ParserCallbacks& cb) {
  std::span<const uint8_t> r = s.readable();
  uint64_t n = 0;
  if (!r.empty()) {
    n = std::min<uint64_t>(remaining_, r.size());
  } else {
    n = std::min(remaining_, s.skippable());
    counters_.skipped_bytes += n;
  }
  if (n == 0) return false;
  absorb(s, n, true);
  remaining_ -= n;
  if (remaining_ > 0) return true;
  if (state_ == State::ChunkData) {
    state_ = State::ChunkEnd;
  } else {
    complete(s, cb);
  }
  return true;
}

uint64_t MessageParser::skipped_until(const stream::DataStream& s) const {
  bool by_length = state_ == State::Body || state_ == State::ChunkData;
  return by_length && remaining_ > 0 ? s.head() + remaining_ : 0;
}

bool MessageParser::read_line(stream::DataStream& s, std::string_view& line, size_t& consumed) {
  std::string_view text = as_text(s.readable());
  size_t nl = text.find('\n');
  if (nl == std::string_view::npos) return false;
  line = trim(text.substr(0, nl));
  consumed = nl + 1;
  return true;
}

bool MessageParser::chunk_step(stream::DataStream& s, const ParserCallbacks& cb) {
  std::string_view line;
  size_t consumed = 0;
  if (!read_line(s, line, consumed)) {
    // Chunk framing needs the bytes themselves: once they are missing, the end of this
    // message can only be found by finding the next one.
    bool lost = s.readable().empty()
                    ? s.skippable() > 0
                    : (s.readable().size() > kMaxChunkSizeLine || s.missing_after_readable() > 0);
    if (lost) state_ = State::FramingLost;
    return lost;
  }
  if (state_ == State::ChunkSize) {
    uint64_t size = 0;
    if (!parse_hex(line, size)) {
      ++counters_.parse_errors;
      state_ = State::FramingLost;
      return true;
    }
    absorb(s, consumed, true);
    if (size == 0) {
      state_ = State::Trailers;
    } else {
      remaining_ = size;
      state_ = State::ChunkData;
    }
    return true;
  }
  absorb(s, consumed, true);
  if (state_ == State::ChunkEnd) {
    state_ = State::ChunkSize;
  } else if (line.empty()) {  // end of trailers
    complete(s, cb);
  }
  return true;
}

// UntilClose, FramingLost and Resync all read ahead looking for the next message start; the
// first two count what they pass as the open message's body, Resync discards it.
bool MessageParser::resync(stream::DataStream& s, const ParserCallbacks& cb) {
  std::string_view text = as_text(s.readable());
  bool keep = state_ != State::Resync;
  // After a head cut by the capture limit, what follows is the rest of the head and maybe a
  // body: it counts as the message's bytes on the wire, not as its body.
  bool body = keep && !(have_open_ && open_.timing.truncated);
  if (text.empty()) {
    uint64_t gap = s.skippable();
    if (gap == 0) return false;
    counters_.skipped_bytes += gap;
    absorb(s, gap, body);
    return true;
  }
  if (state_ == State::UntilClose) {  // nothing but the end of the connection ends it
    absorb(s, text.size(), true);
    return true;
  }
  // Candidates: the head (often a syscall boundary), every line start, and every syscall
  // boundary inside a line (a message whose body has no line end, "hello", is followed by the
  // next one in the same line).
  for (size_t at = 0; at < text.size();) {
    size_t eol = text.find('\n', at);
    if (size_t b = s.next_syscall_start(s.head() + at) - s.head(); b < std::min(eol, text.size())) {
      size_t b_eol = text.find('\n', b);
      if (b_eol != std::string_view::npos &&
          valid_start_line(text.substr(b, b_eol - b), kind_, true)) {
        eol = b_eol;
        at = b;
      }
    }
    if (eol == std::string_view::npos) {
      // An incomplete line: it might become a start line, unless it never can.
      bool hopeless = text.size() - at > kMaxStartLineWait || s.missing_after_readable() > 0 ||
                      !plausible_prefix(text.substr(at), kind_);
      absorb(s, hopeless ? text.size() : at, body);
      return hopeless && !text.empty();
    }
    if (valid_start_line(text.substr(at, eol - at), kind_, true)) {
      absorb(s, at, body);
      if (have_open_) {
        open_.end_inferred = true;
        complete(s, cb);
      }
      state_ = State::Start;
      return true;
    }
    at = eol + 1;
  }
  absorb(s, text.size(), body);
  return true;
}

void MessageParser::progress(MessageTiming& timing, const stream::DataStream& s) const {
  if (have_open_ && open_.timing.stream_pos == timing.stream_pos) {
    timing.wire_bytes = open_.timing.wire_bytes;
    timing.body_bytes = open_.timing.body_bytes;
  }
  stream::end_message(timing, s);
}

void MessageParser::end_partial_head(stream::DataStream& s, const ParserCallbacks& cb) {
  if (state_ != State::Start || s.readable().empty()) return;
  head_cut_ = true;
  step(s, cb);
  head_cut_ = false;
  parse(s, cb);
}

void MessageParser::finish(stream::DataStream& s, const ParserCallbacks& cb) {
  s.settle();
  parse(s, cb);
  if (have_open_ && (state_ == State::UntilClose || state_ == State::FramingLost)) {
    open_.end_inferred = true;
    complete(s, cb);
  }
  have_open_ = false;
}

}  // namespace weft::protocols::http1
