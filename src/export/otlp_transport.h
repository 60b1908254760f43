// Sends one OTLP request (a protobuf message) to a backend and classifies the outcome the way
// the OTLP specification does: success, retryable (HTTP 429/502/503/504, gRPC UNAVAILABLE and
// friends, connection failures; with the backend's Retry-After hint), or failed for good.
//
// opentelemetry-cpp 1.19's exporters report only success or failure, not the status, so weft
// cannot retry by the rules through them. weft uses the layers below them instead: the
// library's protobuf types and recordables for encoding, its curl HTTP client for OTLP/HTTP,
// and grpc++ with the official service stubs for OTLP/gRPC.
#pragma once

#include <memory>
#include <string>

#include "export/export_config.h"
#include "export/export_queue.h"

namespace google::protobuf {
class Message;
}

namespace weft::exporter {

enum class Signal { Traces, Metrics };

class OtlpTransport {
 public:
  virtual ~OtlpTransport() = default;
  // Blocks for at most the configured timeout.
  virtual ExportResult send(const google::protobuf::Message& request) = 0;
  // From another thread: ends the send in flight, if any, with a failure.
  virtual void cancel() = 0;
  const std::string& endpoint() const { return endpoint_; }
  // The endpoint as weft prints it (errors, stderr): without credentials (redact_url).
  const std::string& display_endpoint() const { return display_endpoint_; }

  // Returns null with a one-line error when the settings cannot work (e.g. an unreadable
  // certificate for gRPC).
  static std::unique_ptr<OtlpTransport> create(Signal signal, const OtlpSignal& settings,
                                               std::string* error);

 protected:
  explicit OtlpTransport(std::string endpoint);

 private:
  std::string endpoint_;
  std::string display_endpoint_;
};

// The OTLP/JSON encoding of any OTLP message: protobuf's JSON mapping with the OTLP
// exceptions (trace and span ids as hex, not base64; enums as integers).
std::string otlp_message_to_json(const google::protobuf::Message& message);

// An HTTP Retry-After value (delay-seconds or an HTTP-date) as a delay from now; 0 when absent
// or unreadable.
std::chrono::milliseconds parse_retry_after(const std::string& value);

// gzip (RFC 1952) of `data`, for Content-Encoding: gzip.
std::string gzip_compress(const std::string& data);

}  // namespace weft::exporter
