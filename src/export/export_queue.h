// weft's own bounded queue and thread in front of an exporter: the pipeline thread hands over
// finished traces and never waits; the export thread batches them, retries retryable failures
// with backoff, and when the backend cannot keep up the oldest traces are dropped and counted.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "trace/stitcher.h"

namespace weft::exporter {

struct ExportResult {
  enum class Kind { Ok, Retryable, Failed };
  Kind kind = Kind::Ok;
  std::chrono::milliseconds retry_after{0};  // the backend's own hint (Retry-After), if any
  std::string error;
  // Ok, but the backend refused this many items of the request (OTLP partial success); `error`
  // says why. Not retried: the backend has decided.
  uint64_t rejected = 0;
};

// What the export thread calls with each batch.
class BatchExporter {
 public:
  virtual ~BatchExporter() = default;
  virtual ExportResult export_batch(const std::vector<trace::Trace>& batch) = 0;
  // From another thread: abandon the request in flight (shutdown's deadline has passed), so
  // export_batch returns soon with a failure.
  virtual void cancel() {}
  // Where the traces go, for people: a URL without credentials, a file, "the console".
  virtual std::string destination() const = 0;
};

class DeliveryReporter;

struct QueueConfig {
  size_t max_spans = 100'000;    // spans waiting at most; beyond, the oldest traces go
  size_t max_bytes = 64u << 20;  // and their approximate memory, likewise
  size_t batch_spans = 512;      // a batch leaves when it has this many spans...
  std::chrono::milliseconds flush_interval{500};  // ...or when the oldest waited this long
  std::chrono::milliseconds initial_backoff{250};
  // Short enough that export resumes within seconds of a backend's return; an attempt every
  // few seconds costs nothing while it is down.
  std::chrono::milliseconds max_backoff{5'000};
};

// Every span pushed ends up in exactly one of exported, dropped_full, dropped_refused and
// unsent_at_exit once shutdown() has returned; until then the rest are queued or in flight.
struct QueueCounters {
  uint64_t spans_exported = 0;      // accepted by the backend (minus partial-success rejections)
                                    // or written (file, console)
  uint64_t spans_dropped_full = 0;  // queue full: the oldest traces were dropped
  // Refused for good: a status retrying would not change, a partial-success rejection, a
  // write that cannot succeed (a closed console).
  uint64_t spans_dropped_refused = 0;
  // Still queued, or being retried, when shutdown's drain time ran out.
  uint64_t spans_unsent_at_exit = 0;
  uint64_t export_failures = 0;  // failed attempts, retryable or not
  uint64_t retries = 0;
  uint64_t queued_spans = 0;  // waiting now, including the batch being sent
  uint64_t queued_bytes = 0;  // approximate memory of those waiting in the queue
};

// What a queued trace holds in memory, roughly: for the queue's byte bound.
size_t approx_bytes(const trace::Trace& trace);

class ExportQueue {
 public:
  ExportQueue(QueueConfig config, std::unique_ptr<BatchExporter> exporter);
  // `reporter` hears the outcome of every attempt on the export thread (stderr lines while a
  // backend fails).
  ExportQueue(QueueConfig config, std::unique_ptr<BatchExporter> exporter,
              std::unique_ptr<DeliveryReporter> reporter);
  ~ExportQueue();

  // Never blocks on the exporter.
  void push(trace::Trace&& trace);
  // Exports what is queued, retrying until `deadline` passes; then drops the rest (counted).
  void shutdown(std::chrono::milliseconds deadline);
  QueueCounters counters() const;
  // The last export error, for the summary (empty when none).
  std::string last_error() const;

 private:
  void run();
  struct Entry {
    trace::Trace trace;
    size_t bytes;
  };
  std::vector<trace::Trace> take_batch();  // with the lock held
  void drop_oldest();                      // with the lock held
  bool deliver(std::vector<trace::Trace>& batch, size_t spans);

  QueueConfig config_;
  std::unique_ptr<BatchExporter> exporter_;
  std::unique_ptr<DeliveryReporter> reporter_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Entry> queue_;
  size_t queued_spans_ = 0;
  size_t queued_bytes_ = 0;
  size_t in_flight_spans_ = 0;  // the batch deliver() is working on
  std::chrono::steady_clock::time_point oldest_since_{};
  bool stopping_ = false;
  bool finished_ = false;  // the export thread has returned
  std::chrono::steady_clock::time_point give_up_at_ = std::chrono::steady_clock::time_point::max();
  QueueCounters counters_;
  std::string last_error_;
  std::thread thread_;
};

}  // namespace weft::exporter
