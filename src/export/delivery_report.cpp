#include "export/delivery_report.h"

#include <cstdio>

namespace weft::exporter {
namespace {

std::string seconds(DeliveryReporter::Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.0f s", std::chrono::duration<double>(d).count());
  return text;
}

std::string plural(uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

}  // namespace

DeliveryReporter::DeliveryReporter(std::string destination, Print print, Clock::duration period)
    : destination_(std::move(destination)), print_(std::move(print)), period_(period) {}

void DeliveryReporter::attempt(const ExportResult& r, uint64_t spans, Clock::time_point now) {
  if (r.kind != ExportResult::Kind::Ok || r.rejected > 0) return problem(r, spans, now);
  if (!failing_) return;
  failing_ = false;
  std::string after = failed_attempts_ ? " after " + plural(failed_attempts_, "failed attempt") +
                                             " over " + seconds(now - failing_since_)
                                       : " in full";
  print_("weft run: export to " + destination_ + " works again: a batch was accepted" + after);
}

void DeliveryReporter::problem(const ExportResult& r, uint64_t spans, Clock::time_point now) {
  bool failed = r.kind != ExportResult::Kind::Ok;
  uint64_t refused = r.kind == ExportResult::Kind::Failed ? spans : std::min(r.rejected, spans);
  failed_attempts_ += failed;
  failed_since_line_ += failed;
  refused_spans_since_line_ += refused;
  last_error_ = r.error;
  if (failing_) {
    if (now - last_line_ >= period_) summarise_since_last_line(now);
    return;
  }
  failing_ = true;
  failing_since_ = now;
  last_line_ = now;
  failed_attempts_ = failed;
  failed_since_line_ = refused_spans_since_line_ = 0;
  std::string what =
      r.kind == ExportResult::Kind::Retryable
          ? "export failing: " + r.error + " (retrying; traces wait in the queue)"
      : r.kind == ExportResult::Kind::Failed
          ? "export refused: " + r.error + " (" + plural(spans, "span") + " dropped, not retried)"
          : "export partly refused: " + r.error;
  print_("weft run: " + what);
}

void DeliveryReporter::summarise_since_last_line(Clock::time_point now) {
  std::string counts;
  if (failed_since_line_) counts = plural(failed_since_line_, "failed attempt");
  if (refused_spans_since_line_)
    counts += (counts.empty() ? "" : ", ") + plural(refused_spans_since_line_, "span") + " refused";
  print_("weft run: export still failing: " + counts + " in the last " + seconds(now - last_line_) +
         "; last: " + last_error_);
  last_line_ = now;
  failed_since_line_ = refused_spans_since_line_ = 0;
}

std::string redact_url(const std::string& url) {
  std::string out = url;
  size_t scheme = out.find("://");
  size_t host = scheme == std::string::npos ? 0 : scheme + 3;
  size_t path = out.find_first_of("/?#", host);
  size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at != std::string::npos && at >= host) out.erase(host, at + 1 - host);
  size_t query = out.find('?');
  if (query != std::string::npos) {
    size_t fragment = out.find('#', query);
    out.replace(query, (fragment == std::string::npos ? out.size() : fragment) - query,
                "?REDACTED");
  }
  return out;
}

}  // namespace weft::exporter
