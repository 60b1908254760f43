// Exchanges, spans and a five-span call chain for the trace unit tests.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "protocols/http1/http1.h"
#include "protocols/http1/route.h"
#include "test_helpers.h"
#include "trace/context.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "weft/exchange.h"

namespace weft::trace::test {

using protocols::http1::http_of;

inline Endpoint ep(const char* address, uint16_t port) {
  return weft::test::endpoint(address, port);
}

inline std::shared_ptr<ProcessInfo> process(uint32_t pid, std::string exe,
                                            std::string service_name = {},
                                            std::string command_line = {}) {
  auto p = std::make_shared<ProcessInfo>();
  p->pid = pid;
  p->exe = std::move(exe);
  p->service_name = std::move(service_name);
  p->command_line = std::move(command_line);
  return p;
}

inline std::shared_ptr<ConnectionInfo> connection(uint32_t pid, std::string comm, Endpoint local,
                                                  Endpoint remote,
                                                  std::shared_ptr<const ProcessInfo> proc = nullptr,
                                                  int64_t wall_offset_ns = 0) {
  auto c = std::make_shared<ConnectionInfo>();
  c->cookie =
      (static_cast<uint64_t>(pid) << 20) ^ local.port ^ (static_cast<uint64_t>(remote.port) << 40);
  c->pid = pid;
  c->fd = 5;
  c->comm = std::move(comm);
  c->process = std::move(proc);
  c->family = 2;  // AF_INET
  c->local = local;
  c->remote = remote;
  c->wall_offset_ns = wall_offset_ns;
  return c;
}

// An HTTP/1.1 exchange; timings and tids are left for the test to set.
inline std::shared_ptr<Exchange> exchange(Role side, std::shared_ptr<const ConnectionInfo> conn,
                                          std::string method, std::string target, int status,
                                          HeaderList request_headers = {},
                                          HeaderList response_headers = {}) {
  auto ex = std::make_shared<Exchange>();
  ex->protocol = &protocols::http1::protocol();
  ex->details = std::make_shared<protocols::http1::HttpExchange>();
  ex->side = side;
  ex->connection = std::move(conn);
  http_of(*ex).method = std::move(method);
  http_of(*ex).target = std::move(target);
  http_of(*ex).route = protocols::http1::route_of_target(http_of(*ex).target);
  http_of(*ex).version = "1.1";
  http_of(*ex).status = status;
  http_of(*ex).request_headers = std::move(request_headers);
  http_of(*ex).response_headers = std::move(response_headers);
  return ex;
}

// Request [req_start, req_end] then response [resp_start, resp_end]; `tid` moved all four ends
// unless the test changes them.
inline void set_timing(Exchange& ex, uint64_t req_start, uint64_t req_end, uint64_t resp_start,
                       uint64_t resp_end, uint32_t tid, uint32_t tcp_seq = 0) {
  ex.request.start_ns = req_start;
  ex.request.end_ns = req_end;
  ex.response.start_ns = resp_start;
  ex.response.end_ns = resp_end;
  ex.request.start_tid = ex.request.end_tid = tid;
  ex.response.start_tid = ex.response.end_tid = tid;
  ex.request.tcp_seq = tcp_seq;
  ex.response.tcp_seq = tcp_seq + 7777;
}

inline std::string hex(const TraceId& id) {
  return to_hex(id.data(), id.size());
}
inline std::string hex(const SpanId& id) {
  return to_hex(id.data(), id.size());
}

// One node, three processes, one request through all of them:
//   front server (pid 100, tid 101) -> front client -> middle server (pid 200, tid 201)
//   -> middle client -> back server (pid 300, tid 301).
// Both servers in the middle of the chain are thread-per-request: the thread that read the
// request makes the downstream call and writes the response.
struct Chain {
  std::shared_ptr<Exchange> fs, fc, ms, mc, bs;

  Chain() {
    auto front = process(100, "/usr/bin/front");
    auto middle = process(200, "/usr/bin/middle");
    auto back = process(300, "/usr/bin/back");
    Endpoint user = ep("10.9.9.9", 50000);
    Endpoint front_listen = ep("10.0.0.1", 8080);
    Endpoint middle_listen = ep("10.0.0.1", 9090);
    Endpoint back_listen = ep("10.0.0.1", 7070);
    Endpoint front_out = ep("10.0.0.1", 40001);
    Endpoint middle_out = ep("10.0.0.1", 40002);

    fs = exchange(Role::Server, connection(100, "front", front_listen, user, front), "GET",
                  "/front", 200);
    set_timing(*fs, 1000, 1100, 2000, 2100, 101, 11);
    fc = exchange(Role::Client, connection(100, "front", front_out, middle_listen, front), "GET",
                  "/middle/7", 200);
    set_timing(*fc, 1200, 1250, 1850, 1900, 101, 1000);
    ms = exchange(Role::Server, connection(200, "middle", middle_listen, front_out, middle), "GET",
                  "/middle/7", 200);
    set_timing(*ms, 1300, 1350, 1750, 1800, 201, 1000);
    mc = exchange(Role::Client, connection(200, "middle", middle_out, back_listen, middle), "GET",
                  "/back", 200);
    set_timing(*mc, 1400, 1450, 1690, 1700, 201, 2000);
    bs = exchange(Role::Server, connection(300, "back", back_listen, middle_out, back), "GET",
                  "/back", 200);
    set_timing(*bs, 1500, 1550, 1600, 1650, 301, 2000);
  }

  // In the order the exchanges complete (response end): back server first, front server last.
  std::vector<std::shared_ptr<Exchange>> completion_order() const { return {bs, mc, ms, fc, fs}; }
  // In the order the requests start: front server first.
  std::vector<std::shared_ptr<Exchange>> start_order() const { return {fs, fc, ms, mc, bs}; }
};

// A stitcher whose traces land in `traces`.
struct StitchFixture {
  std::vector<Trace> traces;
  SpanBuilder builder{SpanOptions{}};
  Stitcher stitcher;

  explicit StitchFixture(StitchConfig config = default_config())
      : stitcher(std::move(config), [this](Trace&& t) { traces.push_back(std::move(t)); }) {}

  static StitchConfig default_config() {
    StitchConfig c;
    c.wait_ns = 1'000'000;
    c.sampler.sampler = "always_on";
    // These tests add spans without the request_started() calls the tracker would make.
    c.requests_announced = false;
    return c;
  }

  void add(const std::shared_ptr<Exchange>& ex, uint64_t now_ns) {
    stitcher.add(builder.build(ex), now_ns);
  }

  size_t span_count() const {
    size_t n = 0;
    for (const auto& t : traces) n += t.spans.size();
    return n;
  }
};

// The exported span of `ex`, or null.
inline const Span* find_span(const Trace& trace, const std::shared_ptr<Exchange>& ex) {
  for (const auto& s : trace.spans)
    if (s.exchange.get() == ex.get()) return &s;
  return nullptr;
}

inline std::shared_ptr<Resource> resource(const std::string& service, int64_t pid) {
  auto r = std::make_shared<Resource>();
  r->service_name = service;
  r->attributes = {{"service.name", service}, {"process.pid", pid}};
  return r;
}

template <size_t N>
inline std::array<uint8_t, N> id(uint8_t first) {
  std::array<uint8_t, N> out{};
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>(first + 0x11 * i);
  return out;
}

// An exporter fixture: root (server, r1) -> child (client, r1, error) -> remote (server, r2,
// wire context).
inline Trace sample_trace(const std::shared_ptr<Resource>& r1,
                          const std::shared_ptr<Resource>& r2) {
  Trace t;
  Span root;
  root.trace_id = id<16>(0x0a);
  root.span_id = id<8>(0xa0);
  root.tracestate = "congo=t61rcWkgMzE";
  root.name = "GET /users/{id}";
  root.kind = SpanKind::Server;
  root.start_ns = 1'700'000'000'123'456'789ull;
  root.end_ns = 1'700'000'000'223'456'789ull;
  root.outcome = "200";
  root.attributes = {{"http.request.method", std::string("GET")},
                     {"http.response.status_code", int64_t{200}},
                     {"weft.http.headers_truncated", true},
                     {"ratio", 0.5}};
  root.resource = r1;

  Span child;
  child.trace_id = root.trace_id;
  child.span_id = id<8>(0x01);
  child.parent_span_id = root.span_id;
  child.tracestate = root.tracestate;
  child.name = "POST /orders";
  child.kind = SpanKind::Client;
  child.start_ns = root.start_ns + 10;
  child.end_ns = root.end_ns - 10;
  child.status = StatusCode::Error;
  child.attributes = {{"http.response.status_code", int64_t{-1}}};
  child.outcome = "-1";
  child.resource = r1;

  Span remote;
  remote.trace_id = root.trace_id;
  remote.span_id = id<8>(0x02);
  remote.parent_span_id = child.span_id;
  remote.name = "POST /orders";
  remote.kind = SpanKind::Server;
  remote.start_ns = root.start_ns + 20;
  remote.end_ns = root.end_ns - 20;
  remote.resource = r2;
  remote.wire = WireContext{};

  t.spans = {root, child, remote};
  return t;
}

}  // namespace weft::trace::test
