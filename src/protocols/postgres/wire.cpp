#include "protocols/postgres/wire.h"

#include <algorithm>

#include "stream/message_framing.h"

namespace weft::protocols::postgres {

bool frontend_type(uint8_t t) {
  static constexpr std::string_view kTypes = "QPBDESHCXdcfFp";
  return t != 0 && kTypes.find(static_cast<char>(t)) != std::string_view::npos;
}

bool backend_type(uint8_t t) {
  static constexpr std::string_view kTypes = "RKSZTDCEINA123ntsGHWdcVv";
  return t != 0 && kTypes.find(static_cast<char>(t)) != std::string_view::npos;
}

bool startup_code(uint32_t code) {
  return code == kProtocol3 || code == kSslRequest || code == kGssEncRequest ||
         code == kCancelRequest || (code >> 16) == 3;
}

uint32_t read_be32(std::span<const uint8_t> b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

MessageReader::Step MessageReader::next(stream::DataStream& s) {
  for (;;) {
    if (in_body_) {
      Step step = pass_body(s);
      if (step != Step::Message || in_body_) return step;
      return Step::Message;
    }
    Step step = start_message(s);
    if (step != Step::Message) return step;
  }
}

// Reads a message's header and kept body bytes; the rest is passed over by pass_body().
MessageReader::Step MessageReader::start_message(stream::DataStream& s) {
  for (;;) {
    std::span<const uint8_t> r = s.readable();
    if (r.empty()) {
      uint64_t gap = stream::skip_unseen(s);
      if (gap == 0) return Step::Waiting;
      // Bytes never seen where a message should start: the next header is checked as usual.
      counters_.skipped_bytes += gap;
      ++counters_.resyncs;
      unseen_ += gap;
      continue;
    }
    if (ssl_answer_ && !frontend_) {
      ssl_answer_ = false;
      if (r[0] == 'S' || r[0] == 'N' || r[0] == 'G') {
        message_ = {};
        message_.type = r[0];
        message_.code = kSslRequest;
        message_.timing = stream::begin_message(s);
        s.consume(1);
        message_.timing.wire_bytes = 1;
        stream::end_message(message_.timing, s);
        ++counters_.messages;
        ++messages_;
        return Step::Message;
      }
    }
    // The startup family has no type byte: its first byte is the length's (always 0).
    const bool untyped = frontend_ && r[0] == 0;
    const size_t header = untyped ? 8 : 5;
    if (r.size() < header) {
      if (s.missing_after_readable() == 0) return Step::Waiting;
      ++counters_.truncated_messages;
      resync(s);
      continue;
    }
    uint32_t length = read_be32(r.subspan(untyped ? 0 : 1));
    uint32_t code = untyped ? read_be32(r.subspan(4)) : 0;
    bool valid = untyped ? (length >= 8 && length <= 10000 && startup_code(code))
                         : ((frontend_ ? frontend_type(r[0]) : backend_type(r[0])) && length >= 4 &&
                            length <= kMaxMessageLength);
    if (!valid) {
      ++counters_.parse_errors;
      resync(s);
      return Step::Error;
    }
    const uint32_t body = length - (untyped ? 8 : 4);
    const uint8_t type = untyped ? 0 : r[0];
    // DataRow values and CopyData are counted, never kept.
    const bool keep = !(type == 'd' || (type == 'D' && !frontend_));
    size_t kept = keep ? std::min<size_t>(body, kKeptBodyBytes) : 0;
    if (r.size() < header + kept) {
      if (s.missing_after_readable() == 0) return Step::Waiting;
      kept = r.size() - header;  // the body was not captured whole: keep what was
    }
    message_ = {};
    message_.type = type;
    message_.code = code;
    message_.body_length = body;
    message_.body_cut = kept < body && keep;
    message_.body.assign(reinterpret_cast<const char*>(r.data()) + header, kept);
    message_.timing = stream::begin_message(s);
    message_.timing.wire_bytes = length + (untyped ? 0 : 1);
    message_.timing.body_bytes = body;
    s.consume(header + kept);
    body_left_ = body - kept;
    in_body_ = true;
    return Step::Message;  // next() finishes it in pass_body()
  }
}

// Passes over the body's bytes beyond what was kept: readable ones, or holes by length.
MessageReader::Step MessageReader::pass_body(stream::DataStream& s) {
  while (body_left_ > 0) {
    std::span<const uint8_t> r = s.readable();
    uint64_t n = 0;
    if (!r.empty()) {
      n = std::min<uint64_t>(r.size(), body_left_);
    } else {
      n = std::min<uint64_t>(s.skippable(), body_left_);
      if (n == 0) return Step::Waiting;
      counters_.skipped_bytes += n;
    }
    s.consume(n);
    body_left_ -= n;
  }
  in_body_ = false;
  stream::end_message(message_.timing, s);
  ++counters_.messages;
  ++messages_;
  return Step::Message;
}

void MessageReader::resync(stream::DataStream& s) {
  ++counters_.resyncs;
  counters_.skipped_bytes += s.skip_to_next_boundary();
  in_body_ = false;
  body_left_ = 0;
}

std::string_view read_cstring(std::string_view body, size_t& at) {
  if (at >= body.size()) return {};
  size_t end = body.find('\0', at);
  if (end == std::string_view::npos) end = body.size();
  std::string_view out = body.substr(at, end - at);
  at = end + 1;
  return out;
}

ErrorFields read_error(std::string_view body) {
  ErrorFields out;
  std::string severity_localised;
  size_t at = 0;
  while (at < body.size() && body[at] != '\0') {
    char field = body[at++];
    std::string_view value = read_cstring(body, at);
    if (field == 'C') out.code = std::string(value.substr(0, 5));
    if (field == 'V') out.severity = std::string(value.substr(0, 16));
    if (field == 'S') severity_localised = std::string(value.substr(0, 16));
  }
  if (out.severity.empty()) out.severity = severity_localised;
  return out;
}

int64_t tag_rows(std::string_view tag) {
  size_t space = tag.rfind(' ');
  if (space == std::string_view::npos || space + 1 >= tag.size()) return -1;
  int64_t n = 0;
  for (char c : tag.substr(space + 1)) {
    if (c < '0' || c > '9' || n > (int64_t{1} << 56)) return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace weft::protocols::postgres
