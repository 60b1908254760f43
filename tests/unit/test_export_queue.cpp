// The export queue and thread in front of an exporter: batching, bounds, retries, shutdown.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "export/delivery_report.h"
#include "export/export_queue.h"

using namespace std::chrono_literals;
using weft::exporter::BatchExporter;
using weft::exporter::DeliveryReporter;
using weft::exporter::ExportQueue;
using weft::exporter::ExportResult;
using weft::exporter::QueueConfig;

namespace {

weft::trace::Trace trace_of(size_t spans) {
  weft::trace::Trace t;
  t.spans.resize(spans);
  return t;
}

// A backend that answers from a script: the first `failures` calls fail with `failure`.
struct ScriptedBackend : BatchExporter {
  ExportResult::Kind failure = ExportResult::Kind::Retryable;
  int failures = 0;
  std::chrono::milliseconds retry_after{0};
  uint64_t rejected = 0;  // per accepted batch (an OTLP partial success)
  std::atomic<int> calls{0};
  std::atomic<size_t> spans_received{0};
  std::mutex m;
  std::vector<size_t> batch_sizes;

  ExportResult export_batch(const std::vector<weft::trace::Trace>& batch) override {
    int n = calls++;
    if (n < failures) return {failure, retry_after, "scripted failure " + std::to_string(n)};
    size_t spans = 0;
    for (const auto& t : batch) spans += t.spans.size();
    spans_received += spans;
    std::lock_guard lock(m);
    batch_sizes.push_back(spans);
    ExportResult ok;
    ok.rejected = rejected;
    if (rejected) ok.error = "rejected by the backend";
    return ok;
  }
  std::string destination() const override { return "scripted"; }
};

// Every span pushed is accounted for once the queue has shut down.
uint64_t accounted(const weft::exporter::QueueCounters& c) {
  return c.spans_exported + c.spans_dropped_full + c.spans_dropped_refused + c.spans_unsent_at_exit;
}

QueueConfig fast_config() {
  QueueConfig c;
  c.batch_spans = 10;
  c.flush_interval = 20ms;
  c.initial_backoff = 5ms;
  c.max_backoff = 20ms;
  return c;
}

template <typename Pred>
bool eventually(Pred p, std::chrono::milliseconds limit = 2000ms) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (p()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return p();
}

}  // namespace

TEST_CASE("export queue: traces leave in batches of at most batch_spans, and by interval") {
  auto backend = std::make_unique<ScriptedBackend>();
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  for (int i = 0; i < 7; ++i) q.push(trace_of(3));  // 21 spans: batches of 9, 9, then 3 by interval
  CHECK(eventually([&] { return b->spans_received == 21; }));
  q.shutdown(100ms);
  std::lock_guard lock(b->m);
  for (size_t n : b->batch_sizes) CHECK(n <= 10);
  CHECK(q.counters().spans_exported == 21);
  CHECK(q.counters().queued_spans == 0);
}

TEST_CASE("export queue: retryable failures are retried with backoff until they succeed") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 3;
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  q.push(trace_of(4));
  CHECK(eventually([&] { return b->spans_received == 4; }));
  q.shutdown(100ms);
  auto c = q.counters();
  CHECK(c.export_failures == 3);
  CHECK(c.retries == 3);
  CHECK(c.spans_exported == 4);
  CHECK(c.spans_dropped_refused + c.spans_unsent_at_exit == 0);
  CHECK(accounted(c) == 4);
  CHECK(q.last_error() == "scripted failure 2");
}

TEST_CASE("export queue: a non-retryable failure drops the batch and counts it") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 1;
  backend->failure = ExportResult::Kind::Failed;
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  q.push(trace_of(5));
  CHECK(eventually([&] { return q.counters().spans_dropped_refused == 5; }));
  q.push(trace_of(2));  // the next batch goes through
  CHECK(eventually([&] { return b->spans_received == 2; }));
  q.shutdown(100ms);
  CHECK(q.counters().retries == 0);
  CHECK(q.counters().spans_unsent_at_exit == 0);
  CHECK(accounted(q.counters()) == 7);
}

TEST_CASE("export queue: while the backend is down memory stays bounded and the oldest go") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 1'000'000;  // down for the whole test
  QueueConfig c = fast_config();
  c.max_spans = 50;
  ExportQueue q(c, std::move(backend));
  for (int i = 0; i < 100; ++i) q.push(trace_of(2));
  auto counters = q.counters();
  // The queue holds max_spans; the batch the export thread is retrying is counted on top.
  CHECK(counters.queued_spans <= 50 + 10);
  CHECK(counters.spans_dropped_full >= 100 * 2 - 50 - 10);  // all but the queue and one batch
  q.shutdown(0ms);
  counters = q.counters();
  CHECK(counters.spans_exported == 0);
  CHECK(counters.spans_dropped_refused == 0);  // never refused: it could not be reached
  CHECK(counters.spans_unsent_at_exit > 0);
  CHECK(accounted(counters) == 200);
}

TEST_CASE("export queue: export resumes by itself when the backend comes back") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 5;
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  for (int i = 0; i < 3; ++i) q.push(trace_of(1));
  CHECK(eventually([&] { return b->spans_received == 3; }));
  q.shutdown(100ms);
  CHECK(q.counters().spans_exported == 3);
}

TEST_CASE("export queue: Retry-After longer than the backoff is honoured") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 1;
  backend->retry_after = 150ms;
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  auto start = std::chrono::steady_clock::now();
  q.push(trace_of(1));
  CHECK(eventually([&] { return b->spans_received == 1; }));
  CHECK(std::chrono::steady_clock::now() - start >= 150ms);
  q.shutdown(100ms);
}

TEST_CASE("export queue: shutdown exports what is queued, and gives up at its deadline") {
  {
    auto backend = std::make_unique<ScriptedBackend>();
    ScriptedBackend* b = backend.get();
    QueueConfig c = fast_config();
    c.flush_interval = 10s;  // only shutdown makes the batch leave
    ExportQueue q(c, std::move(backend));
    q.push(trace_of(3));
    q.shutdown(500ms);
    CHECK(b->spans_received == 3);
    CHECK(q.counters().spans_exported == 3);
  }
  {
    auto backend = std::make_unique<ScriptedBackend>();
    backend->failures = 1'000'000;
    QueueConfig c = fast_config();
    c.initial_backoff = 1s;
    ExportQueue q(c, std::move(backend));
    q.push(trace_of(3));
    auto start = std::chrono::steady_clock::now();
    q.shutdown(50ms);
    CHECK(std::chrono::steady_clock::now() - start < 900ms);
    CHECK(q.counters().spans_unsent_at_exit == 3);
    CHECK(accounted(q.counters()) == 3);
  }
}

TEST_CASE(
    "export queue: spans a backend rejects in a partial success count as dropped, not exported") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->rejected = 2;
  ScriptedBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  q.push(trace_of(5));
  CHECK(eventually([&] { return b->spans_received == 5; }));
  q.shutdown(100ms);
  auto c = q.counters();
  CHECK(c.spans_exported == 3);
  CHECK(c.spans_dropped_refused == 2);
  CHECK(accounted(c) == 5);
  CHECK(c.retries == 0);
  CHECK(q.last_error() == "rejected by the backend");
}

namespace {

// A backend that never answers until the request is cancelled.
struct HungBackend : BatchExporter {
  std::mutex m;
  std::condition_variable cv;
  bool cancelled = false;
  std::atomic<int> calls{0};
  ExportResult export_batch(const std::vector<weft::trace::Trace>&) override {
    ++calls;
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return cancelled; });
    return {ExportResult::Kind::Retryable, {}, "cancelled"};
  }
  void cancel() override {
    std::lock_guard lock(m);
    cancelled = true;
    cv.notify_all();
  }
  std::string destination() const override { return "hung"; }
};

}  // namespace

TEST_CASE("export queue: shutdown cancels a request the backend never answers, at its deadline") {
  auto backend = std::make_unique<HungBackend>();
  HungBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  q.push(trace_of(4));
  CHECK(eventually([&] { return b->calls == 1; }));
  auto t0 = std::chrono::steady_clock::now();
  q.shutdown(100ms);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 90ms);
  CHECK(took < 1500ms);
  CHECK(b->calls == 1);  // no new attempt after the deadline
  CHECK(q.counters().spans_unsent_at_exit == 4);
  CHECK(q.counters().spans_exported == 0);
}

TEST_CASE("export queue: the batch being sent counts as queued until it is delivered") {
  auto backend = std::make_unique<HungBackend>();
  HungBackend* b = backend.get();
  ExportQueue q(fast_config(), std::move(backend));
  q.push(trace_of(4));
  CHECK(eventually([&] { return b->calls == 1; }));
  CHECK(q.counters().queued_spans == 4);  // in flight, not yet exported nor dropped
  q.shutdown(10ms);
  CHECK(q.counters().queued_spans == 0);
  CHECK(accounted(q.counters()) == 4);
}

TEST_CASE("export queue: the reporter hears every attempt, on the export thread") {
  auto backend = std::make_unique<ScriptedBackend>();
  backend->failures = 2;
  ScriptedBackend* b = backend.get();
  std::vector<std::string> lines;
  auto reporter = std::make_unique<DeliveryReporter>(
      "scripted", [&](const std::string& line) { lines.push_back(line); });
  ExportQueue q(fast_config(), std::move(backend), std::move(reporter));
  q.push(trace_of(1));
  CHECK(eventually([&] { return b->spans_received == 1; }));
  q.shutdown(100ms);  // joins the export thread: `lines` is no longer written
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] ==
        "weft run: export failing: scripted failure 0 (retrying; traces wait in the queue)");
  CHECK(lines[1].starts_with(
      "weft run: export to scripted works again: a batch was accepted after 2 failed attempts"));
}
