// Sends one OTLP request (a protobuf message) to a backend and classifies the outcome the way
// the OTLP specification does: success, retryable (HTTP 429/502/503/504, gRPC UNAVAILABLE and
// friends, connection failures; with the backend's Retry-After hint), or failed for good.
//
// opentelemetry-cpp 1.19's exporters report only success or failure, not the status, so weft
// cannot retry by the rules through them. weft uses the layers below them instead: its curl
// HTTP client for OTLP/HTTP and grpc++'s generic stub for OTLP/gRPC. Requests arrive encoded
// (traces: weft's own encoder, otlp_encoding.h; metrics: protobuf messages).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "export/export_config.h"
#include "export/export_queue.h"

namespace google::protobuf {
class Message;
}

namespace weft::exporter {

enum class Signal { Traces, Metrics };

// What a request's body is: OTLP/JSON for http/json, protobuf for http/protobuf and gRPC.
enum class Encoding { Protobuf, Json };

class OtlpTransport {
 public:
  virtual ~OtlpTransport() = default;
  Encoding encoding() const { return encoding_; }
  // One Export*ServiceRequest of this transport's signal, already in encoding(). Blocks for at
  // most the configured timeout.
  virtual ExportResult send_encoded(std::string_view request) = 0;
  // Encodes `request` as encoding() says, then sends it.
  ExportResult send(const google::protobuf::Message& request);
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
  OtlpTransport(std::string endpoint, Encoding encoding);

 private:
  std::string endpoint_;
  Encoding encoding_;
  std::string display_endpoint_;
};

// The OTLP/JSON encoding of any OTLP message: protobuf's JSON mapping with the OTLP
// exceptions (trace and span ids as hex, not base64; enums as integers).
std::string otlp_message_to_json(const google::protobuf::Message& message);

// An HTTP Retry-After value (delay-seconds or an HTTP-date) as a delay from now; 0 when absent
// or unreadable.
std::chrono::milliseconds parse_retry_after(const std::string& value);

// gzip (RFC 1952) of `data`, for Content-Encoding: gzip.
std::string gzip_compress(std::string_view data);

}  // namespace weft::exporter
