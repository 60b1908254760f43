// ConnectionTracker's memory budget against the heap: what it counts per connection is what the
// connections really take from the allocator (mallinfo2), as buffers grow and shrink, and over
// budget the connection silent longest is freed first.
#include <doctest/doctest.h>
#include <malloc.h>

#include <memory>
#include <string>
#include <vector>

#include "http1_scenarios.h"

namespace weft::test {
namespace {

std::string redis_command(const std::string& key) {
  return "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
}

size_t heap_in_use() {
  return mallinfo2().uordblks;
}

// Heap taken by `count` connections after `script` ran on each (exchanges dropped, so only the
// tracker's state remains), next to what the tracker counts for them.
struct Measured {
  double heap_per_connection;
  double counted_per_connection;
};

template <typename Script>
Measured measure(size_t count, Script script) {
  auto cap = std::make_unique<Capture>();
  std::vector<std::unique_ptr<Socket>> sockets;
  sockets.reserve(count);
  for (size_t i = 0; i < count; ++i)
    sockets.push_back(std::make_unique<Socket>(*cap, 1000 + i, Role::Server));
  cap->exchanges.reserve(count * 2);
  const size_t before = heap_in_use();
  for (auto& s : sockets) {
    s->open();
    script(*s);
  }
  for (auto& ex : cap->exchanges) ex = Exchange{};  // keeps the vector's own block as it was
  const size_t heap = heap_in_use() - before;
  return {static_cast<double>(heap) / count,
          static_cast<double>(cap->tracker.memory_used()) / count};
}

// AddressSanitizer replaces malloc, and mallinfo2() then reports nothing: the heap cannot be
// measured in that build (scripts/sanitize.sh address), so the comparison is skipped there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kHeapMeasurable = false;
#else
constexpr bool kHeapMeasurable = true;
#endif

void check_close(const Measured& m) {
  if (!kHeapMeasurable) {
    MESSAGE("heap not measurable under AddressSanitizer: counted " << m.counted_per_connection);
    return;
  }
  CAPTURE(m.heap_per_connection);
  CAPTURE(m.counted_per_connection);
  CHECK(m.counted_per_connection >= 0.9 * m.heap_per_connection);
  CHECK(m.counted_per_connection <= 1.1 * m.heap_per_connection);
}

}  // namespace

TEST_CASE("ConnectionTracker memory: an idle HTTP/1 keep-alive connection costs what it counts") {
  check_close(measure(2000, [](Socket& s) {
    s.request(get("/idle"));
    s.response(ok("hello"));
  }));
}

TEST_CASE("ConnectionTracker memory: an idle Redis connection costs what it counts") {
  check_close(measure(2000, [](Socket& s) {
    s.request(redis_command("key"));
    s.response("$5\r\nvalue\r\n");
  }));
}

TEST_CASE("ConnectionTracker memory: a connection holding a request head costs what it counts") {
  check_close(measure(500, [](Socket& s) { s.request(open_head("/held", 3000)); }));
}

TEST_CASE(
    "ConnectionTracker memory: a connection still looking for its protocol costs what it "
    "counts") {
  check_close(measure(2000, [](Socket& s) { s.request("GET /still-no-line-end"); }));
}

TEST_CASE("ConnectionTracker memory: the count follows a buffer as it grows and is freed") {
  Capture cap;
  Socket s(cap, 1, Role::Server);
  s.open();
  s.request(get("/first"));
  s.response(ok("1"));
  const size_t idle = cap.tracker.memory_used();
  // A request head arriving in pieces: the buffer grows, and so does the count, by at least
  // the bytes held (a string's capacity may run ahead of its size).
  std::string head = open_head("/big", 48 * 1024);
  size_t counted_before = idle;
  for (size_t at = 0; at < head.size(); at += 4096) {
    s.request(std::string_view(head).substr(at, 4096));
    size_t held = std::min(head.size(), at + 4096);
    CHECK(cap.tracker.memory_used() >= held);
    CHECK(cap.tracker.memory_used() >= counted_before);
    counted_before = cap.tracker.memory_used();
  }
  CHECK(cap.tracker.memory_used() <= idle + 2 * head.size());
  // Once the message is read, its buffer goes back to the allocator and out of the count:
  // an idle connection does not keep its largest message's capacity.
  s.request("\r\n");
  s.response(ok("2"));
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(cap.tracker.memory_used() <= idle + stream::DataStream::kKeptCapacity + 64);
}

TEST_CASE("ConnectionTracker memory: over budget, the connection silent longest goes first") {
  // Five idle connections fit; the sixth pushes the budget over.
  Measured one = measure(1, [](Socket& s) {
    s.request(get("/x"));
    s.response(ok("x"));
  });
  conn::TrackerConfig config;
  config.memory_budget_bytes = static_cast<size_t>(5.5 * one.counted_per_connection);
  Capture cap(config);
  std::vector<std::unique_ptr<Socket>> sockets;
  for (uint64_t cookie = 1; cookie <= 5; ++cookie) {
    sockets.push_back(std::make_unique<Socket>(cap, cookie, Role::Server));
    sockets.back()->now_ns = cookie * 1'000'000'000;
    sockets.back()->request(get("/" + std::to_string(cookie)));
    sockets.back()->response(ok("x"));
  }
  CHECK(cap.counters().evicted == 0);
  // Connection 1 speaks again: 2 is now the one silent longest, then 3.
  sockets[0]->now_ns = 10'000'000'000;
  sockets[0]->request(get("/again"));
  sockets[0]->response(ok("x"));
  for (uint64_t cookie = 6; cookie <= 7; ++cookie) {
    sockets.push_back(std::make_unique<Socket>(cap, cookie, Role::Server));
    sockets.back()->now_ns = 10'000'000'000 + cookie;
    sockets.back()->request(get("/" + std::to_string(cookie)));
    sockets.back()->response(ok("x"));
  }
  CHECK(cap.finished == std::vector<uint64_t>{2, 3});
  CHECK(cap.counters().evicted == 2);
  CHECK(cap.tracker.connection_count() == 5);
  CHECK(cap.tracker.memory_used() <= config.memory_budget_bytes);
  // Every connection still tracked keeps tracing.
  sockets[0]->request(get("/still"));
  sockets[0]->response(ok("x"));
  CHECK(http_of(cap.exchanges.back()).target == "/still");
  CHECK(cap.exchanges.back().connection->cookie == 1);
}

}  // namespace weft::test
