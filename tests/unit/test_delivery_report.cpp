// Export failures told as they happen: at once, then at most once a period, and recovery.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "export/delivery_report.h"

using namespace std::chrono_literals;
using weft::exporter::DeliveryReporter;
using weft::exporter::ExportResult;
using weft::exporter::redact_url;

namespace {

struct Reported {
  std::vector<std::string> lines;
  DeliveryReporter reporter{"http://collector:4318/v1/traces",
                            [this](const std::string& line) { lines.push_back(line); }, 30s};
  DeliveryReporter::Clock::time_point t0{};

  void at(std::chrono::milliseconds when, ExportResult r, uint64_t spans = 10) {
    reporter.attempt(r, spans, t0 + when);
  }
};

ExportResult retryable(const std::string& error) {
  return {ExportResult::Kind::Retryable, {}, error};
}
ExportResult refused(const std::string& error) {
  return {ExportResult::Kind::Failed, {}, error};
}
ExportResult ok() {
  return {};
}

}  // namespace

TEST_CASE("delivery report: the first failure at once, then one line per period, then recovery") {
  Reported r;
  r.at(0ms, ok());
  CHECK(r.lines.empty());  // nothing to say while all is well
  r.at(1'000ms, retryable("POST http://collector:4318/v1/traces: connection failed"));
  REQUIRE(r.lines.size() == 1);
  CHECK(r.lines[0] ==
        "weft run: export failing: POST http://collector:4318/v1/traces: connection failed "
        "(retrying; traces wait in the queue)");
  // Retries every few seconds: no line until 30 s have passed since the last one.
  for (int s = 2; s <= 30; s += 5) r.at(std::chrono::seconds(s), retryable("connection failed"));
  CHECK(r.lines.size() == 1);
  r.at(31'000ms, retryable("POST http://collector:4318/v1/traces: HTTP 503"));
  REQUIRE(r.lines.size() == 2);
  CHECK(r.lines[1] ==
        "weft run: export still failing: 7 failed attempts in the last 30 s; last: POST "
        "http://collector:4318/v1/traces: HTTP 503");
  r.at(40'000ms, retryable("HTTP 503"));
  CHECK(r.lines.size() == 2);
  r.at(45'000ms, ok());
  REQUIRE(r.lines.size() == 3);
  CHECK(r.lines[2] ==
        "weft run: export to http://collector:4318/v1/traces works again: a batch was accepted "
        "after 9 failed attempts over 44 s");
  r.at(46'000ms, ok());
  CHECK(r.lines.size() == 3);
  // A new outage is told at once again.
  r.at(50'000ms, retryable("timed out"));
  CHECK(r.lines.size() == 4);
}

TEST_CASE("delivery report: refusals name the spans dropped") {
  Reported r;
  r.at(0ms, refused("POST http://collector:4318/v1/traces: HTTP 401"), 12);
  REQUIRE(r.lines.size() == 1);
  CHECK(r.lines[0] ==
        "weft run: export refused: POST http://collector:4318/v1/traces: HTTP 401 (12 spans "
        "dropped, not retried)");
  r.at(10s, refused("HTTP 401"), 5);
  r.at(31s, refused("HTTP 401"), 3);
  REQUIRE(r.lines.size() == 2);
  CHECK(r.lines[1] ==
        "weft run: export still failing: 2 failed attempts, 8 spans refused in the last 31 s; "
        "last: HTTP 401");
  ExportResult partial;
  partial.rejected = 4;
  partial.error = "the backend rejected 4 items";
  Reported p;
  p.at(0ms, partial);
  REQUIRE(p.lines.size() == 1);
  CHECK(p.lines[0] == "weft run: export partly refused: the backend rejected 4 items");
  p.at(1s, ok());
  REQUIRE(p.lines.size() == 2);
  CHECK(p.lines[1] ==
        "weft run: export to http://collector:4318/v1/traces works again: a batch was accepted "
        "in full");
}

TEST_CASE("delivery report: URLs are printed without credentials") {
  CHECK(redact_url("https://user:s3cret@otlp.example.com:4318/v1/traces") ==
        "https://otlp.example.com:4318/v1/traces");
  CHECK(redact_url("http://token@collector:4318") == "http://collector:4318");
  CHECK(redact_url("https://otlp.example.com/v1/traces?api_key=s3cret&x=1") ==
        "https://otlp.example.com/v1/traces?REDACTED");
  CHECK(redact_url("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces");
  CHECK(redact_url("http://collector:4318/a@b") == "http://collector:4318/a@b");
}
