#include "export/export_config.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace weft::exporter {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
      return false;
    out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return true;
}

// --- environment ---

struct EnvReader {
  const Getenv& getenv;
  std::string* error;

  std::optional<std::string> text(const char* name) const {
    const char* v = getenv(name);
    if (!v || !*v) return std::nullopt;
    return trim(v);
  }
  // OTEL_*_TIMEOUT is in milliseconds.
  std::optional<milliseconds> millis(const char* name) const {
    auto v = text(name);
    if (!v) return std::nullopt;
    char* end = nullptr;
    double ms = std::strtod(v->c_str(), &end);
    if (*end != '\0' || !(ms > 0) || ms > 3.6e6) {
      if (error->empty())
        *error = std::string(name) + " must be a number of milliseconds, above 0: '" + *v + "'";
      return std::nullopt;
    }
    return milliseconds(static_cast<int64_t>(ms));
  }
  void key_values(const char* name, KeyValues& out) const {
    auto v = text(name);
    std::string bad;
    if (v && !parse_key_values(*v, out, &bad) && error->empty())
      *error = std::string(name) + ": " + bad;
  }
  // OTEL_EXPORTER_OTLP_<SIGNAL>_<SETTING>; `signal` is "" or "TRACES_"/"METRICS_".
  void signal(const std::string& signal, OtlpSignalLayer& out) const {
    auto name = [&](const char* setting) { return "OTEL_EXPORTER_OTLP_" + signal + setting; };
    if (!signal.empty()) out.endpoint = text(name("ENDPOINT").c_str());
    out.protocol = text(name("PROTOCOL").c_str());
    key_values(name("HEADERS").c_str(), out.headers);
    out.compression = text(name("COMPRESSION").c_str());
    out.timeout = millis(name("TIMEOUT").c_str());
    out.certificate = text(name("CERTIFICATE").c_str());
    out.client_key = text(name("CLIENT_KEY").c_str());
    out.client_certificate = text(name("CLIENT_CERTIFICATE").c_str());
  }
};

// --- the JSON file ---

// Reads one JSON object strictly: every key must be known, every value of the right type.
class JsonReader {
 public:
  JsonReader(std::string origin, std::string* error) : origin_(std::move(origin)), error_(error) {}

  bool object(const json& j, const std::string& path) {
    if (j.is_object()) return true;
    fail(path, "must be an object");
    return false;
  }
  void check_keys(const json& j, const std::string& path,
                  std::initializer_list<const char*> known) {
    for (const auto& [key, value] : j.items()) {
      bool ok = false;
      for (const char* k : known) ok = ok || key == k;
      if (!ok) fail(join(path, key), "is not a known setting");
    }
  }
  std::optional<std::string> text(const json& j, const std::string& path, const char* key) {
    if (!j.contains(key)) return std::nullopt;
    if (!j[key].is_string()) return fail(join(path, key), "must be a string"), std::nullopt;
    return j[key].get<std::string>();
  }
  std::optional<milliseconds> seconds(const json& j, const std::string& path, const char* key) {
    if (!j.contains(key)) return std::nullopt;
    const json& v = j[key];
    if (!v.is_number() || !(v.get<double>() > 0) || v.get<double>() > 3600)
      return fail(join(path, key), "must be a number of seconds, above 0 and at most 3600"),
             std::nullopt;
    return milliseconds(static_cast<int64_t>(std::llround(v.get<double>() * 1000)));
  }
  std::optional<size_t> count(const json& j, const std::string& path, const char* key) {
    if (!j.contains(key)) return std::nullopt;
    const json& v = j[key];
    if (!v.is_number_unsigned() || v.get<uint64_t>() == 0)
      return fail(join(path, key), "must be a whole number above 0"), std::nullopt;
    return v.get<size_t>();
  }
  void strings(const json& j, const std::string& path, const char* key, KeyValues& out) {
    if (!j.contains(key)) return;
    std::string p = join(path, key);
    if (!object(j[key], p)) return;
    for (const auto& [k, v] : j[key].items()) {
      if (!v.is_string())
        fail(join(p, k), "must be a string");
      else
        out[k] = v.get<std::string>();
    }
  }
  void signal(const json& j, const std::string& path, OtlpSignalLayer& out, bool generic) {
    if (!object(j, path)) return;
    if (generic)
      check_keys(
          j, path,
          {"endpoint", "traces_endpoint", "metrics_endpoint", "protocol", "headers", "compression",
           "timeout", "certificate", "client_key", "client_certificate", "traces", "metrics"});
    else
      check_keys(j, path,
                 {"endpoint", "protocol", "headers", "compression", "timeout", "certificate",
                  "client_key", "client_certificate"});
    out.endpoint = text(j, path, "endpoint");
    out.protocol = text(j, path, "protocol");
    strings(j, path, "headers", out.headers);
    out.compression = text(j, path, "compression");
    out.timeout = seconds(j, path, "timeout");
    out.certificate = text(j, path, "certificate");
    out.client_key = text(j, path, "client_key");
    out.client_certificate = text(j, path, "client_certificate");
  }
  void fail(const std::string& key, const std::string& what) {
    if (error_->empty()) *error_ = origin_ + ": " + key + " " + what;
  }

 private:
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  std::string origin_;
  std::string* error_;
};

// --- resolution ---

// The highest layer that says something about `field` wins.
template <typename T, typename Get>
std::optional<T> pick(const std::vector<ConfigLayer>& layers, Get get) {
  std::optional<T> out;
  for (const auto& l : layers)
    if (auto v = get(l)) out = v;
  return out;
}

bool is_url(const std::string& s) {
  return s.starts_with("http://") || s.starts_with("https://");
}

// A layer's endpoint for one signal: its signal-specific one as is, else its base endpoint
// with the signal's path for HTTP (gRPC endpoints name the server only).
std::optional<std::string> layer_endpoint(const ConfigLayer& l, const OtlpSignalLayer& s,
                                          OtlpProtocol protocol, const char* path) {
  if (s.endpoint) return s.endpoint;
  if (!l.otlp.endpoint) return std::nullopt;
  if (protocol == OtlpProtocol::Grpc) return l.otlp.endpoint;
  std::string base = *l.otlp.endpoint;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + path;
}

OtlpSignal resolve_signal(const std::vector<ConfigLayer>& layers,
                          const OtlpSignalLayer ConfigLayer::*which, const char* path,
                          const char* env_name, std::string* error) {
  OtlpSignal out;
  auto generic_or_signal = [&](auto field) {
    using T = typename std::remove_reference_t<decltype(ConfigLayer{}.otlp.*field)>::value_type;
    return pick<T>(layers, [&](const ConfigLayer& l) {
      return (l.*which.*field) ? (l.*which.*field) : l.otlp.*field;
    });
  };
  std::string proto_name = generic_or_signal(&OtlpSignalLayer::protocol).value_or("http/protobuf");
  auto protocol = parse_protocol(proto_name);
  if (!protocol) {
    *error = std::string("unknown OTLP protocol '") + proto_name + "' for " + env_name +
             " (http/protobuf, http/json, grpc)";
    return out;
  }
  out.protocol = *protocol;
  auto endpoint = pick<std::string>(layers, [&](const ConfigLayer& l) {
    return layer_endpoint(l, l.*which, out.protocol, path);
  });
  if (endpoint)
    out.endpoint = *endpoint;
  else
    out.endpoint = std::string(out.protocol == OtlpProtocol::Grpc ? "http://localhost:4317"
                                                                  : "http://localhost:4318") +
                   (out.protocol == OtlpProtocol::Grpc ? "" : path);
  if (!is_url(out.endpoint)) {
    *error = std::string("the OTLP ") + env_name +
             " endpoint must be an http:// or https:// URL: '" + out.endpoint + "'";
    return out;
  }
  // A gRPC endpoint names a server; a path there (an HTTP endpoint given with --otlp-protocol
  // grpc) would otherwise fail every export as UNAVAILABLE, forever.
  std::string after_scheme = out.endpoint.substr(out.endpoint.find("://") + 3);
  size_t slash = after_scheme.find('/');
  if (out.protocol == OtlpProtocol::Grpc && slash != std::string::npos &&
      slash + 1 < after_scheme.size()) {
    *error = std::string("the OTLP ") + env_name +
             " endpoint for grpc must be scheme://host:port without a path: '" + out.endpoint + "'";
    return out;
  }
  for (const auto& l : layers) {  // headers merge key by key, higher layers winning
    for (const auto& [k, v] : l.otlp.headers) out.headers[k] = v;
    for (const auto& [k, v] : (l.*which).headers) out.headers[k] = v;
  }
  std::string compression = generic_or_signal(&OtlpSignalLayer::compression).value_or("none");
  if (compression != "gzip" && compression != "none") {
    *error = "unknown OTLP compression '" + compression + "' (gzip, none)";
    return out;
  }
  out.gzip = compression == "gzip";
  out.timeout = generic_or_signal(&OtlpSignalLayer::timeout).value_or(out.timeout);
  out.certificate = generic_or_signal(&OtlpSignalLayer::certificate).value_or("");
  out.client_key = generic_or_signal(&OtlpSignalLayer::client_key).value_or("");
  out.client_certificate = generic_or_signal(&OtlpSignalLayer::client_certificate).value_or("");
  if (out.client_key.empty() != out.client_certificate.empty()) {
    *error = std::string("OTLP ") + env_name +
             ": a client key and a client certificate go together (mTLS needs both)";
    return out;
  }
  for (const std::string* file : {&out.certificate, &out.client_key, &out.client_certificate}) {
    if (!file->empty() && access(file->c_str(), R_OK) != 0) {
      *error = "cannot read the OTLP certificate or key file " + *file;
      return out;
    }
  }
  return out;
}

bool any_endpoint(const std::vector<ConfigLayer>& layers,
                  const OtlpSignalLayer ConfigLayer::*which) {
  for (const auto& l : layers)
    if (l.otlp.endpoint || (l.*which).endpoint) return true;
  return false;
}

}  // namespace

std::optional<OtlpProtocol> parse_protocol(const std::string& name) {
  if (name == "http/protobuf") return OtlpProtocol::HttpProtobuf;
  if (name == "http/json") return OtlpProtocol::HttpJson;
  if (name == "grpc") return OtlpProtocol::Grpc;
  return std::nullopt;
}

const char* protocol_name(OtlpProtocol p) {
  switch (p) {
    case OtlpProtocol::HttpProtobuf:
      return "http/protobuf";
    case OtlpProtocol::HttpJson:
      return "http/json";
    case OtlpProtocol::Grpc:
      return "grpc";
  }
  return "?";
}

bool parse_key_values(const std::string& text, KeyValues& out, std::string* error) {
  std::stringstream in(text);
  std::string pair;
  while (std::getline(in, pair, ',')) {
    if (trim(pair).empty()) continue;
    size_t eq = pair.find('=');
    std::string key, value;
    if (eq == std::string::npos || trim(pair.substr(0, eq)).empty() ||
        !percent_decode(trim(pair.substr(0, eq)), key) ||
        !percent_decode(trim(pair.substr(eq + 1)), value)) {
      *error = "expected key=value pairs separated by commas, got '" + trim(pair) + "'";
      return false;
    }
    out[key] = value;
  }
  return true;
}

ConfigLayer layer_from_environment(const Getenv& getenv, std::string* error) {
  ConfigLayer l;
  l.origin = "environment";
  EnvReader env{getenv, error};
  l.otlp.endpoint = env.text("OTEL_EXPORTER_OTLP_ENDPOINT");
  env.signal("", l.otlp);
  env.signal("TRACES_", l.traces);
  env.signal("METRICS_", l.metrics);
  env.key_values("OTEL_RESOURCE_ATTRIBUTES", l.resource_attributes);
  l.service_name = env.text("OTEL_SERVICE_NAME");
  l.metrics_interval = env.millis("OTEL_METRIC_EXPORT_INTERVAL");
  return l;
}

ConfigLayer layer_from_json_text(const std::string& text, const std::string& origin,
                                 std::string* error) {
  ConfigLayer l;
  l.origin = origin;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) {
    *error = origin + ": not valid JSON";
    return l;
  }
  JsonReader r(origin, error);
  if (!r.object(j, "the top level")) return l;
  r.check_keys(j, "",
               {"exporter", "output", "otlp", "resource_attributes", "service_name", "metrics",
                "export_queue"});
  l.exporter = r.text(j, "", "exporter");
  l.output_path = r.text(j, "", "output");
  if (j.contains("otlp")) {
    const json& o = j["otlp"];
    r.signal(o, "otlp", l.otlp, true);
    if (o.is_object()) {
      l.traces.endpoint = r.text(o, "otlp", "traces_endpoint");
      l.metrics.endpoint = r.text(o, "otlp", "metrics_endpoint");
      if (o.contains("traces")) r.signal(o["traces"], "otlp.traces", l.traces, false);
      if (o.contains("metrics")) r.signal(o["metrics"], "otlp.metrics", l.metrics, false);
    }
  }
  r.strings(j, "", "resource_attributes", l.resource_attributes);
  l.service_name = r.text(j, "", "service_name");
  if (j.contains("metrics") && r.object(j["metrics"], "metrics")) {
    r.check_keys(j["metrics"], "metrics", {"address", "interval"});
    l.metrics_address = r.text(j["metrics"], "metrics", "address");
    l.metrics_interval = r.seconds(j["metrics"], "metrics", "interval");
  }
  if (j.contains("export_queue") && r.object(j["export_queue"], "export_queue")) {
    const json& q = j["export_queue"];
    r.check_keys(q, "export_queue", {"max_spans", "max_bytes", "interval"});
    l.queue_max_spans = r.count(q, "export_queue", "max_spans");
    l.queue_max_bytes = r.count(q, "export_queue", "max_bytes");
    l.queue_interval = r.seconds(q, "export_queue", "interval");
  }
  return l;
}

ConfigLayer layer_from_file(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read config file " + path;
    return {};
  }
  std::stringstream text;
  text << in.rdbuf();
  return layer_from_json_text(text.str(), "config file " + path, error);
}

ExportConfig resolve(const std::vector<ConfigLayer>& layers, std::string* error) {
  ExportConfig c;
  c.traces = resolve_signal(layers, &ConfigLayer::traces, "/v1/traces", "traces", error);
  if (!error->empty()) return c;
  c.metrics = resolve_signal(layers, &ConfigLayer::metrics, "/v1/metrics", "metrics", error);
  if (!error->empty()) return c;
  bool traces_endpoint = any_endpoint(layers, &ConfigLayer::traces);
  c.otlp_metrics = any_endpoint(layers, &ConfigLayer::metrics);
  c.exporter = pick<std::string>(layers, [](const ConfigLayer& l) {
                 return l.exporter;
               }).value_or(traces_endpoint ? "otlp" : "console");
  if (c.exporter != "console" && c.exporter != "otlp-file" && c.exporter != "otlp") {
    *error = "unknown exporter '" + c.exporter + "' (console, otlp-file, otlp)";
    return c;
  }
  c.otlp_metrics = c.otlp_metrics || c.exporter == "otlp";
  c.output_path =
      pick<std::string>(layers, [](const ConfigLayer& l) { return l.output_path; }).value_or("");
  if (c.exporter == "otlp-file" && c.output_path.empty()) {
    *error = "--exporter otlp-file needs --output PATH";
    return c;
  }
  for (const auto& l : layers)
    for (const auto& [k, v] : l.resource_attributes) c.resource_attributes[k] = v;
  c.service_name =
      pick<std::string>(layers, [](const ConfigLayer& l) { return l.service_name; }).value_or("");
  if (auto a = pick<std::string>(layers, [](const ConfigLayer& l) { return l.metrics_address; })) {
    c.metrics_address = *a;
    c.metrics_address_explicit = true;
  }
  c.metrics_interval = pick<milliseconds>(layers, [](const ConfigLayer& l) {
                         return l.metrics_interval;
                       }).value_or(c.metrics_interval);
  c.queue_max_spans = pick<size_t>(layers, [](const ConfigLayer& l) {
                        return l.queue_max_spans;
                      }).value_or(c.queue_max_spans);
  c.queue_max_bytes = pick<size_t>(layers, [](const ConfigLayer& l) {
                        return l.queue_max_bytes;
                      }).value_or(c.queue_max_bytes);
  c.queue_interval = pick<milliseconds>(layers, [](const ConfigLayer& l) {
                       return l.queue_interval;
                     }).value_or(c.queue_interval);
  return c;
}

}  // namespace weft::exporter
