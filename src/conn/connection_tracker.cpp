#include "conn/connection_tracker.h"

#include <malloc.h>

#include <algorithm>
#include <span>

#include "conn/tls_hello.h"

namespace weft::conn {
namespace {

// A block of `bytes` as glibc's allocator hands it out: one size word, 16-byte granularity.
constexpr size_t allocated(size_t bytes) {
  return (bytes + sizeof(size_t) + 15) / 16 * 16;
}

int index(Direction d) {
  return static_cast<int>(d);
}

Direction opposite(Direction d) {
  return d == Direction::Send ? Direction::Recv : Direction::Send;
}

}  // namespace

// Handlers' results, forwarded to the tracker's outputs.
class ConnectionTracker::Output : public protocols::HandlerOutput {
 public:
  explicit Output(std::function<void(Exchange&&)> on_exchange)
      : on_exchange_(std::move(on_exchange)) {}
  void exchange(Exchange&& exchange) override { on_exchange_(std::move(exchange)); }
  void request_started(const ConnectionInfo&, uint32_t, uint64_t) override {}

 private:
  std::function<void(Exchange&&)> on_exchange_;
};

ConnectionTracker::ConnectionTracker(TrackerConfig config, TrackerOutputs outputs,
                                     int64_t wall_offset_ns)
    : config_(config),
      outputs_(std::move(outputs)),
      wall_offset_ns_(wall_offset_ns),
      protocol_counters_(protocols::registry().size()) {}

ConnectionTracker::ConnectionTracker(TrackerConfig config,
                                     std::function<void(Exchange&&)> on_exchange,
                                     int64_t wall_offset_ns)
    : ConnectionTracker(config, TrackerOutputs{}, wall_offset_ns) {
  exchange_only_ = std::make_unique<Output>(std::move(on_exchange));
  outputs_.exchanges = exchange_only_.get();
}

ConnectionTracker::~ConnectionTracker() = default;

void ConnectionTracker::on_event(const Event& event) {
  if (event.kind == EventKind::Tcp) return;  // kernel TCP facts: net::TcpFacts keeps them
  if (event.kind == EventKind::Close) {
    if (!connections_.contains(event.cookie)) return;
    finish(event.cookie);
    ++counters_.closed;
    return;
  }
  Connection& c = find_or_create(event);
  update_identity(c, event);
  c.last_activity_ns = std::max(c.last_activity_ns, event.mono_ns);
  lru_.splice(lru_.end(), lru_, c.lru);
  if (event.kind == EventKind::Data) read_server_hello(c, event);
  if (event.kind == EventKind::Data && accept_source(c, event)) on_data(c, event);
  account(c);
  enforce_budget(event.cookie);
}

ConnectionTracker::Connection& ConnectionTracker::find_or_create(const Event& event) {
  auto [it, fresh] = connections_.try_emplace(event.cookie);
  Connection& c = it->second;
  if (fresh) {
    ++counters_.connections;
    c.info = std::make_shared<ConnectionInfo>();
    c.info->cookie = event.cookie;
    c.info->wall_offset_ns = wall_offset_ns_;
    // Its handshake came first: weft has every byte since the connection began (not so for
    // one open before weft started, or first met through its data).
    c.info->seen_from_start = event.kind == EventKind::Connect || event.kind == EventKind::Accept;
    c.lru = lru_.insert(lru_.end(), event.cookie);
    c.accounted = kFixedCost;
    memory_used_ += c.accounted;
  }
  return c;
}

// Lifecycle events name the owner with authority; data events fill in what is still unknown.
void ConnectionTracker::update_identity(Connection& c, const Event& e) {
  ConnectionInfo& info = *c.info;
  bool authoritative = e.kind != EventKind::Data;
  if (authoritative || info.pid == 0) {
    info.pid = e.pid;
    info.comm = e.comm;
    info.process = e.process;
    info.family = e.family;
    info.local = e.local;
    info.remote = e.remote;
  }
  if (e.fd >= 0 && (authoritative || info.fd < 0)) info.fd = e.fd;
}

// A connection whose TLS library's plaintext is known is parsed from that alone: its socket
// bytes are ciphertext of the same conversation. The first plaintext starts the connection's
// parsing afresh (the ciphertext could not have been parsed anyway).
bool ConnectionTracker::accept_source(Connection& c, const Event& e) {
  if (e.source == c.source) return true;
  if (e.source == ByteSource::Socket) {
    counters_.superseded_bytes += e.syscall_len;
    return false;
  }
  c.source = e.source;
  c.info->tls = e.source == ByteSource::TlsLibrary;
  ++counters_.tls_connections;
  free_streams(c);
  c.handler.reset();
  c.state = State::Detecting;
  c.detect_attempts = 0;
  c.detect_skipped = 0;
  c.rejected = 0;
  c.missed = false;  // the ciphertext was no miss: detection starts with the plaintext
  c.seq_known = {};
  send_verdict(c, CaptureMode::Ignore);
  return true;
}

// The server's first bytes on a connection seen from its start: a TLS ServerHello names, in
// clear, the version and cipher the two ends chose (its spans say so once plaintext takes over).
// Decided at most once per connection; every other event costs one test.
void ConnectionTracker::read_server_hello(Connection& c, const Event& e) {
  if (c.hello_decided || e.source != ByteSource::Socket || e.role == Role::Unknown) return;
  Direction server_writes = e.role == Role::Server ? Direction::Send : Direction::Recv;
  if (e.direction != server_writes) return;
  std::string& hello = c.server_hello;
  bool contiguous = e.has_position() && e.stream_pos == hello.size();
  if (!c.info->seen_from_start || !contiguous || e.data.empty()) return decide_hello(c);
  hello.append(reinterpret_cast<const char*>(e.data.data()), e.data.size());
  if (static_cast<uint8_t>(hello[0]) != 0x16) return decide_hello(c);
  if (hello.size() < 5) return;
  size_t record_end = 5 + (static_cast<uint8_t>(hello[3]) << 8 | static_cast<uint8_t>(hello[4]));
  if (hello.size() < std::min(record_end, kMaxServerHelloBytes)) return;
  auto bytes = std::span(reinterpret_cast<const uint8_t*>(hello.data()), hello.size());
  if (auto choice = parse_server_hello(bytes)) {
    c.info->tls_version = tls_version_text(choice->version);
    c.info->tls_cipher = tls_cipher_name(choice->cipher);
  }
  decide_hello(c);
}

void ConnectionTracker::decide_hello(Connection& c) {
  c.hello_decided = true;
  std::string().swap(c.server_hello);
}

// The kernel computes both from the same socket at the same moment: for one direction they
// must differ by a constant. When they do not, bytes were placed where they do not belong.
void ConnectionTracker::check_sequence(Connection& c, const Event& e) {
  if (!e.has_position() || e.source != ByteSource::Socket) return;
  int d = index(e.direction);
  uint32_t offset = e.tcp_seq - static_cast<uint32_t>(e.stream_pos);
  if (!c.seq_known[d]) {
    c.seq_known[d] = true;
    c.seq_offset[d] = offset;
    return;
  }
  if (offset == c.seq_offset[d]) return;
  ++counters_.sequence_mismatches;
  c.info->capture_degraded = true;
  c.seq_offset[d] = offset;  // count each change once
}

void ConnectionTracker::report_opaque(Connection& c, const Event& e) {
  if (e.role != Role::Server || e.tid == c.opaque_reported_tid || !outputs_.opaque_server_io)
    return;
  c.opaque_reported_tid = e.tid;
  outputs_.opaque_server_io(e.pid, e.tid);
}

void ConnectionTracker::send_verdict(Connection& c, CaptureMode mode) {
  if (!outputs_.capture_verdict) return;
  c.verdict.mode = mode;
  ++counters_.verdicts;
  outputs_.capture_verdict(c.info->cookie, c.verdict);
}

// The parser will pass over the rest of a body by its length: the kernel need not copy it.
// Only socket bytes: plaintext from a TLS library has positions of its own, which the
// socket hooks' verdict does not know.
void ConnectionTracker::offer_skip(Connection& c, Direction dir) {
  if (!outputs_.capture_verdict || c.source != ByteSource::Socket ||
      c.verdict.mode != CaptureMode::Payload)
    return;
  uint64_t until = c.handler->skipped_until(dir, c.streams);
  int d = index(dir);
  if (until <= c.verdict.skip_until[d] || until < c.streams[d].known_end() + kMinSkipBytes) return;
  c.verdict.skip_until[d] = until;
  ++counters_.skip_verdicts;
  ++counters_.verdicts;
  outputs_.capture_verdict(c.info->cookie, c.verdict);
}

void ConnectionTracker::on_data(Connection& c, const Event& e) {
  if (c.state == State::Ignored) return report_opaque(c, e);
  check_sequence(c, e);
  stream::DataStream& stream = c.streams[index(e.direction)];
  uint64_t pos = e.stream_pos;
  // Only the syscall's last record says where its bytes end: earlier records of the same
  // syscall are followed by more captured bytes, not by a hole.
  uint64_t syscall_end = e.last_chunk() ? e.syscall_pos() + e.syscall_len : pos + e.data.size();
  if (!e.has_position()) {  // the kernel could not track it: assume it follows what we have
    ++counters_.unpositioned;
    pos = std::max(stream.known_end(), stream.head());
    syscall_end = pos + e.data.size();
  }
  uint64_t late_before = stream.late_bytes();
  stream.add(pos, e.data, syscall_end, stream::ByteOrigin{e.mono_ns, e.tid, e.tcp_seq});
  counters_.late_bytes += stream.late_bytes() - late_before;
  if (e.syscall_len > 0) c.carried_bytes = true;
  if (e.skipped()) counters_.skipped_bytes += e.syscall_len;

  if (c.state == State::Detecting) detect(c, e.direction);
  if (c.state == State::Detecting && c.detect_attempts >= config_.max_detect_attempts)
    return give_up(c, e);
  // Bytes no protocol claimed moved on this thread: while weft keeps looking, the trace stage
  // must already know it cannot see everything this thread serves.
  if (c.state == State::Detecting && c.missed) report_opaque(c, e);
  if (c.state != State::Tracking) return;
  c.handler->on_data(e.direction, c.streams, *outputs_.exchanges);
  if (c.confidence == protocols::Confidence::Weak) reconsider_weak(c, e.direction);
  if (c.state == State::Tracking && !c.handler->active() && !hand_off(c)) return give_up(c, e);
  if (c.state == State::Tracking) offer_skip(c, e.direction);
}

// The protocol left the connection to another on the same bytes (an HTTP Upgrade): the
// registered protocol the upgrade names takes it from the handoff's positions. False: none.
bool ConnectionTracker::hand_off(Connection& c) {
  const protocols::Handoff* h = c.handler->handoff();
  const protocols::Protocol* next = h ? protocols::protocol_for_upgrade(h->token) : nullptr;
  if (!next) return false;
  protocols::Handoff handoff = *h;
  for (Direction dir : {Direction::Send, Direction::Recv}) {
    stream::DataStream& s = c.streams[index(dir)];
    while (s.head() < handoff.from[index(dir)]) {  // the first protocol's bytes it left unread
      uint64_t here = std::max<uint64_t>(s.readable().size(), s.skippable());
      if (here == 0) break;
      s.consume(std::min(here, handoff.from[index(dir)] - s.head()));
    }
  }
  size_t i = protocols::registry_index(next);
  c.handler = next->take_over(c.info, protocol_counters_[i], std::move(handoff));
  c.protocol = i;
  c.confidence = protocols::Confidence::Strong;
  for (Direction dir : {Direction::Send, Direction::Recv})
    c.handler->on_data(dir, c.streams, *outputs_.exchanges);
  return c.handler->active() || hand_off(c);
}

// Swapped out, not assigned from empty streams: a moved-from std::string that held its bytes
// inline keeps the heap buffer of the string it is assigned to.
void ConnectionTracker::free_streams(Connection& c) {
  protocols::Streams empty;
  std::swap(c.streams, empty);
}

// No protocol will be found, or the one found left the conversation (an Upgrade): stop
// buffering, and tell the kernel to stop copying. An accepted connection still reports who
// moves bytes on it (the trace stage's evidence of requests it cannot see).
void ConnectionTracker::give_up(Connection& c, const Event& e) {
  if (c.state == State::Detecting) ++counters_.undetected;
  c.state = State::Ignored;
  free_streams(c);
  // A server's socket bytes still say who serves what; not once they are ciphertext of
  // plaintext weft reads from the library.
  bool counts = e.role == Role::Server && c.source == ByteSource::Socket;
  send_verdict(c, counts ? CaptureMode::CountsOnly : CaptureMode::Ignore);
  report_opaque(c, e);
}

void ConnectionTracker::detect(Connection& c, Direction dir) {
  stream::DataStream& stream = c.streams[index(dir)];
  while (c.detect_attempts < config_.max_detect_attempts) {
    // Bytes never seen (count-only syscalls, lost records) cannot be detected: look past them.
    while (stream.readable().empty() && stream.skippable() > 0) {
      counters_.detect_bytes += stream.skippable();
      stream.consume(stream.skippable());
    }
    auto bytes = stream.readable();
    if (bytes.empty()) return;
    bool undecided = false;
    if (try_protocols(c, dir, bytes, undecided)) return;
    if (undecided && bytes.size() <= config_.max_detect_bytes) return;  // wait for more
    // Nothing here (mid-conversation, or another protocol): look again at the next message
    // boundary, where a connection first seen mid-message is likeliest to start one. The
    // budget counts turns of the conversation, not syscalls: a response joined in its middle
    // may take thousands of reads before the next request.
    if (!c.missed || c.last_miss != dir) ++c.detect_attempts;
    c.missed = true;
    c.last_miss = dir;
    uint64_t skipped = stream.skip_to_next_boundary();
    counters_.detect_bytes += skipped;
    c.detect_skipped += skipped;
    if (c.detect_skipped > config_.max_detect_skip_bytes)
      c.detect_attempts = config_.max_detect_attempts;
    if (skipped == 0) return;
  }
}

// A strong match decides; a weak one only when no protocol can still match strongly.
bool ConnectionTracker::try_protocols(Connection& c, Direction dir, std::span<const uint8_t> bytes,
                                      bool& undecided) {
  const auto& protocols = protocols::registry();
  size_t weak = protocols.size();
  protocols::DetectResult weak_result;
  for (size_t i = 0; i < protocols.size(); ++i) {
    if (c.rejected & (1u << i)) continue;
    protocols::DetectResult r = protocols[i]->detect(bytes);
    if (r.detection == protocols::Detection::NeedMore) undecided = true;
    if (r.detection != protocols::Detection::Requests &&
        r.detection != protocols::Detection::Responses)
      continue;
    if (r.confidence == protocols::Confidence::Strong) {
      adopt(c, i, r, dir);
      return true;
    }
    if (weak == protocols.size()) {
      weak = i;
      weak_result = r;
    }
  }
  if (weak == protocols.size() || undecided) return false;
  adopt(c, weak, weak_result, dir);
  return true;
}

void ConnectionTracker::adopt(Connection& c, size_t i, protocols::DetectResult r, Direction dir) {
  bool requests_sent = (r.detection == protocols::Detection::Requests) == (dir == Direction::Send);
  c.handler = protocols::registry()[i]->create(c.info, requests_sent, protocol_counters_[i]);
  c.protocol = i;
  c.confidence = r.confidence;
  c.state = State::Tracking;
  if (c.missed) ++counters_.redetected;
  // The other direction may already hold bytes (e.g. the response arrived first in order).
  c.handler->on_data(opposite(dir), c.streams, *outputs_.exchanges);
}

// A weak match that produced errors before any whole message was not this protocol: forget
// it for this connection and look again at the next message boundary.
void ConnectionTracker::reconsider_weak(Connection& c, Direction dir) {
  if (c.handler->confirmed()) {
    c.confidence = protocols::Confidence::Strong;
    return;
  }
  if (c.handler->errors() == 0) return;
  ++protocol_counters_[c.protocol].weak_rejected;
  c.rejected |= 1u << c.protocol;
  c.handler.reset();
  c.state = State::Detecting;
  c.missed = true;
  ++c.detect_attempts;
  for (auto& s : c.streams) counters_.detect_bytes += s.skip_to_next_boundary();
  detect(c, dir);
}

void ConnectionTracker::finish(uint64_t cookie) {
  auto it = connections_.find(cookie);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (c.state == State::Tracking) c.handler->on_close(c.streams, *outputs_.exchanges);
  // Bytes of no protocol weft knows, and it never gave up looking: still undetected.
  if (c.state == State::Detecting && c.missed) ++counters_.undetected;
  memory_used_ -= c.accounted;
  lru_.erase(c.lru);
  connections_.erase(it);
  if (outputs_.connection_finished) outputs_.connection_finished(cookie);
}

// What every connection costs however little it holds: its hash node (the Connection, both
// DataStreams inside it) and bucket, its place in the LRU list, its ConnectionInfo with the
// shared_ptr's control block.
const size_t ConnectionTracker::kFixedCost =
    allocated(sizeof(void*) + sizeof(std::pair<const uint64_t, Connection>)) + sizeof(void*) +
    allocated(3 * sizeof(void*)) + allocated(sizeof(ConnectionInfo) + 2 * sizeof(void*));

size_t ConnectionTracker::cost(const Connection& c) {
  size_t bytes = kFixedCost + c.streams[0].memory_bytes() + c.streams[1].memory_bytes() +
                 (c.server_hello.capacity() > 15 ? allocated(c.server_hello.capacity() + 1) : 0);
  // The handler object as allocated (its real size, whatever the protocol), and the containers
  // it keeps (HTTP/1's queue of pending requests: a std::deque allocates its first block at
  // construction).
  if (c.handler) bytes += allocated(malloc_usable_size(c.handler.get())) + kHandlerStateBytes;
  return bytes;
}

void ConnectionTracker::account(Connection& c) {
  size_t now = cost(c);
  memory_used_ = memory_used_ - c.accounted + now;
  c.accounted = now;
}

void ConnectionTracker::enforce_budget(uint64_t keep_cookie) {
  while (memory_used_ > config_.memory_budget_bytes && !lru_.empty()) {
    uint64_t oldest = lru_.front();
    if (oldest == keep_cookie) {
      if (lru_.size() == 1) return;
      lru_.splice(lru_.end(), lru_, lru_.begin());
      continue;
    }
    ++counters_.evicted;
    finish(oldest);
  }
}

void ConnectionTracker::expire_idle(uint64_t now_mono_ns) {
  while (!lru_.empty()) {
    auto it = connections_.find(lru_.front());
    if (it->second.last_activity_ns + config_.idle_timeout_ns > now_mono_ns) break;
    ++counters_.idle_expired;
    finish(lru_.front());
  }
}

void ConnectionTracker::close_all() {
  while (!lru_.empty()) finish(lru_.front());
}

}  // namespace weft::conn
