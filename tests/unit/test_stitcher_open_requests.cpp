// Calls made while the request they belong to is still being served wait for its span.
#include <doctest/doctest.h>

#include "trace_fixtures.h"

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;

namespace {

constexpr uint64_t kWait = 1'000'000;

void add_all(StitchFixture& f, const std::vector<std::shared_ptr<Exchange>>& exs, uint64_t now) {
  for (const auto& ex : exs) f.add(ex, now++);
}

}  // namespace

TEST_CASE("stitcher: a parent still being served is waited for beyond the wait") {
  StitchFixture f;
  Chain ch;
  // The front server began receiving its request; its span comes only when it completes.
  f.stitcher.request_started(100, 101, ch.fs->connection->cookie, f.builder.build(ch.fs).start_ns);
  add_all(f, {ch.bs, ch.mc, ch.ms, ch.fc}, 10'000);
  f.stitcher.flush_ready(10'003 + kWait);
  CHECK(f.traces.empty());  // the front client waits for its parent
  CHECK(f.stitcher.counters().waited_for_parent >= 1);

  f.add(ch.fs, 10'004 + 5 * kWait);  // long after the wait
  f.stitcher.flush_ready(10'004 + 7 * kWait);
  REQUIRE(f.traces.size() == 1);
  REQUIRE(f.traces[0].spans.size() == 5);
  CHECK(f.traces[0].spans[0].exchange == ch.fs);
  CHECK(f.stitcher.counters().linked_inferred == 2);
  CHECK(f.stitcher.pending() == 0);
}

TEST_CASE("stitcher: waiting for an open request is bounded") {
  StitchConfig c = StitchFixture::default_config();
  c.max_parent_wait_ns = 3 * kWait;
  StitchFixture f(c);
  Chain ch;
  f.stitcher.request_started(100, 101, ch.fs->connection->cookie,
                             f.builder.build(ch.fs).start_ns);  // never completes
  f.add(ch.fc, 10'000);
  for (uint64_t t = 10'000; t <= 10'000 + 6 * kWait; t += kWait / 2) f.stitcher.flush_ready(t);
  REQUIRE(f.traces.size() == 1);  // given up on the parent, sent alone
  CHECK_FALSE(f.traces[0].spans[0].has_parent());
}

TEST_CASE("stitcher: an open request on another thread or a later one is not waited for") {
  StitchFixture f;
  Chain ch;
  f.stitcher.request_started(100, 999, 1, f.builder.build(ch.fs).start_ns);  // another thread
  f.stitcher.request_started(100, 101, 1,
                             f.builder.build(ch.fc).start_ns + 1);  // began after the call
  f.add(ch.fc, 10'000);
  f.stitcher.flush_ready(10'000 + kWait);
  CHECK(f.traces.size() == 1);
  CHECK(f.stitcher.counters().waited_for_parent == 0);
}

TEST_CASE("stitcher: flush_all does not wait for open requests") {
  StitchFixture f;
  Chain ch;
  f.stitcher.request_started(100, 101, ch.fs->connection->cookie, f.builder.build(ch.fs).start_ns);
  f.add(ch.fc, 10'000);
  f.stitcher.flush_all();
  CHECK(f.traces.size() == 1);
  CHECK(f.stitcher.pending() == 0);
}

namespace {

StitchConfig announced_config() {
  StitchConfig c = StitchFixture::default_config();
  c.requests_announced = true;  // as TraceFeed does: every request head is announced
  return c;
}

// A load generator (pid 400, which serves nothing) calling the back server of the chain on
// another connection: one request, both ends on this node.
struct DirectCall {
  std::shared_ptr<Exchange> client, server;
  DirectCall() {
    Endpoint out = ep("10.0.0.1", 40400), back = ep("10.0.0.1", 7070);
    client = exchange(Role::Client, connection(400, "wrk", out, back, process(400, "/usr/bin/wrk")),
                      "GET", "/back", 200);
    set_timing(*client, 5000, 5010, 5090, 5100, 401, 4000);
    server =
        exchange(Role::Server, connection(300, "back", back, out, process(300, "/usr/bin/back")),
                 "GET", "/back", 200);
    set_timing(*server, 5020, 5030, 5060, 5070, 301, 4000);
  }
};

}  // namespace

TEST_CASE("stitcher: a call seen from both ends leaves at once when nothing can join it") {
  for (bool server_first : {true, false}) {
    CAPTURE(server_first);
    StitchFixture f(announced_config());
    DirectCall call;
    f.stitcher.request_started(300, 301, call.server->connection->cookie,
                               f.builder.build(call.server).start_ns);
    f.add(server_first ? call.server : call.client, 10'000);
    CHECK(f.traces.empty());
    f.add(server_first ? call.client : call.server, 10'001);
    REQUIRE(f.traces.size() == 1);  // no flush_ready: it did not wait
    REQUIRE(f.traces[0].spans.size() == 2);
    CHECK(f.traces[0].spans[0].exchange == call.client);
    CHECK_FALSE(f.traces[0].spans[0].has_parent());
    CHECK(f.traces[0].spans[1].exchange == call.server);
    CHECK(hex(f.traces[0].spans[1].parent_span_id) == hex(f.traces[0].spans[0].span_id));
    CHECK(f.stitcher.counters().traces_settled_early == 1);
    CHECK(f.stitcher.pending() == 0);
  }
}

TEST_CASE("stitcher: a call that may still get a parent keeps its wait") {
  SUBCASE("a request is open on the calling thread") {
    StitchFixture f(announced_config());
    Chain ch;
    f.stitcher.request_started(200, 201, ch.ms->connection->cookie,
                               f.builder.build(ch.ms).start_ns);
    f.add(ch.bs, 10'000);
    f.add(ch.mc, 10'001);  // made while the middle server serves: its parent comes later
    CHECK(f.traces.empty());
    f.add(ch.ms, 10'002);
    f.add(ch.fc, 10'003);
    f.add(ch.fs, 10'004);
    f.stitcher.flush_ready(10'004 + kWait);
    REQUIRE(f.traces.size() == 1);
    CHECK(f.traces[0].spans.size() == 5);
    CHECK(f.stitcher.counters().traces_settled_early == 0);
  }
  SUBCASE("a server span that arrived holds the call") {
    StitchFixture f(announced_config());
    Chain ch;
    f.add(ch.bs, 10'000);
    f.add(ch.ms, 10'001);  // out of completion order: the middle server came first
    f.add(ch.mc, 10'002);
    CHECK(f.traces.empty());
    f.stitcher.flush_ready(10'002 + kWait);
    CHECK(f.stitcher.counters().traces_settled_early == 0);
    CHECK(f.stitcher.counters().linked_inferred == 1);
  }
  SUBCASE("the server span made a call still waiting for its parent") {
    StitchFixture f(announced_config());
    Chain ch;
    f.stitcher.request_started(200, 201, ch.ms->connection->cookie,
                               f.builder.build(ch.ms).start_ns);
    f.add(ch.bs, 10'000);
    f.add(ch.mc, 10'001);  // the middle server's call: waits for it
    f.add(ch.ms, 10'002);
    f.add(ch.fc, 10'003);  // links the middle server, whose call has not been resolved
    CHECK(f.traces.empty());
    f.stitcher.flush_all();
    REQUIRE(f.traces.size() == 1);
    CHECK(f.traces[0].spans.size() == 4);
    CHECK(f.stitcher.counters().traces_settled_early == 0);
  }
}
