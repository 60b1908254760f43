// Where MySQL bytes begin. A server greeting (protocol 10, a printable version string) or a
// HandshakeResponse (capabilities with CLIENT_PROTOCOL_41 and 19 zero filler bytes; the TLS
// plaintext of a connection starts with it, sequence id 2) decides at
// once. In the middle of a connection (a pooled connection opened before weft), packet framing
// says it: a client packet of sequence id 0 whose first byte is a known command of a plausible
// length, or a server packet of sequence id 1 that starts an answer. Three length bytes and a
// sequence id are what many binary protocols could have, so such a match is weak unless it holds
// SQL text (a COM_QUERY or COM_STMT_PREPARE starting with an SQL keyword), an ERR packet with
// its '#' SQLSTATE marker, or a result set whose first column definition follows ("\x03def").
// The handler confirms a weak match only when an answer of sequence id 1 follows a command.
#include <algorithm>
#include <cctype>

#include "protocols/mysql/mysql.h"
#include "protocols/mysql/wire.h"
#include "protocols/sql/sql_text.h"

namespace weft::protocols::mysql {
namespace {

uint64_t length_at(std::span<const uint8_t> b, size_t at) {
  return uint64_t{b[at]} | (uint64_t{b[at + 1]} << 8) | (uint64_t{b[at + 2]} << 16);
}

std::string_view view(std::span<const uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool printable(uint8_t c) {
  return c >= 0x20 && c < 0x7f;
}

// The bytes after a whole packet: nothing, or the header of a next command.
bool chained(std::span<const uint8_t> b, uint64_t end) {
  if (end >= b.size()) return true;
  if (b.size() - end < 5) return false;
  uint64_t len = length_at(b, end);
  std::string_view head = view(b.subspan(end + 4, std::min<size_t>(b.size() - end - 4, 64)));
  return b[end + 3] == 0 && plausible_command(head, len, head.size() == len);
}

DetectResult greeting(std::span<const uint8_t> payload, uint64_t length) {
  if (length < 30 || length > 1024) return {Detection::No};
  for (size_t i = 1; i < payload.size() && i < 80; ++i) {
    if (payload[i] == 0)
      return i > 1 ? DetectResult{Detection::Responses, Confidence::Strong}
                   : DetectResult{Detection::No};
    if (!printable(payload[i])) return {Detection::No};
  }
  return {payload.size() < 80 ? Detection::NeedMore : Detection::No};
}

DetectResult handshake_response(std::span<const uint8_t> payload, uint64_t length) {
  if (length < 32 || length > 65535) return {Detection::No};
  if (payload.size() < 32) return {Detection::NeedMore};
  uint32_t caps = uint32_t{payload[0]} | (uint32_t{payload[1]} << 8);
  if (!(caps & kClientProtocol41)) return {Detection::No};
  // 23 filler bytes, zero but for MariaDB's extended capabilities in the last four.
  for (size_t i = 9; i < 28; ++i)
    if (payload[i] != 0) return {Detection::No};
  return {Detection::Requests, Confidence::Strong};
}

DetectResult command(std::span<const uint8_t> b, std::span<const uint8_t> payload,
                     uint64_t length) {
  const bool whole = payload.size() >= length;
  const uint8_t c = payload[0];
  if (!command_name(c)) return {Detection::No};
  if (uint32_t fixed = fixed_length(c); fixed && length != fixed && c != kShutdown)
    return {Detection::No};
  // A statement may be longer than the capture: its first bytes say enough. Any other command
  // is short and written whole: a longer one is not believed before it is all here.
  const bool text = c == kQuery || c == kStmtPrepare;
  if (!whole && (text ? payload.size() < 17 : length <= 64)) return {Detection::NeedMore};
  if (!whole && !text) return {Detection::No};
  std::string_view head = view(payload.first(std::min<size_t>(payload.size(), 64)));
  if (!plausible_command(head, length, whole)) return {Detection::No};
  if (text) {
    std::string_view text =
        c == kQuery ? query_text(view(payload), std::nullopt) : view(payload).substr(1);
    if (text.empty() || !(printable(static_cast<uint8_t>(text[0])) || text[0] == '\n' ||
                          text[0] == '\t' || text[0] == '\r'))
      return {Detection::No};
    text = text.substr(0, 256);
    bool sql = !sql::read_facts(text, sql::Dialect::MySQL).operation.empty();
    return {Detection::Requests, sql ? Confidence::Strong : Confidence::Weak};
  }
  // Any other command: its packet whole, and nothing but another command after it.
  if (!whole || !chained(b, 4 + length)) return {Detection::No};
  if (c == kStmtExecute && length >= 10) {
    if (payload[5] > 0x0f) return {Detection::No};  // cursor flags
    if (payload[6] != 1 || payload[7] || payload[8] || payload[9]) return {Detection::No};
  }
  if (c == kInitDb || c == kCreateDb || c == kDropDb || c == kFieldList)
    for (size_t i = 1; i < head.size(); ++i)
      if (payload[i] != 0 && !printable(payload[i]) && payload[i] < 0x80) return {Detection::No};
  return {Detection::Requests, Confidence::Weak};
}

// A server packet of sequence id 1: the first of an answer.
DetectResult answer(std::span<const uint8_t> b, std::span<const uint8_t> payload, uint64_t length) {
  if (payload.empty()) return {Detection::NeedMore};
  const uint8_t h = payload[0];
  if (h == 0xff) {  // ERR: code, '#', SQLSTATE, message
    if (length < 9 || length > 4096) return {Detection::No};
    if (payload.size() < 9) return {Detection::NeedMore};
    if (payload[3] != '#') return {Detection::No};
    for (size_t i = 4; i < 9; ++i)
      if (!std::isalnum(payload[i])) return {Detection::No};
    return {Detection::Responses, Confidence::Strong};
  }
  if (h == 0x00) {  // OK: short, whole, alone or followed by nothing
    if (length < 7 || length > 1024) return {Detection::No};
    if (payload.size() < length) return {Detection::NeedMore};
    if (b.size() != 4 + length) return {Detection::No};
    return {Detection::Responses, Confidence::Weak};
  }
  if (h >= 1 && h < 0xfb && (length == 1 || length == 2)) {  // a column count
    size_t next = 4 + length;
    if (b.size() < next + 8) return {Detection::NeedMore};
    if (b[next + 3] != 2) return {Detection::No};
    if (view(b.subspan(next + 4, 4)) != std::string_view("\x03"
                                                         "def",
                                                         4))
      return {Detection::No};
    return {Detection::Responses, Confidence::Strong};
  }
  return {Detection::No};
}

}  // namespace

DetectResult detect(std::span<const uint8_t> bytes) {
  if (bytes.size() < 5) {
    // A sequence id that starts nothing is known with four bytes.
    if (bytes.size() == 4 && bytes[3] > 2) return {Detection::No};
    // Text (line ends, letters) is no length: a packet that long would start a long statement,
    // whose header and first bytes come in one write.
    bool text = bytes.size() >= 2;
    for (size_t i = 0; i < bytes.size() && i < 3; ++i)
      text = text && (printable(bytes[i]) || (bytes[i] >= 0x09 && bytes[i] <= 0x0d));
    return {text ? Detection::No : Detection::NeedMore};
  }
  const uint64_t length = length_at(bytes, 0);
  const uint8_t seq = bytes[3];
  if (length == 0) return {Detection::No};
  std::span<const uint8_t> payload = bytes.subspan(4, std::min<size_t>(bytes.size() - 4, length));
  if (seq == 0) {
    if (payload[0] == 0x0a && length > 1) return greeting(payload, length);
    return command(bytes, payload, length);
  }
  if (seq == 1 || seq == 2) {
    DetectResult r = handshake_response(payload, length);
    if (r.detection != Detection::No || seq == 2) return r;
    return answer(bytes, payload, length);
  }
  return {Detection::No};
}

}  // namespace weft::protocols::mysql
