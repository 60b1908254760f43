// MySQL client/server protocol packets on a stream: a 3-byte little-endian payload length, a
// sequence id, the payload. A payload of 0xFFFFFF bytes is continued by the next packet (sequence
// id + 1), so one logical message may span several packets: the reader joins them. Only the first
// bytes of a message are kept (a statement's text, an OK, ERR or greeting's fields); the rest
// (row values, LOCAL INFILE data, long data) is passed over by its length.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "protocols/protocol.h"
#include "stream/data_stream.h"
#include "weft/exchange.h"

namespace weft::protocols::mysql {

constexpr uint32_t kMaxPayload = 0xFFFFFF;  // a packet this long is continued by the next

// Commands (the first payload byte of a client packet with sequence id 0).
enum Command : uint8_t {
  kSleep = 0x00,
  kQuit = 0x01,
  kInitDb = 0x02,
  kQuery = 0x03,
  kFieldList = 0x04,
  kCreateDb = 0x05,
  kDropDb = 0x06,
  kRefresh = 0x07,
  kShutdown = 0x08,
  kStatistics = 0x09,
  kProcessInfo = 0x0a,
  kConnect = 0x0b,
  kProcessKill = 0x0c,
  kDebug = 0x0d,
  kPing = 0x0e,
  kChangeUser = 0x11,
  kBinlogDump = 0x12,
  kRegisterSlave = 0x15,
  kStmtPrepare = 0x16,
  kStmtExecute = 0x17,
  kStmtSendLongData = 0x18,
  kStmtClose = 0x19,
  kStmtReset = 0x1a,
  kSetOption = 0x1b,
  kStmtFetch = 0x1c,
  kResetConnection = 0x1f,
  kStmtBulkExecute = 0xfa,  // MariaDB
};

// Capability flags (the greeting's and the HandshakeResponse's).
constexpr uint32_t kClientConnectWithDb = 0x00000008;
constexpr uint32_t kClientProtocol41 = 0x00000200;
constexpr uint32_t kClientSsl = 0x00000800;
constexpr uint32_t kClientSecureConnection = 0x00008000;
constexpr uint32_t kClientPluginAuth = 0x00080000;
constexpr uint32_t kClientPluginAuthLenencData = 0x00200000;
constexpr uint32_t kClientDeprecateEof = 0x01000000;
constexpr uint32_t kClientQueryAttributes = 0x08000000;
// Server status flags (OK and EOF packets).
constexpr uint16_t kServerMoreResultsExists = 0x0008;

// The command's name ("COM_QUERY"), or null for a byte that is no command.
const char* command_name(uint8_t command);
// Commands the server answers with nothing.
inline bool unanswered(uint8_t command) {
  return command == kQuit || command == kStmtClose || command == kStmtSendLongData;
}
// The payload length a command always has, or 0 when it varies.
uint32_t fixed_length(uint8_t command);

// Little-endian integers and length-encoded values. Each reads at `at` (advanced past it) and
// returns nullopt when the bytes end first (a cut capture).
std::optional<uint64_t> read_int(std::string_view b, size_t& at, size_t bytes);
std::optional<uint64_t> read_lenenc(std::string_view b, size_t& at);
// A NUL-terminated string at `at` (advanced past it); the rest of the bytes when cut.
std::string_view read_cstring(std::string_view b, size_t& at);

// One logical message (one packet, or a packet and its continuations).
struct Packet {
  uint8_t seq = 0;               // the first packet's sequence id
  uint8_t last_seq = 0;          // the last packet's (continuations add one each)
  uint64_t length = 0;           // payload bytes of every packet together
  std::string head;              // the first payload bytes kept
  bool cut = false;              // the payload is longer than what was kept
  bool packets_unknown = false;  // continued in packets whose headers were not seen
  MessageTiming timing;
};

// What the handler accepts as the next packet of a direction.
struct Expect {
  int seq = -1;          // the sequence id the next packet must have; -1: any
  int alt_seq = -1;      // another it may have (an optional EOF packet that may still come)
  int alt_seq2 = -1;     // and another (the start of the next command's answer)
  bool command = false;  // a command: sequence id 0 and a known command byte of a plausible length
  bool either = false;   // a command, or a packet of sequence `seq` (the handshake response)
  uint64_t max_length = kMaxPayload;  // longer packets are not believed (authentication talk)
};

class PacketReader {
 public:
  PacketReader(size_t keep, ProtocolCounters& counters) : keep_(keep), counters_(counters) {}

  enum class Step { Packet, Waiting, Error };
  // Packet: packet() holds it. Error: a header the handler does not accept (the bytes are skipped
  // to the next syscall boundary, where a packet is likeliest to begin).
  Step next(stream::DataStream& s, const Expect& expect);
  const Packet& packet() const { return packet_; }
  // Where the payload being passed over ends (the kernel need not copy it), 0 outside one.
  uint64_t skipped_until(const stream::DataStream& s) const {
    return in_body_ && body_left_ > 0 ? s.head() + body_left_ : 0;
  }
  // Bytes never seen where packets should have been since the last call (0: none).
  uint64_t take_unseen() { return std::exchange(unseen_, 0); }
  // A whole packet was read: bytes that are not one are errors from then on.
  bool in_step() const { return packets_ > 0; }

 private:
  Step start(stream::DataStream& s, const Expect& expect);
  Step pass_body(stream::DataStream& s);
  void resync(stream::DataStream& s);

  size_t keep_;
  ProtocolCounters& counters_;
  Packet packet_;
  bool in_body_ = false;
  bool continued_ = false;  // the packet being read is 0xFFFFFF long: another one follows
  uint64_t body_left_ = 0;
  uint64_t unseen_ = 0;
  uint64_t packets_ = 0;
};

// Whether a command packet's first payload bytes (`head`, the whole payload when `whole`) are
// plausible for its command byte and length.
bool plausible_command(std::string_view head, uint64_t length, bool whole);

// The statement text of a COM_QUERY payload (after the command byte), skipping the query
// attributes MySQL 8 clients with CLIENT_QUERY_ATTRIBUTES put first. `attributes`: the
// capability when known (from the handshake); nullopt: inferred from the bytes (SQL text never
// starts with a byte below 0x09, an attribute count always does). Empty when it cannot be found.
std::string_view query_text(std::string_view payload, std::optional<bool> attributes);

}  // namespace weft::protocols::mysql
