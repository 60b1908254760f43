#include "capture/event_codec.h"

#include <arpa/inet.h>

#include <cstddef>
#include <cstring>

#include "weft/event.h"
#include "weft_events.h"

namespace weft {
namespace {

const uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

template <typename T>
T load(std::span<const uint8_t> raw) {
  T value;
  std::memcpy(&value, raw.data(), sizeof(T));
  return value;
}

void decode_header(const weft_event_header& h, Event& e) {
  e.kind = static_cast<EventKind>(h.kind);
  e.mono_ns = h.ts_ns;
  e.cookie = h.cookie;
  e.pid = h.pid;
  e.tid = h.tid;
  e.fd = h.fd;
  e.role = h.role <= WEFT_ROLE_SERVER ? static_cast<Role>(h.role) : Role::Unknown;
  e.comm.assign(h.comm, strnlen(h.comm, sizeof(h.comm)));
  e.family = h.tuple.family;
  std::memcpy(e.local.addr.data(), h.tuple.saddr, 16);
  std::memcpy(e.remote.addr.data(), h.tuple.daddr, 16);
  e.local.port = h.tuple.sport;
  e.remote.port = h.tuple.dport;
}

void encode_header(const Event& e, weft_event_header& h) {
  h.ts_ns = e.mono_ns;
  h.cookie = e.cookie;
  h.pid = e.pid;
  h.tid = e.tid;
  h.fd = e.fd;
  h.kind = static_cast<uint16_t>(e.kind);
  h.role = static_cast<uint8_t>(e.role);
  std::strncpy(h.comm, e.comm.c_str(), sizeof(h.comm) - 1);
  h.tuple.family = e.family;
  std::memcpy(h.tuple.saddr, e.local.addr.data(), 16);
  std::memcpy(h.tuple.daddr, e.remote.addr.data(), 16);
  h.tuple.sport = e.local.port;
  h.tuple.dport = e.remote.port;
}

bool fail(std::string* error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

bool decode_data(std::span<const uint8_t> raw, Event& e, std::string* error) {
  if (raw.size() < sizeof(weft_data_event))
    return fail(error, "data record shorter than its header");
  auto d = load<weft_data_event>(raw);
  if (d.captured > WEFT_MAX_CHUNK_BYTES || raw.size() != sizeof(weft_data_event) + d.captured)
    return fail(error, "data record length does not match its captured byte count");
  if (d.direction > WEFT_DIR_RECV) return fail(error, "data record with an unknown direction");
  if (d.source > WEFT_SOURCE_TLS_LIBRARY)
    return fail(error, "data record with an unknown byte source");
  decode_header(d.hdr, e);
  e.stream_pos = d.stream_pos;
  e.tcp_seq = d.tcp_seq;
  e.syscall_len = d.syscall_len;
  e.chunk_offset = d.chunk_offset;
  e.syscall = d.syscall;
  e.direction = static_cast<Direction>(d.direction);
  e.flags = d.flags;
  e.source = static_cast<ByteSource>(d.source);
  // An fd is only ever read from a syscall weft knows; a kernel thread has no process to
  // attribute the bytes to. Also holds for records written by an older kernel side.
  if (e.syscall == WEFT_SYS_UNKNOWN || e.kernel_thread()) e.fd = -1;
  if (e.kernel_thread()) e.pid = e.tid = 0;
  e.gap_before = 0;
  auto payload = raw.subspan(sizeof(weft_data_event));
  e.data.assign(payload.begin(), payload.end());  // reuses the buffer of a recycled event
  e.result = 0;
  e.closed_by = 0;
  e.conn_flags = 0;
  e.duration_ns = e.bytes_sent = e.bytes_received = 0;
  return true;
}

bool decode_conn(std::span<const uint8_t> raw, Event& e, std::string* error) {
  if (raw.size() != sizeof(weft_conn_event))
    return fail(error, "connection record has the wrong length");
  auto c = load<weft_conn_event>(raw);
  decode_header(c.hdr, e);
  e.result = c.result;
  e.closed_by = c.closed_by;
  e.conn_flags = c.flags;
  e.duration_ns = c.duration_ns;
  e.bytes_sent = c.bytes_sent;
  e.bytes_received = c.bytes_received;
  // A recycled event may have been a data event: its fields say nothing about this one.
  e.direction = Direction::Send;
  e.stream_pos = 0;
  e.tcp_seq = e.syscall_len = e.chunk_offset = 0;
  e.syscall = 0;
  e.flags = 0;
  e.source = ByteSource::Socket;
  e.data.clear();
  e.gap_before = 0;
  return true;
}

// Every span formats two or three addresses: inet_ntop goes through sprintf for IPv4 (~900
// instructions each), this writes the four numbers itself.
std::string ipv4_text(const uint8_t* octets) {
  char text[16];
  size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    unsigned v = octets[i];
    if (v >= 100) text[at++] = static_cast<char>('0' + v / 100);
    if (v >= 10) text[at++] = static_cast<char>('0' + v / 10 % 10);
    text[at++] = static_cast<char>('0' + v % 10);
    if (i < 3) text[at++] = '.';
  }
  return std::string(text, at);
}

}  // namespace

bool Endpoint::is_v4() const {
  return std::memcmp(addr.data(), kV4MappedPrefix, 12) == 0;
}

std::string Endpoint::address() const {
  if (is_v4()) return ipv4_text(addr.data() + 12);
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, addr.data(), text, sizeof(text));
  return text;
}

std::string Endpoint::to_string() const {
  std::string a = address();
  if (!is_v4()) a = "[" + a + "]";
  return a + ":" + std::to_string(port);
}

bool Event::truncated() const {
  return flags & WEFT_DATA_TRUNCATED;
}
bool Event::last_chunk() const {
  return flags & WEFT_DATA_LAST_CHUNK;
}
bool Event::kernel_thread() const {
  return flags & WEFT_DATA_KERNEL_THREAD;
}
bool Event::accept_at_first_io() const {
  return conn_flags & WEFT_CONN_AT_FIRST_IO;
}
bool Event::has_position() const {
  return !(flags & WEFT_DATA_NO_POSITION);
}
bool Event::has_sequence() const {
  return !(flags & WEFT_DATA_NO_SEQUENCE);
}
bool Event::skipped() const {
  return flags & WEFT_DATA_SKIPPED;
}

namespace {

bool decode_tcp(std::span<const uint8_t> raw, Event& e, std::string* error) {
  if (raw.size() != sizeof(weft_tcp_event)) return fail(error, "TCP record has the wrong length");
  auto t = load<weft_tcp_event>(raw);
  if (t.what < WEFT_TCP_RETRANSMIT || t.what > WEFT_TCP_ZERO_WINDOW)
    return fail(error, "TCP record of unknown type " + std::to_string(t.what));
  decode_header(t.hdr, e);
  e.tcp_what = static_cast<TcpWhat>(t.what);
  e.tcp_state = t.state;
  e.tcp_seq = t.seq;
  e.tcp_end_seq = t.end_seq;
  e.tcp_segs = t.segs;
  e.tcp_detail = t.detail;
  e.tcp = TcpCounters{t.counters.srtt_us,       t.counters.rttvar_us,   t.counters.min_rtt_us,
                      t.counters.total_retrans, t.counters.bytes_acked, t.counters.bytes_received};
  return true;
}

std::vector<uint8_t> encode_tcp(const Event& e) {
  weft_tcp_event t{};
  encode_header(e, t.hdr);
  t.what = static_cast<uint8_t>(e.tcp_what);
  t.state = e.tcp_state;
  t.seq = e.tcp_seq;
  t.end_seq = e.tcp_end_seq;
  t.segs = e.tcp_segs;
  t.detail = e.tcp_detail;
  t.counters = {e.tcp.srtt_us,       e.tcp.rttvar_us,   e.tcp.min_rtt_us,
                e.tcp.total_retrans, e.tcp.bytes_acked, e.tcp.bytes_received};
  std::vector<uint8_t> out(sizeof(t));
  std::memcpy(out.data(), &t, sizeof(t));
  return out;
}

}  // namespace

const char* to_string(EventKind kind) {
  switch (kind) {
    case EventKind::Data:
      return "data";
    case EventKind::Connect:
      return "connect";
    case EventKind::Accept:
      return "accept";
    case EventKind::Close:
      return "close";
    case EventKind::Existing:
      return "existing";
    case EventKind::Tcp:
      return "tcp";
  }
  return "unknown";
}

const char* to_string(TcpWhat what) {
  switch (what) {
    case TcpWhat::Retransmit:
      return "retransmit";
    case TcpWhat::ResetSent:
      return "reset_sent";
    case TcpWhat::ResetReceived:
      return "reset_received";
    case TcpWhat::Established:
      return "established";
    case TcpWhat::Closed:
      return "closed";
    case TcpWhat::DataQueued:
      return "data_queued";
    case TcpWhat::Acked:
      return "acked";
    case TcpWhat::ZeroWindow:
      return "zero_window";
  }
  return "unknown";
}

const char* to_string(Direction direction) {
  return direction == Direction::Send ? "send" : "recv";
}

const char* to_string(Role role) {
  switch (role) {
    case Role::Client:
      return "client";
    case Role::Server:
      return "server";
    case Role::Unknown:
      break;
  }
  return "unknown";
}

const char* syscall_name(uint16_t syscall) {
  static const char* const kNames[WEFT_SYS_COUNT] = {
      "unknown", "read",     "write",    "readv",    "writev", "sendto",    "recvfrom", "sendmsg",
      "recvmsg", "sendmmsg", "recvmmsg", "sendfile", "splice", "SSL_write", "SSL_read"};
  return syscall < WEFT_SYS_COUNT ? kNames[syscall] : "unknown";
}

bool decode_event_into(std::span<const uint8_t> raw, Event& e, std::string* error) {
  if (raw.size() < sizeof(weft_event_header))
    return fail(error, "record shorter than an event header");
  uint16_t kind;
  std::memcpy(&kind, raw.data() + offsetof(weft_event_header, kind), sizeof(kind));
  switch (kind) {
    case WEFT_EVENT_DATA:
      return decode_data(raw, e, error);
    case WEFT_EVENT_CONNECT:
    case WEFT_EVENT_ACCEPT:
    case WEFT_EVENT_CLOSE:
    case WEFT_EVENT_EXISTING:
      return decode_conn(raw, e, error);
    case WEFT_EVENT_TCP:
      return decode_tcp(raw, e, error);
  }
  return fail(error, "record of unknown kind " + std::to_string(kind));
}

std::optional<Event> decode_event(std::span<const uint8_t> raw, std::string* error) {
  Event e;
  if (!decode_event_into(raw, e, error)) return std::nullopt;
  return e;
}

std::vector<uint8_t> encode_event(const Event& e) {
  std::vector<uint8_t> out;
  if (e.kind == EventKind::Data) {
    weft_data_event d{};
    encode_header(e, d.hdr);
    d.stream_pos = e.stream_pos;
    d.tcp_seq = e.tcp_seq;
    d.syscall_len = e.syscall_len;
    d.chunk_offset = e.chunk_offset;
    d.captured = static_cast<uint32_t>(e.data.size());
    d.syscall = e.syscall;
    d.direction = static_cast<uint8_t>(e.direction);
    d.flags = e.flags;
    d.source = static_cast<uint8_t>(e.source);
    out.resize(sizeof(d) + e.data.size());
    std::memcpy(out.data(), &d, sizeof(d));
    if (!e.data.empty()) std::memcpy(out.data() + sizeof(d), e.data.data(), e.data.size());
    return out;
  }
  if (e.kind == EventKind::Tcp) return encode_tcp(e);
  weft_conn_event c{};
  encode_header(e, c.hdr);
  c.result = e.result;
  c.closed_by = e.closed_by;
  c.flags = e.conn_flags;
  c.duration_ns = e.duration_ns;
  c.bytes_sent = e.bytes_sent;
  c.bytes_received = e.bytes_received;
  out.resize(sizeof(c));
  std::memcpy(out.data(), &c, sizeof(c));
  return out;
}

}  // namespace weft
