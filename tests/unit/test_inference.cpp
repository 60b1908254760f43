// Thread inference holds only where its premise (thread per request) was never seen broken:
// one case per way weft sees it broken, and the thread-per-request shapes that must keep their
// links.
#include <doctest/doctest.h>

#include "trace_fixtures.h"

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;

namespace {

constexpr uint64_t kWait = 1'000'000;  // StitchFixture::default_config().wait_ns

// One service process (pid 700) with its own listening port; exchanges built on demand.
struct Service {
  std::shared_ptr<ProcessInfo> proc = process(700, "/usr/bin/svc");
  uint16_t next_port = 41000;

  // A request served on a connection of its own: read on `read_tid`, answered on `answer_tid`.
  std::shared_ptr<Exchange> request(uint64_t start, uint64_t end, uint32_t read_tid,
                                    uint32_t answer_tid = 0) {
    auto c = connection(700, "svc", ep("10.0.0.1", 8000), ep("10.0.0.2", next_port++), proc);
    auto ex = exchange(Role::Server, c, "GET", "/in", 200);
    set_timing(*ex, start, start + 10, end - 10, end, read_tid, next_port);
    if (answer_tid) ex->response.start_tid = ex->response.end_tid = answer_tid;
    return ex;
  }
  // A call to a server weft does not see (another node).
  std::shared_ptr<Exchange> call(uint64_t start, uint64_t end, uint32_t tid,
                                 uint32_t read_tid = 0) {
    auto c = connection(700, "svc", ep("10.0.0.1", next_port++), ep("10.9.0.9", 80), proc);
    auto ex = exchange(Role::Client, c, "GET", "/out", 200);
    set_timing(*ex, start, start + 10, end - 10, end, tid, next_port);
    if (read_tid) ex->response.start_tid = ex->response.end_tid = read_tid;
    return ex;
  }
};

// Tells the stitcher that `ex`'s request head arrived, as the HTTP parser does.
void started(StitchFixture& f, const std::shared_ptr<Exchange>& ex) {
  f.stitcher.request_started(ex->connection->pid, ex->request.start_tid, ex->connection->cookie,
                             ex->request.start_ns);
}

// The parent of `call` in whatever trace holds it is `server`.
bool linked(const StitchFixture& f, const std::shared_ptr<Exchange>& call,
            const std::shared_ptr<Exchange>& server) {
  for (const auto& t : f.traces) {
    const Span* c = find_span(t, call);
    const Span* s = find_span(t, server);
    if (c && s) return c->has_parent() && hex(c->parent_span_id) == hex(s->span_id);
  }
  return false;
}

bool has_parent(const StitchFixture& f, const std::shared_ptr<Exchange>& call) {
  for (const auto& t : f.traces)
    if (const Span* c = find_span(t, call)) return c->has_parent();
  return false;
}

}  // namespace

TEST_CASE("inference: a thread-per-request pool keeps every link") {
  // Threads 701 and 702 each serve requests one after another, from different connections,
  // and call out inside each: two threads of one process serving at once is not an event loop.
  Service svc;
  StitchFixture f;
  std::vector<std::pair<std::shared_ptr<Exchange>, std::shared_ptr<Exchange>>> pairs;
  uint64_t now = 100'000;
  for (uint64_t n = 0; n < 5; ++n) {
    size_t first = pairs.size();
    for (uint32_t tid : {701u, 702u}) {
      uint64_t t0 = 1000 + n * 1000 + (tid - 701) * 300;
      auto in = svc.request(t0, t0 + 800, tid);
      auto out = svc.call(t0 + 100, t0 + 600, tid);
      started(f, in);
      pairs.push_back({in, out});
    }
    // In the order the pipeline sees them: heads, then the calls, then the requests' ends.
    for (size_t i = first; i < pairs.size(); ++i) f.add(pairs[i].second, now++);
    for (size_t i = first; i < pairs.size(); ++i) f.add(pairs[i].first, now++);
  }
  f.stitcher.flush_all();
  for (auto& [in, out] : pairs) CHECK(linked(f, out, in));
  CHECK(f.stitcher.counters().linked_inferred == pairs.size());
}

TEST_CASE(
    "inference: a thread that ever had two connections' requests in flight is an event loop") {
  Service svc;
  SUBCASE("seen from the request heads, before either is answered") {
    StitchFixture f;
    auto slow = svc.request(1000, 9000, 701);
    auto fast = svc.request(2000, 2500, 701);
    auto timer_call = svc.call(5000, 5200, 701);  // inside only the slow one
    started(f, slow);
    started(f, fast);
    f.add(fast, 10'000);
    f.add(timer_call, 10'001);
    f.add(slow, 10'002);
    f.stitcher.flush_all();
    CHECK_FALSE(has_parent(f, timer_call));
    CHECK(f.stitcher.counters().not_inferred_concurrent_requests == 1);
    CHECK(f.stitcher.counters().linked_inferred == 0);
  }
  SUBCASE("and for every later request too, even one served alone") {
    StitchFixture f;
    auto a = svc.request(1000, 3000, 701);
    auto b = svc.request(1500, 2000, 701);
    auto later = svc.request(10'000, 12'000, 701);
    auto call = svc.call(11'000, 11'500, 701);
    for (auto& ex : {a, b, later}) started(f, ex);
    f.add(b, 20'000);
    f.add(a, 20'001);
    f.add(call, 20'002);
    f.add(later, 20'003);
    f.stitcher.flush_all();
    CHECK_FALSE(has_parent(f, call));
    CHECK(f.stitcher.counters().not_inferred_concurrent_requests == 1);
  }
  SUBCASE("a request head never answered stops counting when its connection is gone") {
    StitchFixture f;
    auto lost = svc.request(1000, 2000, 701);
    started(f, lost);  // the client hung up before the answer
    f.stitcher.connection_finished(lost->connection->cookie);
    auto in = svc.request(3000, 4000, 701);
    auto out = svc.call(3100, 3600, 701);
    started(f, in);
    f.add(out, 5000);
    f.add(in, 5001);
    f.stitcher.flush_all();
    CHECK(linked(f, out, in));
  }
  SUBCASE("nor once a later request of its connection is answered (its answer fell in a gap)") {
    StitchFixture f;
    auto lost = svc.request(1000, 2000, 701);
    auto next = std::make_shared<Exchange>(*lost);  // the same connection, the next request
    set_timing(*next, 2500, 2510, 2590, 2600, 701, 99);
    started(f, lost);
    started(f, next);
    f.add(next, 2700);
    auto in = svc.request(3000, 4000, 701);
    auto out = svc.call(3100, 3600, 701);
    started(f, in);
    f.add(out, 5000);
    f.add(in, 5001);
    f.stitcher.flush_all();
    CHECK(linked(f, out, in));
  }
  SUBCASE("a request head never answered stops counting after a minute") {
    StitchFixture f;
    auto lost = svc.request(1000, 2000, 701);
    started(f, lost);  // its response never comes
    uint64_t t = 1000 + 61'000'000'000ull;
    auto in = svc.request(t, t + 800, 701);
    auto out = svc.call(t + 100, t + 600, 701);
    started(f, in);
    f.add(out, t + 1000);
    f.add(in, t + 1001);
    f.stitcher.flush_all();
    CHECK(linked(f, out, in));
  }
}

TEST_CASE(
    "inference: a thread that calls out while serving no request has triggers weft cannot see") {
  // A Node service with a timer: the first timer call falls between requests; later ones fall
  // inside a slow request and must not become its children.
  Service svc;
  StitchFixture f;
  auto first_timer_call = svc.call(500, 700, 701);
  f.add(first_timer_call, 800);
  f.stitcher.flush_ready(800 + kWait);  // resolved: no request held it
  REQUIRE(f.traces.size() == 1);
  CHECK(f.stitcher.counters().not_inferred_calls_outside_requests == 0);  // nothing to refuse yet

  auto slow = svc.request(2 * kWait, 5 * kWait, 701);
  auto timer_call = svc.call(3 * kWait, 3 * kWait + 100, 701);
  started(f, slow);
  f.add(timer_call, 3 * kWait + 200);
  f.add(slow, 5 * kWait + 1);
  f.stitcher.flush_all();
  CHECK_FALSE(has_parent(f, timer_call));
  CHECK(f.stitcher.counters().not_inferred_calls_outside_requests == 1);
  CHECK(f.stitcher.counters().linked_inferred == 0);
}

TEST_CASE("inference: calls outside requests on one thread leave other threads' links alone") {
  // A thread-per-request server with a background thread (703) that calls out on its own.
  Service svc;
  StitchFixture f;
  auto background = svc.call(500, 700, 703);
  f.add(background, 800);
  f.stitcher.flush_ready(800 + kWait);
  auto in = svc.request(2 * kWait, 3 * kWait, 701);
  auto out = svc.call(2 * kWait + 100, 2 * kWait + 500, 701);
  started(f, in);
  f.add(out, 3 * kWait);
  f.add(in, 3 * kWait + 1);
  f.stitcher.flush_all();
  CHECK(linked(f, out, in));
}

TEST_CASE("inference: a thread serving connections weft cannot parse is not trusted") {
  // nginx: the worker relays TLS (ciphertext, no requests visible) between plaintext requests.
  Service svc;
  StitchFixture f;
  f.stitcher.opaque_server_io(700, 701);
  auto plain = svc.request(1000, 9000, 701);
  auto upstream_for_tls = svc.call(3000, 3500, 701);
  started(f, plain);
  f.add(upstream_for_tls, 10'000);
  f.add(plain, 10'001);
  f.stitcher.flush_all();
  CHECK_FALSE(has_parent(f, upstream_for_tls));
  CHECK(f.stitcher.counters().not_inferred_opaque_server_traffic == 1);

  SUBCASE("another thread of the process keeps its links") {
    auto in = svc.request(20'000, 29'000, 702);
    auto out = svc.call(21'000, 22'000, 702);
    started(f, in);
    f.add(out, 30'000);
    f.add(in, 30'001);
    f.stitcher.flush_all();
    CHECK(linked(f, out, in));
  }
}

TEST_CASE("inference: a runtime that moves work between threads is not trusted") {
  Service svc;
  SUBCASE("a request read on one thread and answered on another") {
    StitchFixture f;
    auto hopped = svc.request(1000, 2000, 701, /*answer_tid=*/702);
    auto in = svc.request(3000, 5000, 703);
    auto out = svc.call(3500, 4000, 703);  // same thread as its candidate, by chance
    for (auto& ex : {hopped, in}) started(f, ex);
    f.add(hopped, 6000);
    f.add(out, 6001);
    f.add(in, 6002);
    f.stitcher.flush_all();
    CHECK_FALSE(has_parent(f, out));
    CHECK(f.stitcher.counters().not_inferred_thread_hopping == 1);
  }
  SUBCASE("a call sent on one thread and its response read on another") {
    StitchFixture f;
    auto hopped_call = svc.call(100, 200, 701, /*read_tid=*/702);
    auto in = svc.request(3000, 5000, 703);
    auto out = svc.call(3500, 4000, 703);
    started(f, in);
    f.add(hopped_call, 300);
    f.add(out, 6001);
    f.add(in, 6002);
    f.stitcher.flush_all();
    CHECK_FALSE(has_parent(f, out));
    CHECK(f.stitcher.counters().not_inferred_thread_hopping == 1);
  }
  SUBCASE("a Go program, from its first request") {
    svc.proc->runtime = "go";
    StitchFixture f;
    auto in = svc.request(3000, 5000, 703);
    auto out = svc.call(3500, 4000, 703);
    started(f, in);
    f.add(out, 6001);
    f.add(in, 6002);
    f.stitcher.flush_all();
    CHECK_FALSE(has_parent(f, out));
    CHECK(f.stitcher.counters().not_inferred_thread_hopping == 1);
  }
}

TEST_CASE("inference: an event-loop runtime is not trusted, even before it shows it") {
  // Node.js: a timer's calls that all land inside one lone request look like its handler's.
  Service svc;
  svc.proc->runtime = "libuv";
  StitchFixture f;
  auto in = svc.request(3000, 5000, 703);
  auto timer_call = svc.call(3500, 4000, 703);
  started(f, in);
  f.add(timer_call, 6001);
  f.add(in, 6002);
  f.stitcher.flush_all();
  CHECK_FALSE(has_parent(f, timer_call));
  CHECK(f.stitcher.counters().not_inferred_event_loop_runtime == 1);
}

TEST_CASE("inference: a client span never starts after its child on this node") {
  // The request went out in one long blocking send: the kernel stamps it when the send
  // returned, after the server had read its first bytes.
  Chain ch;
  ch.fc->request.start_ns = ch.ms->request.start_ns + 20;
  StitchFixture f;
  for (const auto& ex : ch.completion_order()) f.add(ex, 10'000);
  f.stitcher.flush_all();
  REQUIRE(f.traces.size() == 1);
  const Span* call = find_span(f.traces[0], ch.fc);
  const Span* child = find_span(f.traces[0], ch.ms);
  REQUIRE(call);
  REQUIRE(child);
  CHECK(call->start_ns == child->start_ns);
  const Attribute* bounded = find_attribute(*call, "weft.start_bounded_by_child");
  REQUIRE(bounded);
  CHECK(std::get<bool>(bounded->value));
  CHECK(f.stitcher.counters().start_bounded_by_child == 1);
  // An ordinary chain is left as the kernel timed it.
  Chain plain;
  StitchFixture g;
  for (const auto& ex : plain.completion_order()) g.add(ex, 10'000);
  g.stitcher.flush_all();
  CHECK(g.stitcher.counters().start_bounded_by_child == 0);
}

TEST_CASE("inference evidence: an exited process's threads and verdicts are forgotten") {
  InferenceEvidence evidence;
  evidence.opaque_server_io(700, 701);
  evidence.call_outside_requests(700, 702);
  evidence.opaque_server_io(800, 801);
  Service svc;  // pid 700: two threads read requests on different connections at once
  auto a = svc.request(1000, 3000, 703);
  auto b = svc.request(1500, 2500, 703);
  evidence.request_started(700, 703, a->connection->cookie, 1000);
  evidence.request_started(700, 703, b->connection->cookie, 1500);
  REQUIRE(evidence.judge(700, 701, nullptr) != Distrust::None);
  REQUIRE(evidence.processes() == 1);  // concurrent requests on one thread
  REQUIRE(evidence.threads() == 4);

  evidence.forget_processes({700});
  CHECK(evidence.judge(700, 701, nullptr) == Distrust::None);
  CHECK(evidence.judge(700, 702, nullptr) == Distrust::None);
  CHECK(evidence.processes() == 0);
  CHECK(evidence.threads() == 1);
  CHECK(evidence.judge(800, 801, nullptr) == Distrust::OpaqueServerTraffic);  // still alive
}
