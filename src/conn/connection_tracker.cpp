#include "conn/connection_tracker.h"

namespace weft::conn {
namespace {

// What a tracker costs beyond its buffered bytes (map node, streams, handler), roughly.
constexpr size_t kConnectionOverhead = 1024;

int index(Direction d) {
  return static_cast<int>(d);
}

}  // namespace

ConnectionTracker::ConnectionTracker(TrackerConfig config, protocols::ExchangeSink sink,
                                     int64_t wall_offset_ns)
    : config_(config),
      sink_(std::move(sink)),
      wall_offset_ns_(wall_offset_ns),
      protocol_counters_(protocols::registry().size()) {}

ConnectionTracker::~ConnectionTracker() = default;

void ConnectionTracker::on_event(const Event& event) {
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
  if (event.kind == EventKind::Data) on_data(c, event);
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
    c.lru = lru_.insert(lru_.end(), event.cookie);
    c.accounted = kConnectionOverhead;
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

void ConnectionTracker::report_opaque(Connection& c, const Event& e) {
  if (e.role != Role::Server || e.tid == c.opaque_reported_tid || !on_opaque_server_io_) return;
  c.opaque_reported_tid = e.tid;
  on_opaque_server_io_(e.pid, e.tid);
}

void ConnectionTracker::on_data(Connection& c, const Event& e) {
  if (c.state == State::Ignored) return report_opaque(c, e);
  DataStream& stream = c.streams[index(e.direction)];
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
  stream.add(pos, e.data, syscall_end, ByteOrigin{e.mono_ns, e.tid, e.tcp_seq});
  counters_.late_bytes += stream.late_bytes() - late_before;

  if (c.state == State::Detecting) detect(c, e.direction);
  if (c.state == State::Ignored) return report_opaque(c, e);
  if (c.state != State::Tracking) return;
  c.handler->on_data(e.direction, c.streams, sink_);
  if (!c.handler->active()) {
    c.state = State::Ignored;
    c.streams = {};
    report_opaque(c, e);
  }
}

void ConnectionTracker::detect(Connection& c, Direction dir) {
  DataStream& stream = c.streams[index(dir)];
  // Bytes never seen (count-only syscalls, lost records) cannot be detected: look past them.
  while (stream.readable().empty() && stream.skippable() > 0) stream.consume(stream.skippable());
  auto first = stream.readable();
  if (first.empty()) return;
  const auto& protocols = protocols::registry();
  bool undecided = false;
  for (size_t i = 0; i < protocols.size(); ++i) {
    protocols::Detection d = protocols[i].detect(first);
    if (d == protocols::Detection::NeedMore) undecided = true;
    if (d != protocols::Detection::Requests && d != protocols::Detection::Responses) continue;
    bool requests_sent = (d == protocols::Detection::Requests) == (dir == Direction::Send);
    c.handler =
        protocols[i].create(c.info, requests_sent, protocol_counters_[i], &on_request_start_);
    c.state = State::Tracking;
    // The other direction may already hold bytes (e.g. the response arrived first in order).
    Direction other = dir == Direction::Send ? Direction::Recv : Direction::Send;
    c.handler->on_data(other, c.streams, sink_);
    return;
  }
  if (!undecided || first.size() > config_.max_detect_bytes) {
    ++counters_.undetected;
    c.state = State::Ignored;
    c.streams = {};
  }
}

void ConnectionTracker::finish(uint64_t cookie) {
  auto it = connections_.find(cookie);
  if (it == connections_.end()) return;
  Connection& c = it->second;
  if (c.state == State::Tracking) c.handler->on_close(c.streams, sink_);
  memory_used_ -= c.accounted;
  lru_.erase(c.lru);
  connections_.erase(it);
  if (on_finished_) on_finished_(cookie);
}

void ConnectionTracker::account(Connection& c) {
  size_t now = kConnectionOverhead + c.streams[0].memory_bytes() + c.streams[1].memory_bytes();
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
    if (it->second.last_activity_ns + config_.idle_timeout_ns > now_mono_ns) return;
    ++counters_.idle_expired;
    finish(lru_.front());
  }
}

void ConnectionTracker::close_all() {
  while (!lru_.empty()) finish(lru_.front());
}

}  // namespace weft::conn
