// Where `weft run` sends its telemetry and how: the exporter, the OTLP endpoints per signal,
// resource additions, the metrics endpoint and the export queue. Three layers, each read the
// same way: the standard OTEL_* environment variables, a JSON config file (--config), and
// flags. A value set in a higher layer wins (flags > file > environment); inside one layer a
// signal-specific setting (OTEL_EXPORTER_OTLP_TRACES_*) wins over the generic one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace weft::exporter {

using KeyValues = std::map<std::string, std::string>;

// Settings of one OTLP signal (traces or metrics) as one layer states them: unset is nullopt.
struct OtlpSignalLayer {
  std::optional<std::string> endpoint;  // used as is (no /v1/<signal> appended)
  std::optional<std::string> protocol;
  KeyValues headers;
  std::optional<std::string> compression;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> certificate;
  std::optional<std::string> client_key;          // mTLS: weft's private key (PEM file)
  std::optional<std::string> client_certificate;  // mTLS: weft's certificate chain (PEM file)
};

// One source of configuration. Every field is optional: unset means "this layer is silent".
struct ConfigLayer {
  std::string origin;  // "environment", "config file /etc/weft.json", "flags": for messages
  std::optional<std::string> exporter;
  std::optional<std::string> output_path;
  // Generic OTLP settings; `endpoint` is the base URL, /v1/traces and /v1/metrics are appended
  // for HTTP.
  OtlpSignalLayer otlp;
  OtlpSignalLayer traces;
  OtlpSignalLayer metrics;
  KeyValues resource_attributes;
  std::optional<std::string> service_name;
  std::optional<std::string> metrics_address;
  std::optional<std::chrono::milliseconds> metrics_interval;
  std::optional<size_t> queue_max_spans;
  std::optional<size_t> queue_max_bytes;
  std::optional<std::chrono::milliseconds> queue_interval;
};

enum class OtlpProtocol { HttpProtobuf, HttpJson, Grpc };

struct OtlpSignal {
  std::string endpoint;  // HTTP: full URL with path; gRPC: the target URL (http[s]://host:port)
  OtlpProtocol protocol = OtlpProtocol::HttpProtobuf;
  KeyValues headers;
  bool gzip = false;
  std::chrono::milliseconds timeout{10'000};
  std::string certificate;  // PEM file of CAs to trust; empty: the system's
  std::string client_key;   // mTLS: both set or neither
  std::string client_certificate;
};

struct ExportConfig {
  std::string exporter = "console";  // console, otlp-file, otlp
  std::string output_path;
  OtlpSignal traces;
  OtlpSignal metrics;
  bool otlp_metrics = false;      // an OTLP endpoint is configured: metrics leave as OTLP too
  KeyValues resource_attributes;  // added to every exported resource
  std::string service_name;       // non-empty: replaces service.name on every resource
  std::string metrics_address = "127.0.0.1:9464";  // "off": no Prometheus endpoint
  bool metrics_address_explicit = false;           // a bind failure is fatal only then
  std::chrono::milliseconds metrics_interval{60'000};
  size_t queue_max_spans = 100'000;
  size_t queue_max_bytes = 64u << 20;
  std::chrono::milliseconds queue_interval{500};
};

using Getenv = std::function<const char*(const char*)>;

// The OTEL_* variables weft honours. Errors name the variable.
ConfigLayer layer_from_environment(const Getenv& getenv, std::string* error);
// The JSON config file (schema in docs/export.md). Errors name the file and the key.
ConfigLayer layer_from_file(const std::string& path, std::string* error);
ConfigLayer layer_from_json_text(const std::string& text, const std::string& origin,
                                 std::string* error);
// Layers in increasing precedence. Empty error: `out` is complete and valid.
ExportConfig resolve(const std::vector<ConfigLayer>& layers, std::string* error);

// "k=v,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES): values are
// percent-decoded. Errors say which pair is malformed.
bool parse_key_values(const std::string& text, KeyValues& out, std::string* error);
std::optional<OtlpProtocol> parse_protocol(const std::string& name);
const char* protocol_name(OtlpProtocol p);

}  // namespace weft::exporter
