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
  f.stitcher.request_started(100, 101, ch.fs->connection->cookie, f.builder.build(ch.fs).start_ns);  // never completes
  f.add(ch.fc, 10'000);
  for (uint64_t t = 10'000; t <= 10'000 + 6 * kWait; t += kWait / 2) f.stitcher.flush_ready(t);
  REQUIRE(f.traces.size() == 1);  // given up on the parent, sent alone
  CHECK_FALSE(f.traces[0].spans[0].has_parent());
}

TEST_CASE("stitcher: an open request on another thread or a later one is not waited for") {
  StitchFixture f;
  Chain ch;
  f.stitcher.request_started(100, 999, 1, f.builder.build(ch.fs).start_ns);    // another thread
  f.stitcher.request_started(100, 101, 1, f.builder.build(ch.fc).start_ns + 1);  // began after the call
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
