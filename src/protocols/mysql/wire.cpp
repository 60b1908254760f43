#include "protocols/mysql/wire.h"

#include <algorithm>

#include "stream/message_framing.h"

namespace weft::protocols::mysql {

const char* command_name(uint8_t c) {
  switch (c) {
    case kSleep:
      return "COM_SLEEP";
    case kQuit:
      return "COM_QUIT";
    case kInitDb:
      return "COM_INIT_DB";
    case kQuery:
      return "COM_QUERY";
    case kFieldList:
      return "COM_FIELD_LIST";
    case kCreateDb:
      return "COM_CREATE_DB";
    case kDropDb:
      return "COM_DROP_DB";
    case kRefresh:
      return "COM_REFRESH";
    case kShutdown:
      return "COM_SHUTDOWN";
    case kStatistics:
      return "COM_STATISTICS";
    case kProcessInfo:
      return "COM_PROCESS_INFO";
    case kConnect:
      return "COM_CONNECT";
    case kProcessKill:
      return "COM_PROCESS_KILL";
    case kDebug:
      return "COM_DEBUG";
    case kPing:
      return "COM_PING";
    case kChangeUser:
      return "COM_CHANGE_USER";
    case kBinlogDump:
      return "COM_BINLOG_DUMP";
    case kRegisterSlave:
      return "COM_REGISTER_SLAVE";
    case kStmtPrepare:
      return "COM_STMT_PREPARE";
    case kStmtExecute:
      return "COM_STMT_EXECUTE";
    case kStmtSendLongData:
      return "COM_STMT_SEND_LONG_DATA";
    case kStmtClose:
      return "COM_STMT_CLOSE";
    case kStmtReset:
      return "COM_STMT_RESET";
    case kSetOption:
      return "COM_SET_OPTION";
    case kStmtFetch:
      return "COM_STMT_FETCH";
    case kResetConnection:
      return "COM_RESET_CONNECTION";
    case kStmtBulkExecute:
      return "COM_STMT_BULK_EXECUTE";
    default:
      return nullptr;
  }
}

uint32_t fixed_length(uint8_t c) {
  switch (c) {
    case kQuit:
    case kStatistics:
    case kProcessInfo:
    case kDebug:
    case kPing:
    case kResetConnection:
      return 1;
    case kRefresh:
      return 2;
    case kSetOption:
      return 3;
    case kProcessKill:
    case kStmtClose:
    case kStmtReset:
      return 5;
    case kStmtFetch:
      return 9;
    default:
      return 0;
  }
}

std::optional<uint64_t> read_int(std::string_view b, size_t& at, size_t bytes) {
  if (at > b.size() || b.size() - at < bytes) return std::nullopt;
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  at += bytes;
  return v;
}

std::optional<uint64_t> read_lenenc(std::string_view b, size_t& at) {
  if (at >= b.size()) return std::nullopt;
  uint8_t first = static_cast<uint8_t>(b[at]);
  if (first < 0xfb) {
    ++at;
    return first;
  }
  size_t bytes = first == 0xfc ? 2 : first == 0xfd ? 3 : first == 0xfe ? 8 : 0;
  if (bytes == 0) return std::nullopt;  // 0xfb (NULL) and 0xff are no integer
  size_t p = at + 1;
  auto v = read_int(b, p, bytes);
  if (v) at = p;
  return v;
}

std::string_view read_cstring(std::string_view b, size_t& at) {
  if (at >= b.size()) return {};
  size_t end = b.find('\0', at);
  if (end == std::string_view::npos) end = b.size();
  std::string_view out = b.substr(at, end - at);
  at = end + 1;
  return out;
}

PacketReader::Step PacketReader::next(stream::DataStream& s, const Expect& expect) {
  for (;;) {
    if (in_body_) return pass_body(s);
    Step step = start(s, expect);
    if (step != Step::Packet) return step;
  }
}

bool plausible_command(std::string_view head, uint64_t length, bool whole) {
  if (head.empty() || length == 0) return false;
  uint8_t c = static_cast<uint8_t>(head[0]);
  if (!command_name(c) || c == kSleep || c == kConnect) return false;
  if (uint32_t fixed = fixed_length(c)) return length == fixed || (c == kShutdown && length <= 2);
  switch (c) {
    case kStmtExecute:
    case kStmtBulkExecute:
    case kStmtSendLongData:
      return length >= (c == kStmtSendLongData ? 7u : 5u);
    case kInitDb:
    case kCreateDb:
    case kDropDb:
    case kFieldList:
      return length >= 2 && length <= 4096 && (!whole || head.size() > 1);
    case kQuery:
    case kStmtPrepare:
      return length >= 2;
    case kChangeUser:
      return length >= 3;
    default:
      return true;
  }
}

PacketReader::Step PacketReader::start(stream::DataStream& s, const Expect& expect) {
  for (;;) {
    std::span<const uint8_t> r = s.readable();
    if (r.empty()) {
      uint64_t gap = stream::skip_unseen(s);
      if (gap == 0) return Step::Waiting;
      counters_.skipped_bytes += gap;
      ++counters_.resyncs;
      unseen_ += gap;
      continue;
    }
    if (r.size() < 4) {
      if (s.missing_after_readable() == 0) return Step::Waiting;
      ++counters_.truncated_messages;
      unseen_ += s.missing_after_readable();  // a header cut by bytes never seen
      resync(s);
      continue;
    }
    const uint64_t length = uint64_t{r[0]} | (uint64_t{r[1]} << 8) | (uint64_t{r[2]} << 16);
    const uint8_t seq = r[3];
    const bool as_command = (expect.command || expect.either) && seq == 0;
    if (as_command) {
      // The command byte decides; check what of the payload is here (up to 64 bytes).
      size_t need = static_cast<size_t>(std::min<uint64_t>(length, 64));
      if (r.size() < 4 + need && s.missing_after_readable() == 0) return Step::Waiting;
      std::string_view head(reinterpret_cast<const char*>(r.data()) + 4,
                            std::min<size_t>(r.size() - 4, need));
      if (!plausible_command(head, length, head.size() == length)) {
        ++counters_.parse_errors;
        resync(s);
        return Step::Error;
      }
    } else if (expect.command && !expect.either) {
      ++counters_.parse_errors;
      resync(s);
      return Step::Error;
    } else if ((expect.seq >= 0 && seq != expect.seq && seq != expect.alt_seq &&
                seq != expect.alt_seq2) ||
               length > expect.max_length) {
      ++counters_.parse_errors;
      resync(s);
      return Step::Error;
    }
    size_t kept = static_cast<size_t>(std::min<uint64_t>(length, keep_));
    if (r.size() < 4 + kept) {
      if (s.missing_after_readable() == 0) return Step::Waiting;
      kept = r.size() - 4;  // the payload was not captured whole: keep what was
    }
    packet_ = {};
    packet_.seq = packet_.last_seq = seq;
    packet_.length = length;
    packet_.cut = kept < length;
    packet_.head.assign(reinterpret_cast<const char*>(r.data()) + 4, kept);
    packet_.timing = stream::begin_message(s);
    packet_.timing.wire_bytes = length + 4;
    packet_.timing.body_bytes = length;
    s.consume(4 + kept);
    body_left_ = length - kept;
    continued_ = length == kMaxPayload;
    in_body_ = true;
    return Step::Packet;  // next() finishes it in pass_body()
  }
}

// Passes over the payload beyond what was kept, and the packets that continue it.
PacketReader::Step PacketReader::pass_body(stream::DataStream& s) {
  for (;;) {
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
    if (!continued_) break;
    // The next packet's header continues this message.
    std::span<const uint8_t> r = s.readable();
    if (r.size() < 4) {
      if (r.empty() && s.skippable() == 0) return Step::Waiting;
      if (!r.empty() && s.missing_after_readable() == 0) return Step::Waiting;
      // The header itself was not seen (a long write captured in part): the message ends
      // here, and how many packets it took is unknown.
      ++counters_.truncated_messages;
      packet_.timing.truncated = true;
      packet_.packets_unknown = true;
      continued_ = false;
      break;
    }
    const uint64_t length = uint64_t{r[0]} | (uint64_t{r[1]} << 8) | (uint64_t{r[2]} << 16);
    if (r[3] != static_cast<uint8_t>(packet_.last_seq + 1)) {
      ++counters_.parse_errors;  // not a continuation: the message ends, the bytes are looked at
      packet_.timing.truncated = true;
      continued_ = false;
      break;
    }
    packet_.last_seq = r[3];
    packet_.length += length;
    packet_.timing.wire_bytes += length + 4;
    packet_.timing.body_bytes += length;
    packet_.cut = true;
    s.consume(4);
    body_left_ = length;
    continued_ = length == kMaxPayload;
  }
  in_body_ = false;
  stream::end_message(packet_.timing, s);
  ++counters_.messages;
  ++packets_;
  return Step::Packet;
}

void PacketReader::resync(stream::DataStream& s) {
  ++counters_.resyncs;
  counters_.skipped_bytes += s.skip_to_next_boundary();
  in_body_ = false;
  continued_ = false;
  body_left_ = 0;
}

namespace {

// Bytes of a binary-protocol value of `type` at `at` (advanced past it); false when cut.
bool skip_binary_value(std::string_view b, size_t& at, uint8_t type) {
  size_t fixed = 0;
  switch (type) {
    case 0x06:  // NULL
      return true;
    case 0x01:  // TINY
      fixed = 1;
      break;
    case 0x02:  // SHORT
    case 0x0d:  // YEAR
      fixed = 2;
      break;
    case 0x03:  // LONG
    case 0x09:  // INT24
    case 0x04:  // FLOAT
      fixed = 4;
      break;
    case 0x05:  // DOUBLE
    case 0x08:  // LONGLONG
      fixed = 8;
      break;
    case 0x07:  // TIMESTAMP
    case 0x0a:  // DATE
    case 0x0b:  // TIME
    case 0x0c:  // DATETIME
      if (at >= b.size()) return false;
      fixed = 1 + static_cast<uint8_t>(b[at]);
      break;
    default: {  // strings, decimals, blobs, JSON, bits: length-encoded
      auto n = read_lenenc(b, at);
      if (!n || *n > b.size() - at) return false;
      at += static_cast<size_t>(*n);
      return true;
    }
  }
  if (b.size() - at < fixed) return false;
  at += fixed;
  return true;
}

}  // namespace

std::string_view query_text(std::string_view payload, std::optional<bool> attributes) {
  if (payload.size() < 2) return {};
  std::string_view rest = payload.substr(1);
  bool has = attributes ? *attributes : static_cast<uint8_t>(rest[0]) < 0x09;
  if (!has) return rest;
  size_t at = 0;
  auto count = read_lenenc(rest, at);
  auto sets = read_lenenc(rest, at);
  if (!count || !sets || *count > 4096) return {};
  if (*count > 0) {
    const size_t n = static_cast<size_t>(*count);
    const size_t bitmap_at = at;
    at += (n + 7) / 8;
    if (at >= rest.size() || rest[at] != 1) return {};  // the types are always sent here
    ++at;
    std::string types;
    for (size_t i = 0; i < n; ++i) {
      auto type = read_int(rest, at, 2);
      auto name = read_lenenc(rest, at);
      if (!type || !name || *name > rest.size() - at) return {};
      at += static_cast<size_t>(*name);
      types.push_back(static_cast<char>(*type & 0xff));
    }
    for (size_t i = 0; i < n; ++i) {
      bool null = (static_cast<uint8_t>(rest[bitmap_at + i / 8]) >> (i % 8)) & 1;
      if (!null && !skip_binary_value(rest, at, static_cast<uint8_t>(types[i]))) return {};
    }
  }
  return at <= rest.size() ? rest.substr(at) : std::string_view();
}

}  // namespace weft::protocols::mysql
