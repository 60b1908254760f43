// Where PostgreSQL bytes begin: the startup family (a length and a protocol or SSL code, at a
// connection's start) decides at once; in the middle of a connection, a run of well-formed
// messages (known type bytes of one side, sane lengths, the fixed lengths and terminators the
// protocol defines) says which side wrote them. A type byte and a length is what other binary
// protocols have too, so such a run is a weak match, unless it holds a Query or Parse whose
// text starts with an SQL keyword.
#include "protocols/postgres/postgres.h"
#include "protocols/postgres/wire.h"
#include "protocols/sql/sql_text.h"

namespace weft::protocols::postgres {
namespace {

// Messages looked at; lengths beyond this are not believed while detecting.
constexpr int kMaxMessagesLooked = 64;
constexpr uint32_t kMaxDetectLength = 1u << 24;

// A body this side's message of `type` may have (only what is fully present is checked).
bool plausible_body(uint8_t type, uint32_t length, std::span<const uint8_t> body, bool frontend) {
  const bool whole = body.size() + 4 >= length;
  auto ends_with_nul = [&] { return !whole || (!body.empty() && body.back() == 0); };
  if (frontend) {
    switch (type) {
      case 'S':  // Sync
      case 'H':  // Flush
      case 'X':  // Terminate
      case 'c':  // CopyDone
        return length == 4;
      case 'Q':
      case 'C':
      case 'f':
        return length > 4 && ends_with_nul();
      case 'D':
        return length > 5 && ends_with_nul() && (body.empty() || body[0] == 'S' || body[0] == 'P');
      default:
        return length >= 4;
    }
  }
  switch (type) {
    case 'Z':
      return length == 5 && (body.empty() || body[0] == 'I' || body[0] == 'T' || body[0] == 'E');
    case '1':
    case '2':
    case '3':
    case 'n':
    case 'I':
    case 's':
    case 'c':
      return length == 4;
    case 'K':
      return length == 12;
    case 'C':
    case 'S':
    case 'E':
    case 'N':
      return length > 5 && ends_with_nul();
    default:
      return length >= 4;
  }
}

// The statement of a whole Query or Parse starts with an SQL keyword.
bool sql_text(uint8_t type, std::span<const uint8_t> body) {
  std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
  size_t at = 0;
  if (type == 'P')
    read_cstring(text, at);  // the statement name
  else if (type != 'Q')
    return false;
  std::string_view statement = read_cstring(text, at);
  return !sql::read_facts(statement.substr(0, 256), sql::Dialect::PostgreSQL).operation.empty();
}

// Whether the bytes are a run of this side's messages: Requests (yes), No or NeedMore.
Detection run_of(std::span<const uint8_t> bytes, bool frontend, bool& sure, bool& distinctive) {
  size_t at = 0;
  int seen = 0;
  while (at < bytes.size() && seen < kMaxMessagesLooked) {
    uint8_t type = bytes[at];
    if (!(frontend ? frontend_type(type) : backend_type(type))) return Detection::No;
    if (bytes.size() - at < 5) break;
    uint32_t length = read_be32(bytes.subspan(at + 1));
    if (length < 4 || length > kMaxDetectLength) return Detection::No;
    std::span<const uint8_t> body = bytes.subspan(at + 5);
    if (body.size() > length - 4) body = body.first(length - 4);
    if (!plausible_body(type, length, body, frontend)) return Detection::No;
    if (frontend ? !backend_type(type) : !frontend_type(type)) distinctive = true;
    if (frontend && body.size() + 4 == length && sql_text(type, body)) sure = true;
    at += 1 + static_cast<size_t>(length);
    ++seen;
  }
  if (seen == 0) return Detection::NeedMore;
  return Detection::Requests;
}

}  // namespace

DetectResult detect(std::span<const uint8_t> bytes) {
  if (bytes.empty()) return {Detection::NeedMore};
  if (bytes[0] == 0) {
    if (bytes.size() < 8) return {Detection::NeedMore};
    uint32_t length = read_be32(bytes);
    uint32_t code = read_be32(bytes.subspan(4));
    bool request_code = code == kSslRequest || code == kGssEncRequest || code == kCancelRequest;
    if ((request_code && (length == 8 || (code == kCancelRequest && length == 16))) ||
        (startup_code(code) && !request_code && length > 8 && length <= 10000))
      return {Detection::Requests, Confidence::Strong};
    return {Detection::No};
  }
  for (bool frontend : {true, false}) {
    bool sure = false;
    bool distinctive = false;
    Detection d = run_of(bytes, frontend, sure, distinctive);
    if (d == Detection::NeedMore) return {d};
    if (d != Detection::Requests) continue;
    // Only messages both sides send (Describe/DataRow, Execute/Error...): wait for a
    // distinctive one at a later boundary.
    if (!distinctive) continue;
    return {frontend ? Detection::Requests : Detection::Responses,
            sure ? Confidence::Strong : Confidence::Weak};
  }
  return {Detection::No};
}

}  // namespace weft::protocols::postgres
