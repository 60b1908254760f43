// Conversations fed to a ConnectionTracker the way the kernel reports them: each syscall is one
// data event with its stream position, TCP sequence number, thread and kernel time, and a
// captured prefix that may be shorter than what the syscall moved.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "conn/connection_tracker.h"
#include "protocols/http1/http1.h"
#include "protocols/protocol.h"
#include "test_helpers.h"
#include "weft/event.h"
#include "weft/exchange.h"
#include "weft_events.h"

namespace weft::test {

// Wire text the scenarios send: a GET request, a 200 response carrying `body`, and the start of
// a request head `size` bytes long whose end is not sent yet (the tracker holds it).
inline std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: example.com\r\n\r\n";
}

inline std::string ok(const std::string& body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

inline std::string open_head(const std::string& target, size_t size) {
  std::string head = "GET " + target + " HTTP/1.1\r\nX-Pad: ";
  head += std::string(size - head.size() - 2, 'p');
  return head + "\r\n";
}

using protocols::http1::http_of;

inline constexpr size_t kAll = static_cast<size_t>(-1);

// A tracker and every exchange it emitted, in order; request starts and capture verdicts too.
class Capture : public protocols::HandlerOutput {
 public:
  explicit Capture(conn::TrackerConfig config = {}) : tracker(config, outputs(), 0) {}
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  void exchange(Exchange&& ex) override { exchanges.push_back(std::move(ex)); }
  void request_started(const ConnectionInfo&, uint32_t tid, uint64_t start_ns) override {
    request_starts.push_back({tid, start_ns});
  }

  const protocols::ProtocolCounters& http() const { return tracker.protocol_counters().at(0); }
  const conn::TrackerCounters& counters() const { return tracker.counters(); }

  std::vector<Exchange> exchanges;
  std::vector<std::pair<uint32_t, uint64_t>> request_starts;  // tid, kernel time
  std::function<void(uint64_t cookie, const CaptureVerdict& verdict)> on_verdict;
  std::vector<uint64_t> finished;  // cookies whose state was freed, in order
  conn::ConnectionTracker tracker;

 private:
  conn::TrackerOutputs outputs() {
    conn::TrackerOutputs out;
    out.exchanges = this;
    out.capture_verdict = [this](uint64_t cookie, const CaptureVerdict& v) {
      if (on_verdict) on_verdict(cookie, v);
    };
    out.connection_finished = [this](uint64_t cookie) { finished.push_back(cookie); };
    return out;
  }
};

// Who moved the bytes of a step: the client writes requests, the server writes responses.
enum class Peer { Client, Server };

// One step of a conversation: a syscall on one side.
struct Step {
  Peer from;
  std::string bytes;
  size_t captured = kAll;  // captured prefix; the rest was moved but not captured
  uint64_t at_ns = 0;      // kernel time; 0: the socket's clock, advanced per syscall
};

// One TCP socket of the traced process. Role::Server: it receives requests (Direction::Recv);
// Role::Client: it sends them (Direction::Send).
class Socket {
 public:
  Socket(Capture& capture, uint64_t cookie, Role role = Role::Server)
      : capture_(capture), cookie_(cookie), role_(role) {
    local = endpoint("10.0.0.1", role == Role::Server ? 8080 : 40000 + cookie % 20000);
    remote = endpoint("10.0.0.2", role == Role::Server ? 40000 + cookie % 20000 : 8080);
    comm = role == Role::Server ? "server" : "client";
  }

  // The connection's handshake, as the kernel reports it before any byte: weft then knows it
  // sees the conversation from its start.
  void open() {
    Event e =
        conn_event(role_ == Role::Server ? EventKind::Accept : EventKind::Connect, cookie_, now_ns);
    e.role = role_;
    e.pid = pid;
    e.tid = tid;
    e.comm = comm;
    e.local = local;
    e.remote = remote;
    feed(e);
  }

  Direction request_dir() const {
    return role_ == Role::Server ? Direction::Recv : Direction::Send;
  }
  Direction response_dir() const {
    return role_ == Role::Server ? Direction::Send : Direction::Recv;
  }
  // The direction in which the traced process saw the bytes `from` wrote.
  Direction dir(Peer from) const { return from == Peer::Client ? request_dir() : response_dir(); }
  uint64_t cookie() const { return cookie_; }
  uint64_t pos(Direction d) const { return pos_[static_cast<int>(d)]; }
  // TCP sequence number of stream position 0 of each direction.
  uint32_t isn(Direction d) const { return d == Direction::Send ? 0x10000000u : 0xfffff000u; }

  // An event as the kernel reports one chunk of a syscall, without feeding it.
  Event make(Direction dir, uint64_t syscall_pos, uint64_t syscall_len, std::string_view data,
             uint32_t chunk_offset = 0) const {
    Event e;
    e.kind = EventKind::Data;
    e.mono_ns = now_ns;
    e.cookie = cookie_;
    e.pid = pid;
    e.tid = tid;
    e.fd = fd;
    e.role = role_;
    e.comm = comm;
    e.family = AF_INET;
    e.local = local;
    e.remote = remote;
    e.direction = dir;
    e.stream_pos = syscall_pos + chunk_offset;
    e.tcp_seq = isn(dir) + static_cast<uint32_t>(syscall_pos + chunk_offset);
    e.syscall_len = static_cast<uint32_t>(syscall_len);
    e.chunk_offset = chunk_offset;
    e.syscall = dir == Direction::Send ? WEFT_SYS_WRITE : WEFT_SYS_READ;
    e.data.assign(data.begin(), data.end());
    return e;
  }

  void feed(const Event& e) { capture_.tracker.on_event(e); }

  // One syscall that moved `bytes`, of which the first `captured` were captured.
  void io(Direction dir, std::string_view bytes, size_t captured = kAll) {
    io_len(dir, bytes.substr(0, std::min(captured, bytes.size())), bytes.size());
  }
  // One syscall that moved `len` bytes, of which `captured` (a prefix) were captured.
  void io_len(Direction dir, std::string_view captured, uint64_t len) {
    uint64_t& p = pos_[static_cast<int>(dir)];
    Event e = make(dir, p, len, captured);
    e.flags |= WEFT_DATA_LAST_CHUNK;  // one record per syscall here
    if (captured.size() < len) e.flags |= WEFT_DATA_TRUNCATED;
    feed(e);
    p += len;
    now_ns += step_ns;
  }
  // Bytes moved by syscalls whose records were lost: the positions move on, nothing is seen.
  void lose(Direction dir, uint64_t len) {
    pos_[static_cast<int>(dir)] += len;
    now_ns += step_ns;
  }
  // `bytes` moved by syscalls of `syscall_size` bytes, each capturing at most `capture_limit`.
  void io_all(Direction dir, std::string_view bytes, size_t syscall_size,
              size_t capture_limit = kAll) {
    for (size_t at = 0; at < bytes.size(); at += syscall_size)
      io(dir, bytes.substr(at, syscall_size), capture_limit);
  }

  void request(std::string_view bytes, size_t captured = kAll) {
    io(request_dir(), bytes, captured);
  }
  void response(std::string_view bytes, size_t captured = kAll) {
    io(response_dir(), bytes, captured);
  }
  void feed(const std::vector<Step>& steps) {
    for (const Step& s : steps) {
      if (s.at_ns) now_ns = s.at_ns;
      io(dir(s.from), s.bytes, s.captured);
    }
  }
  void close() {
    Event e;
    e.kind = EventKind::Close;
    e.mono_ns = now_ns;
    e.cookie = cookie_;
    e.pid = pid;
    e.tid = tid;
    e.comm = comm;
    e.family = AF_INET;
    e.local = local;
    e.remote = remote;
    feed(e);
    now_ns += step_ns;
  }

  // Identity and clock of the next events; tests change them between syscalls.
  uint32_t pid = 4242;
  uint32_t tid = 4242;
  int32_t fd = 5;
  std::string comm;
  Endpoint local;
  Endpoint remote;
  uint64_t now_ns = 1'000'000'000;
  uint64_t step_ns = 1'000;

 private:
  Capture& capture_;
  uint64_t cookie_;
  Role role_;
  uint64_t pos_[2] = {0, 0};
};

// Requests and responses of both kinds of socket; the same script runs on either side.
inline const Role kBothSides[] = {Role::Server, Role::Client};

// Exchanges of one conversation seen from `side`.
inline std::vector<Exchange> converse(Role side, const std::vector<Step>& steps) {
  Capture cap;
  Socket s(cap, 1, side);
  s.feed(steps);
  s.close();
  return std::move(cap.exchanges);
}

// Request before response, each first byte before its last: what a normal exchange shows.
inline void check_time_order(const Exchange& ex) {
  CHECK(ex.request.start_ns > 0);
  CHECK(ex.request.start_ns <= ex.request.end_ns);
  CHECK(ex.request.end_ns <= ex.response.start_ns);
  CHECK(ex.response.start_ns <= ex.response.end_ns);
}

}  // namespace weft::test
