// The event stream that the capture stage hands to everything after it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace weft {

enum class EventKind : uint16_t {
  Data = 1,
  Connect = 2,
  Accept = 3,
  Close = 4,
  Existing = 5,
  Tcp = 6,  // what the kernel's TCP did to a connection (docs/network.md)
};
enum class Direction : uint8_t { Send = 0, Recv = 1 };
enum class Role : uint8_t { Unknown = 0, Client = 1, Server = 2 };

// What the kernel copies for one connection (enum weft_capture_mode): bytes, only counts, or
// nothing. Positions advance whatever it says.
enum class CaptureMode : uint8_t { Payload = 0, CountsOnly = 1, Ignore = 2 };

// What the pipeline decided the kernel copies for one connection (struct weft_verdict).
struct CaptureVerdict {
  CaptureMode mode = CaptureMode::Payload;
  // Per Direction: a syscall whose bytes all lie before this stream position comes without
  // payload (flagged skipped): the parser skips those bytes by length. 0: nothing skipped.
  std::array<uint64_t, 2> skip_until{};
  // No entry in the kernel's map says the same.
  bool is_default() const {
    return mode == CaptureMode::Payload && skip_until[0] == 0 && skip_until[1] == 0;
  }
};

// Whose bytes a data event carries (enum weft_byte_source); each has its own positions.
enum class ByteSource : uint8_t { Socket = 0, TlsLibrary = 1 };

// What a Tcp event reports (enum weft_tcp_what).
enum class TcpWhat : uint8_t {
  Retransmit = 1,     // a segment sent again (a SYN while connecting)
  ResetSent = 2,      // this side sent a RST
  ResetReceived = 3,  // the peer's RST was accepted
  Established = 4,    // handshake done: first RTT sample, handshake retransmissions
  Closed = 5,         // the connection reached TCP_CLOSE: the socket's final counters
  DataQueued = 6,     // a server's receive queue got bytes after a read: tcp_seq = copied_seq,
                      // tcp_end_seq = rcv_nxt
  Acked = 7,          // an ACK left a server socket nothing in flight: tcp_seq = snd_una before
                      // it, tcp_end_seq = the acknowledged sequence number
  ZeroWindow = 8,     // the peer advertised a zero receive window (same fields as Acked)
};

// The socket's own counters (struct tcp_sock) when a Tcp event was raised.
struct TcpCounters {
  uint32_t srtt_us = 0;         // smoothed RTT; 0 before the first sample
  uint32_t rttvar_us = 0;       // its mean deviation
  uint32_t min_rtt_us = 0;      // lowest RTT seen; ~0u before the first sample
  uint32_t total_retrans = 0;   // segments retransmitted so far, handshake included
  uint64_t bytes_acked = 0;     // bytes the peer acknowledged
  uint64_t bytes_received = 0;  // bytes received in order
};

struct Endpoint {
  std::array<uint8_t, 16> addr{};  // IPv4 as v4-mapped IPv6
  uint16_t port = 0;

  bool is_v4() const;
  std::string address() const;    // "127.0.0.1" or "::1"
  std::string to_string() const;  // "127.0.0.1:80" or "[::1]:80"
};

// Executable and command of a process, resolved once per pid.
struct ProcessInfo {
  uint32_t pid = 0;
  std::string exe;           // empty when the process was gone before weft looked
  std::string service_name;  // OTEL_SERVICE_NAME from the process's environment, if set
  std::string command_line;  // arguments joined by spaces (exported only when asked for)
  // What the executable's runtime does with threads, when weft recognises it: "go" (goroutines
  // move between OS threads), or an event loop ("libuv" for Node.js, "nginx", "libevent",
  // "libev") that runs unrelated work on the thread serving a request. Either way the thread
  // that makes a call says nothing about the request it serves.
  std::string runtime;
};

struct Event {
  EventKind kind = EventKind::Data;
  uint64_t mono_ns = 0;  // kernel CLOCK_MONOTONIC timestamp
  uint64_t wall_ns = 0;  // the same instant on the wall clock (ns since the Unix epoch)
  uint64_t cookie = 0;   // socket cookie: the connection key
  uint32_t pid = 0;
  uint32_t tid = 0;
  int32_t fd = -1;
  Role role = Role::Unknown;
  std::string comm;
  uint16_t family = 0;  // AF_INET or AF_INET6 (the socket's own)
  Endpoint local;
  Endpoint remote;
  std::shared_ptr<const ProcessInfo> process;  // may be null

  // Data events.
  Direction direction = Direction::Send;
  uint64_t stream_pos = 0;    // position of data[0] in this direction's stream
  uint32_t tcp_seq = 0;       // TCP sequence number of data[0]
  uint32_t syscall_len = 0;   // bytes the whole syscall moved
  uint32_t chunk_offset = 0;  // offset of data[0] within the syscall
  uint16_t syscall = 0;       // enum weft_syscall
  uint8_t flags = 0;          // enum weft_data_flags
  ByteSource source = ByteSource::Socket;
  std::vector<uint8_t> data;  // captured prefix (possibly shorter than syscall_len)
  uint64_t gap_before = 0;    // bytes of this stream weft never saw just before this event

  // Connection events.
  int32_t result = 0;  // Connect: 0 or -errno
  uint8_t closed_by = 0;
  uint8_t conn_flags = 0;  // enum weft_conn_flags
  uint64_t duration_ns = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;

  // Tcp events (tcp_seq above is a retransmitted segment's first sequence number).
  TcpWhat tcp_what = TcpWhat::Retransmit;
  uint8_t tcp_state = 0;     // TCP state of the socket (1 ESTABLISHED, 2 SYN_SENT, ...)
  uint16_t tcp_segs = 0;     // Retransmit: segments sent again
  uint32_t tcp_end_seq = 0;  // Retransmit: sequence number after the segment
  int32_t tcp_detail = 0;    // ResetSent: the kernel's reason (enum sk_rst_reason)
  TcpCounters tcp;

  bool truncated() const;
  // The syscall's last record: its uncaptured rest (if any) will never be seen.
  bool last_chunk() const;
  // Moved by a kernel thread, not a process: pid and tid are 0, fd -1, comm names the thread.
  bool kernel_thread() const;
  bool accept_at_first_io() const;
  bool has_position() const;
  // False for TLS plaintext the library had buffered (no syscall in the call): tcp_seq is 0.
  bool has_sequence() const;
  // Payload left uncopied by a skip verdict (bytes the parser skips by length): no loss.
  bool skipped() const;
  // Position of the first byte the whole syscall moved.
  uint64_t syscall_pos() const { return stream_pos - chunk_offset; }
};

const char* to_string(EventKind kind);
const char* to_string(Direction direction);
const char* to_string(Role role);
const char* to_string(TcpWhat what);
const char* syscall_name(uint16_t syscall);

// Decodes one record as the BPF programs write it (struct weft_*_event). Returns nothing and
// sets `error` when the bytes are not a well-formed record; never reads past `raw`.
std::optional<Event> decode_event(std::span<const uint8_t> raw, std::string* error);

// The inverse, for records weft builds itself (existing connections) and for tests.
std::vector<uint8_t> encode_event(const Event& event);

}  // namespace weft
