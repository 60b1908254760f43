#include "net/connection_table.h"

#include <algorithm>
#include <functional>
#include <tuple>

namespace weft::net {
namespace {

using Key = std::function<bool(const NetRow&, const NetRow&)>;

template <typename F>
Key largest_first(F value) {
  return [value](const NetRow& a, const NetRow& b) { return value(a) > value(b); };
}

template <typename F>
Key alphabetical(F value) {
  return [value](const NetRow& a, const NetRow& b) { return value(a) < value(b); };
}

const std::vector<std::pair<std::string_view, Key>>& sort_keys() {
  static const std::vector<std::pair<std::string_view, Key>> keys{
      {"retrans", largest_first([](const NetRow& r) { return r.retransmits; })},
      {"rtt", largest_first([](const NetRow& r) { return r.srtt_us; })},
      {"resets",
       largest_first([](const NetRow& r) { return uint64_t{r.resets_sent} + r.resets_received; })},
      {"rqwait", largest_first([](const NetRow& r) { return r.receive_queue_wait_max_ns; })},
      {"connect", largest_first([](const NetRow& r) { return r.connect_ns; })},
      {"bytes", largest_first([](const NetRow& r) { return r.bytes_sent + r.bytes_received; })},
      {"tx", largest_first([](const NetRow& r) { return r.bytes_sent; })},
      {"rx", largest_first([](const NetRow& r) { return r.bytes_received; })},
      {"age", largest_first([](const NetRow& r) { return r.age_ns; })},
      {"pid", alphabetical([](const NetRow& r) { return r.pid; })},
      {"comm", alphabetical([](const NetRow& r) { return r.comm; })},
      {"peer",
       alphabetical([](const NetRow& r) { return std::make_tuple(r.remote.addr, r.remote.port); })},
  };
  return keys;
}

bool connection_event(EventKind kind) {
  return kind == EventKind::Connect || kind == EventKind::Accept || kind == EventKind::Existing ||
         kind == EventKind::Data || kind == EventKind::Tcp;
}

}  // namespace

const std::vector<std::string_view>& sort_fields() {
  static const std::vector<std::string_view> fields = [] {
    std::vector<std::string_view> out;
    for (const auto& [name, key] : sort_keys()) out.push_back(name);
    return out;
  }();
  return fields;
}

bool is_sort_field(std::string_view field) {
  const auto& fields = sort_fields();
  return std::find(fields.begin(), fields.end(), field) != fields.end();
}

void sort_rows(std::vector<NetRow>& rows, std::string_view field) {
  for (const auto& [name, key] : sort_keys()) {
    if (name != field) continue;
    std::stable_sort(rows.begin(), rows.end(), [&](const NetRow& a, const NetRow& b) {
      if (key(a, b)) return true;
      if (key(b, a)) return false;
      return a.cookie < b.cookie;
    });
    return;
  }
}

ConnectionTable::Seen* ConnectionTable::seen_for(const Event& e) {
  auto it = seen_.find(e.cookie);
  if (it == seen_.end()) {
    // A close, or a reset sent after it, of a connection not (or no longer) in the table.
    if (!connection_event(e.kind) || is_reset_after_close(e)) return nullptr;
    if (seen_.size() >= max_connections_) {  // any one, counted: only live connections fill it
      seen_.erase(seen_.begin());
      ++evicted_;
    }
    it = seen_.emplace(e.cookie, Seen{}).first;
    it->second.start_ns = e.mono_ns;  // until a connect or an accept says when it opened
  }
  Seen& s = it->second;
  // Data moved by a kernel thread or a TCP record raised in softirq may name no process.
  if (e.pid != 0 || s.pid == 0) {
    s.pid = e.pid;
    s.comm = e.comm;
  }
  if (e.role != Role::Unknown) s.role = e.role;
  s.local = e.local;
  s.remote = e.remote;
  return &s;
}

void ConnectionTable::on_data(Seen& s, const Event& e) {
  if (e.source != ByteSource::Socket || e.chunk_offset != 0) return;  // TLS plaintext: not wire
  if (e.direction == Direction::Send) {
    s.bytes_sent += e.syscall_len;
    return;
  }
  s.bytes_received += e.syscall_len;
  if (s.arrival_ns == 0) return;
  // The first read after an arrival record takes its first byte (the queue was empty before).
  uint64_t wait = e.mono_ns > s.arrival_ns ? e.mono_ns - s.arrival_ns : 0;
  ++s.waits;
  s.wait_total_ns += wait;
  s.wait_max_ns = std::max(s.wait_max_ns, wait);
  s.arrival_ns = 0;
}

void ConnectionTable::on_event(const Event& e) {
  facts_.on_event(e);
  Seen* s = seen_for(e);
  if (!s) return;
  switch (e.kind) {
    case EventKind::Connect:
      s->start_ns = e.mono_ns > e.duration_ns ? e.mono_ns - e.duration_ns : 0;
      s->start_is_open = true;
      if (e.result != 0) {  // no close follows a failed connect
        s->closed = true;
        s->lifetime_ns = e.duration_ns;
      }
      break;
    case EventKind::Accept:  // duration: from the handshake's end to the accept
      s->start_ns = e.mono_ns > e.duration_ns ? e.mono_ns - e.duration_ns : 0;
      s->start_is_open = true;
      break;
    case EventKind::Close:
      s->closed = true;
      s->lifetime_ns = e.duration_ns;
      s->bytes_sent = e.bytes_sent;
      s->bytes_received = e.bytes_received;
      break;
    case EventKind::Data:
      on_data(*s, e);
      break;
    case EventKind::Tcp:
      if (e.tcp_what == TcpWhat::DataQueued && s->arrival_ns == 0) s->arrival_ns = e.mono_ns;
      if (e.tcp.bytes_acked || e.tcp.bytes_received) {  // zero: no full socket to read
        s->tcp_bytes_acked = e.tcp.bytes_acked;
        s->tcp_bytes_received = e.tcp.bytes_received;
      }
      break;
    case EventKind::Existing:
      break;
  }
}

NetRow ConnectionTable::row_of(uint64_t cookie, const Seen& s, uint64_t now_mono_ns) const {
  NetRow r{.cookie = cookie,
           .pid = s.pid,
           .comm = s.comm,
           .role = s.role,
           .local = s.local,
           .remote = s.remote,
           .closed = s.closed,
           .age_from_open = s.start_is_open,
           .receive_queue_waits = s.waits,
           .receive_queue_wait_max_ns = s.wait_max_ns,
           .receive_queue_wait_total_ns = s.wait_total_ns,
           .bytes_sent = s.bytes_sent,
           .bytes_received = s.bytes_received,
           .tcp_bytes_acked = s.tcp_bytes_acked,
           .tcp_bytes_received = s.tcp_bytes_received};
  r.age_ns = s.closed ? s.lifetime_ns : (now_mono_ns > s.start_ns ? now_mono_ns - s.start_ns : 0);
  const ConnectionFacts* f = facts_.find(cookie);
  if (!f) return r;
  r.connect_seen = f->connect_seen;
  r.connect_ns = f->connect_duration_ns;
  r.connect_result = f->connect_result;
  r.srtt_us = f->srtt_us;
  r.srtt_low_us = f->srtt_low_us;
  r.srtt_high_us = f->srtt_high_us;
  r.min_rtt_us = f->min_rtt_us;
  r.handshake_retransmits = f->handshake_retransmits;
  r.retransmits = f->retransmitted_segments + f->handshake_retransmits;
  r.resets_sent = f->resets_sent;
  r.resets_received = f->resets_received;
  return r;
}

std::vector<NetRow> ConnectionTable::take_round(uint64_t now_mono_ns) {
  std::vector<NetRow> rows;
  rows.reserve(seen_.size());
  for (const auto& [cookie, s] : seen_) rows.push_back(row_of(cookie, s, now_mono_ns));
  std::erase_if(seen_, [](const auto& entry) { return entry.second.closed; });
  facts_.expire(now_mono_ns);
  return rows;
}

}  // namespace weft::net
