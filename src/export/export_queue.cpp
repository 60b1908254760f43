#include "export/export_queue.h"

#include <algorithm>

#include "export/delivery_report.h"

namespace weft::exporter {
namespace {

using Clock = std::chrono::steady_clock;

size_t approx_bytes(const trace::AttributeValue& v) {
  const auto* text = std::get_if<std::string>(&v);
  return text ? text->capacity() : 0;
}

}  // namespace

size_t approx_bytes(const trace::Trace& t) {
  size_t n = sizeof(t) + t.spans.capacity() * sizeof(trace::Span);
  for (const auto& s : t.spans) {
    n += s.name.capacity() + s.tracestate.capacity() +
         s.attributes.capacity() * sizeof(trace::Attribute);
    for (const auto& a : s.attributes) n += a.key.heap_bytes() + approx_bytes(a.value);
  }
  return n;
}

ExportQueue::ExportQueue(QueueConfig config, std::unique_ptr<BatchExporter> exporter)
    : ExportQueue(config, std::move(exporter), nullptr) {}

ExportQueue::ExportQueue(QueueConfig config, std::unique_ptr<BatchExporter> exporter,
                         std::unique_ptr<DeliveryReporter> reporter)
    : config_(config),
      exporter_(std::move(exporter)),
      reporter_(std::move(reporter)),
      thread_([this] {
        run();
        std::lock_guard lock(mutex_);
        finished_ = true;
        wake_.notify_all();
      }) {}

ExportQueue::~ExportQueue() {
  shutdown(std::chrono::milliseconds(0));
}

void ExportQueue::push(trace::Trace&& t) {
  // Exporters need neither the exchange nor its headers: free them now, not after export.
  for (auto& s : t.spans) s.exchange.reset();
  size_t spans = t.spans.size();
  size_t bytes = approx_bytes(t);
  bool full_batch = false, was_empty = false;
  {
    std::lock_guard lock(mutex_);
    was_empty = queue_.empty();
    if (was_empty) oldest_since_ = Clock::now();
    queue_.push_back({std::move(t), bytes});
    queued_spans_ += spans;
    queued_bytes_ += bytes;
    while ((queued_spans_ > config_.max_spans || queued_bytes_ > config_.max_bytes) &&
           queue_.size() > 1)
      drop_oldest();
    full_batch = queued_spans_ >= config_.batch_spans;
  }
  if (full_batch || was_empty) wake_.notify_all();  // the export thread, whichever wait it is in
}

void ExportQueue::drop_oldest() {
  const Entry& e = queue_.front();
  queued_spans_ -= e.trace.spans.size();
  queued_bytes_ -= e.bytes;
  counters_.spans_dropped_full += e.trace.spans.size();
  queue_.pop_front();
}

std::vector<trace::Trace> ExportQueue::take_batch() {
  std::vector<trace::Trace> batch;
  batch.reserve(std::min(queue_.size(), config_.batch_spans));  // no regrowth per batch
  size_t spans = 0;
  while (!queue_.empty() &&
         (batch.empty() || spans + queue_.front().trace.spans.size() <= config_.batch_spans)) {
    spans += queue_.front().trace.spans.size();
    queued_bytes_ -= queue_.front().bytes;
    batch.push_back(std::move(queue_.front().trace));
    queue_.pop_front();
  }
  queued_spans_ -= spans;
  oldest_since_ = Clock::now();
  return batch;
}

// Tries until the batch is exported, refused for good, or shutdown's deadline passes.
bool ExportQueue::deliver(std::vector<trace::Trace>& batch, size_t spans) {
  auto backoff = config_.initial_backoff;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (Clock::now() >= give_up_at_) {  // shutdown's time is up: no new attempt
        counters_.spans_unsent_at_exit += spans;
        return false;
      }
    }
    ExportResult r = exporter_->export_batch(batch);
    if (reporter_) reporter_->attempt(r, spans, Clock::now());
    std::unique_lock lock(mutex_);
    if (r.kind == ExportResult::Kind::Ok) {
      uint64_t rejected = std::min<uint64_t>(r.rejected, spans);
      counters_.spans_exported += spans - rejected;
      counters_.spans_dropped_refused += rejected;
      if (rejected) last_error_ = r.error;
      return true;
    }
    ++counters_.export_failures;
    last_error_ = r.error;
    if (r.kind == ExportResult::Kind::Failed) {
      counters_.spans_dropped_refused += spans;
      return false;
    }
    auto retry_at = Clock::now() + std::max(backoff, r.retry_after);
    // Shutdown moves give_up_at_ from "never" to its deadline and wakes this wait.
    while (Clock::now() < retry_at) {
      if (retry_at > give_up_at_) {
        counters_.spans_unsent_at_exit += spans;
        return false;
      }
      wake_.wait_until(lock, retry_at);
    }
    ++counters_.retries;
    backoff = std::min(config_.max_backoff, backoff * 2);
  }
}

void ExportQueue::run() {
  for (;;) {
    std::vector<trace::Trace> batch;
    {
      std::unique_lock lock(mutex_);
      // A trace that arrives into an empty queue wakes this wait (push), so the deadline is
      // always its own arrival plus the interval, never a slice that began before it.
      auto due = [&] {
        return stopping_ || queued_spans_ >= config_.batch_spans ||
               (!queue_.empty() && Clock::now() - oldest_since_ >= config_.flush_interval);
      };
      if (queue_.empty())
        wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      else
        wake_.wait_until(lock, oldest_since_ + config_.flush_interval, due);
      if (queue_.empty()) {
        if (stopping_) return;
        continue;
      }
      if (!due()) continue;
      batch = take_batch();
      for (const auto& t : batch) in_flight_spans_ += t.spans.size();
    }
    size_t spans = 0;
    for (const auto& t : batch) spans += t.spans.size();
    deliver(batch, spans);
    std::lock_guard lock(mutex_);
    in_flight_spans_ = 0;
  }
}

void ExportQueue::shutdown(std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    give_up_at_ = std::min(give_up_at_, Clock::now() + deadline);
  }
  wake_.notify_all();
  {
    // A request still in flight when the deadline passes (a backend that does not answer) is
    // abandoned, so that stopping takes the deadline, not the request's own timeout.
    std::unique_lock lock(mutex_);
    if (!wake_.wait_until(lock, give_up_at_, [&] { return finished_; })) {
      lock.unlock();
      exporter_->cancel();
    }
  }
  thread_.join();
  std::lock_guard lock(mutex_);
  for (const auto& e : queue_) counters_.spans_unsent_at_exit += e.trace.spans.size();
  queue_.clear();
  queued_spans_ = 0;
  queued_bytes_ = 0;
}

QueueCounters ExportQueue::counters() const {
  std::lock_guard lock(mutex_);
  QueueCounters c = counters_;
  c.queued_spans = queued_spans_ + in_flight_spans_;
  c.queued_bytes = queued_bytes_;
  return c;
}

std::string ExportQueue::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

}  // namespace weft::exporter
