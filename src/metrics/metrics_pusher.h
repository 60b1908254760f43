// OTLP metrics: every interval, the registry's cumulative state leaves as one
// ExportMetricsServiceRequest, on a thread of its own. A failed push is counted and not
// retried: values are cumulative, so the next push carries everything the lost one had.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "export/otlp_transport.h"
#include "metrics/metrics_registry.h"
#include "metrics/otlp_metrics.h"

namespace weft::metrics {

struct PushCounters {
  uint64_t pushes = 0;
  uint64_t failures = 0;
  std::string last_error;
};

class MetricsPusher {
 public:
  MetricsPusher(MetricsRegistry& registry, std::unique_ptr<exporter::OtlpTransport> transport,
                OtlpMetricsOptions options, std::chrono::milliseconds interval);
  // Stops the thread after one last push (call after the registry's last update).
  ~MetricsPusher();
  void stop();
  PushCounters counters() const;

 private:
  void run();
  void push();

  MetricsRegistry& registry_;
  std::unique_ptr<exporter::OtlpTransport> transport_;
  OtlpMetricsOptions options_;
  std::chrono::milliseconds interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool finished_ = false;
  static constexpr std::chrono::milliseconds kLastPushTime{2000};
  PushCounters counters_;
  std::thread thread_;
};

}  // namespace weft::metrics
