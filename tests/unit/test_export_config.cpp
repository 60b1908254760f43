// Export configuration: the OTEL_* variables, the JSON file, flags, and which one wins.
#include <doctest/doctest.h>

#include <map>

#include "export/export_config.h"

using namespace weft::exporter;
using std::chrono::milliseconds;

namespace {

ConfigLayer env_layer(const std::map<std::string, std::string>& vars, std::string* error) {
  return layer_from_environment(
      [&](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
      },
      error);
}

ExportConfig resolve_ok(const std::vector<ConfigLayer>& layers) {
  std::string error;
  ExportConfig c = resolve(layers, &error);
  CHECK(error == "");
  return c;
}

ConfigLayer file_layer(const std::string& text, std::string* error) {
  return layer_from_json_text(text, "config file weft.json", error);
}

}  // namespace

TEST_CASE("export config: nothing configured means console trees and no OTLP metrics") {
  ExportConfig c = resolve_ok({});
  CHECK(c.exporter == "console");
  CHECK_FALSE(c.otlp_metrics);
  CHECK(c.metrics_address == "127.0.0.1:9464");
  CHECK_FALSE(c.metrics_address_explicit);
}

TEST_CASE("export config: the standard variables, with signal-specific ones winning") {
  std::string error;
  ConfigLayer env =
      env_layer({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"},
                 {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9000/ingest"},
                 {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                 {"OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, tenant=blue"},
                 {"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "tenant=green"},
                 {"OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"},
                 {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"},
                 {"OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod,k8s.node.name=n1"},
                 {"OTEL_SERVICE_NAME", "edge"}},
                &error);
  REQUIRE(error == "");
  ExportConfig c = resolve_ok({env});
  CHECK(c.exporter == "otlp");  // an endpoint is configured
  CHECK(c.otlp_metrics);
  CHECK(c.traces.endpoint == "http://collector:4318/v1/traces");
  CHECK(c.metrics.endpoint == "http://metrics:9000/ingest");  // used as is
  CHECK(c.traces.protocol == OtlpProtocol::HttpJson);
  CHECK(c.traces.headers == KeyValues{{"api-key", "s=cret"}, {"tenant", "green"}});
  CHECK(c.metrics.headers == KeyValues{{"api-key", "s=cret"}, {"tenant", "blue"}});
  CHECK(c.traces.gzip);
  CHECK(c.traces.timeout == milliseconds(2500));
  CHECK(c.metrics.timeout == milliseconds(10000));
  CHECK(c.resource_attributes.at("k8s.node.name") == "n1");
  CHECK(c.service_name == "edge");
}

TEST_CASE("export config: gRPC endpoints name the server only") {
  std::string error;
  ConfigLayer env = env_layer({{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"},
                               {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"}},
                              &error);
  ExportConfig c = resolve_ok({env});
  CHECK(c.traces.endpoint == "http://collector:4317");
  CHECK(c.traces.protocol == OtlpProtocol::Grpc);
  ConfigLayer bare;
  bare.exporter = "otlp";
  bare.otlp.protocol = "grpc";
  CHECK(resolve_ok({bare}).traces.endpoint == "http://localhost:4317");
  bare.otlp.protocol = "http/protobuf";
  CHECK(resolve_ok({bare}).traces.endpoint == "http://localhost:4318/v1/traces");
}

TEST_CASE("export config: flags win over the file, the file over the environment") {
  std::string error;
  ConfigLayer env = env_layer({{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:1/v1/traces"},
                               {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"},
                               {"OTEL_EXPORTER_OTLP_HEADERS", "a=env,b=env"}},
                              &error);
  ConfigLayer file = file_layer(R"({"otlp": {"endpoint": "http://file:2", "protocol": "grpc",
                                             "headers": {"b": "file"}, "timeout": 1.5},
                                    "metrics": {"address": "127.0.0.1:9999"}})",
                                &error);
  REQUIRE(error == "");
  ConfigLayer flags;
  flags.otlp.protocol = "http/protobuf";

  ExportConfig c = resolve_ok({env, file});
  CHECK(c.traces.endpoint ==
        "http://file:2");  // the file's generic endpoint beats env's traces one
  CHECK(c.traces.protocol == OtlpProtocol::Grpc);
  CHECK(c.traces.headers == KeyValues{{"a", "env"}, {"b", "file"}});
  CHECK(c.traces.timeout == milliseconds(1500));
  CHECK(c.metrics_address == "127.0.0.1:9999");
  CHECK(c.metrics_address_explicit);

  c = resolve_ok({env, file, flags});
  CHECK(c.traces.protocol == OtlpProtocol::HttpProtobuf);
  CHECK(c.traces.endpoint == "http://file:2/v1/traces");
}

TEST_CASE("export config: mistakes get one message naming what is wrong") {
  std::string error;
  file_layer(R"({"otlp": {"endpiont": "http://x"}})", &error);
  CHECK(error == "config file weft.json: otlp.endpiont is not a known setting");
  error.clear();
  file_layer(R"({"export_queue": {"max_spans": -3}})", &error);
  CHECK(error == "config file weft.json: export_queue.max_spans must be a whole number above 0");
  error.clear();
  file_layer(R"({"otlp": {"timeout": "10s"}})", &error);
  CHECK(
      error ==
      "config file weft.json: otlp.timeout must be a number of seconds, above 0 and at most 3600");
  error.clear();
  file_layer("{not json", &error);
  CHECK(error == "config file weft.json: not valid JSON");
  error.clear();
  layer_from_file("/nonexistent/weft.json", &error);
  CHECK(error == "cannot read config file /nonexistent/weft.json");
  error.clear();
  env_layer({{"OTEL_EXPORTER_OTLP_TIMEOUT", "soon"}}, &error);
  CHECK(error == "OTEL_EXPORTER_OTLP_TIMEOUT must be a number of milliseconds, above 0: 'soon'");
  error.clear();
  env_layer({{"OTEL_EXPORTER_OTLP_HEADERS", "novalue"}}, &error);
  CHECK(error ==
        "OTEL_EXPORTER_OTLP_HEADERS: expected key=value pairs separated by commas, got 'novalue'");

  ConfigLayer flags;
  flags.otlp.protocol = "thrift";
  error.clear();
  resolve({flags}, &error);
  CHECK(error == "unknown OTLP protocol 'thrift' for traces (http/protobuf, http/json, grpc)");
  flags = {};
  flags.otlp.endpoint = "collector:4318";
  error.clear();
  resolve({flags}, &error);
  CHECK(error ==
        "the OTLP traces endpoint must be an http:// or https:// URL: 'collector:4318/v1/traces'");
  flags = {};
  flags.traces.endpoint = "http://collector:4318/v1/traces";
  flags.otlp.protocol = "grpc";
  error.clear();
  resolve({flags}, &error);
  CHECK(error ==
        "the OTLP traces endpoint for grpc must be scheme://host:port without a path: "
        "'http://collector:4318/v1/traces'");
  flags = {};
  flags.exporter = "jaeger";
  error.clear();
  resolve({flags}, &error);
  CHECK(error == "unknown exporter 'jaeger' (console, otlp-file, otlp)");
  flags = {};
  flags.exporter = "otlp-file";
  error.clear();
  resolve({flags}, &error);
  CHECK(error == "--exporter otlp-file needs --output PATH");
}

TEST_CASE(
    "export config: mTLS client key and certificate, from variables or the file, both or neither") {
  std::string error;
  ConfigLayer env = env_layer({{"OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318"},
                               {"OTEL_EXPORTER_OTLP_CLIENT_KEY", "/etc/hostname"},
                               {"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "/etc/hostname"}},
                              &error);
  ExportConfig c = resolve_ok({env});
  CHECK(c.traces.client_key == "/etc/hostname");
  CHECK(c.metrics.client_certificate == "/etc/hostname");

  ConfigLayer file = file_layer(R"({"otlp": {"client_key": "/etc/hostname"}})", &error);
  REQUIRE(error == "");
  error.clear();
  resolve({file}, &error);
  CHECK(error ==
        "OTLP traces: a client key and a client certificate go together (mTLS needs both)");

  file = file_layer(
      R"({"otlp": {"client_key": "/nonexistent.key", "client_certificate": "/etc/hostname"}})",
      &error);
  error.clear();
  resolve({file}, &error);
  CHECK(error == "cannot read the OTLP certificate or key file /nonexistent.key");
}
