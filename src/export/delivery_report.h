// Tells people, as it happens, that exports are failing or refused and when they work again,
// instead of only in the summary at exit: the first failure at once, then at most one line
// per period with what happened since, and one line when a batch is accepted again.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "export/export_queue.h"

namespace weft::exporter {

class DeliveryReporter {
 public:
  using Clock = std::chrono::steady_clock;
  using Print = std::function<void(const std::string& line)>;

  // `destination`: where the traces go, without credentials (BatchExporter::destination).
  DeliveryReporter(std::string destination, Print print,
                   Clock::duration period = std::chrono::seconds(30));

  // The outcome of one attempt to export `spans` spans, on the export thread.
  void attempt(const ExportResult& result, uint64_t spans, Clock::time_point now);

 private:
  void problem(const ExportResult& result, uint64_t spans, Clock::time_point now);
  void summarise_since_last_line(Clock::time_point now);

  std::string destination_;
  Print print_;
  Clock::duration period_;
  bool failing_ = false;
  Clock::time_point failing_since_{};
  Clock::time_point last_line_{};
  uint64_t failed_attempts_ = 0;  // since failing began
  // Since the last line printed:
  uint64_t failed_since_line_ = 0;
  uint64_t refused_spans_since_line_ = 0;
  std::string last_error_;
};

// `url` without what must not be printed: user:password before the host, and the query's
// values (some backends take API keys there).
std::string redact_url(const std::string& url);

}  // namespace weft::exporter
