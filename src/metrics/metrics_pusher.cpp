#include "metrics/metrics_pusher.h"

// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::metrics {
namespace {

uint64_t wall_now_ns() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

}  // namespace

MetricsPusher::MetricsPusher(MetricsRegistry& registry,
                             std::unique_ptr<exporter::OtlpTransport> transport,
                             OtlpMetricsOptions options, std::chrono::milliseconds interval)
    : registry_(registry),
      transport_(std::move(transport)),
      options_(std::move(options)),
      interval_(interval),
      thread_([this] { run(); }) {}

MetricsPusher::~MetricsPusher() {
  stop();
}

void MetricsPusher::stop() {
  {
    std::unique_lock lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
    wake_.notify_all();
    // The last push gets a moment; a backend that does not answer must not hold up exit.
    if (!wake_.wait_for(lock, kLastPushTime, [&] { return finished_; })) {
      lock.unlock();
      transport_->cancel();
    }
  }
  thread_.join();
}

void MetricsPusher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    bool stopping = wake_.wait_for(lock, interval_, [&] { return stopping_; });
    lock.unlock();
    push();  // the last one after stop: the final counts
    lock.lock();
    if (stopping) {
      finished_ = true;
      wake_.notify_all();
      return;
    }
  }
}

void MetricsPusher::push() {
  opentelemetry::proto::collector::metrics::v1::ExportMetricsServiceRequest request;
  to_otlp(registry_.snapshot(), wall_now_ns(), options_, &request);
  exporter::ExportResult r = transport_->send(request);
  std::lock_guard lock(mutex_);
  ++counters_.pushes;
  if (r.kind != exporter::ExportResult::Kind::Ok) {
    ++counters_.failures;
    counters_.last_error = r.error;
  }
}

PushCounters MetricsPusher::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

}  // namespace weft::metrics
