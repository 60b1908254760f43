// HTTP/2 exchanges as later stages see them. Plain HTTP/2: the HTTP semantic conventions as for
// HTTP/1 (network.protocol.version "2"), recording into the same http.*.request.duration
// families. gRPC: the RPC conventions (rpc.system grpc, service and method from :path,
// rpc.grpc.status_code, the gRPC span status rules) and rpc.*.duration. Fields weft could not
// recover (HPACK entries it never saw) are left out and flagged, never guessed.
#include <nlohmann/json.hpp>

#include "protocols/http1/http1.h"
#include "protocols/http2/http2.h"
#include "protocols/http_semantics.h"
#include "protocols/span_attributes.h"

namespace weft::protocols::http2 {
namespace {

bool is_server(const Exchange& ex) {
  return ex.side != Role::Client;
}

std::string method_of(const Http2Exchange& h) {
  if (h.method.empty()) return {};
  return http::known_method(h.method) ? h.method : "_OTHER";
}

// gRPC's status codes, by name, for consoles.
constexpr std::string_view kGrpcCodes[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

// The conventions' rule: a client span is an error for any status but OK; a server span only
// for the codes that say the server failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
// INTERNAL, UNAVAILABLE, DATA_LOSS). A stream reset without a status is an error both ways.
bool grpc_error(const Http2Exchange& h, bool server) {
  if (h.grpc_status < 0) return h.reset_code > 0;
  if (h.grpc_status == 0) return false;
  if (!server) return true;
  switch (h.grpc_status) {
    case 2:
    case 4:
    case 12:
    case 13:
    case 14:
    case 15:
      return true;
    default:
      return false;
  }
}

bool http_error(const Http2Exchange& h, bool server) {
  return http::is_error(h.status, server) || (h.status == 0 && h.reset_code > 0);
}

// Where the server listens: :authority when it names one, else the connection's end.
void server_address(const Exchange& ex, const Http2Exchange& h, std::string& name, int64_t& port) {
  const ConnectionInfo& c = *ex.connection;
  bool server = is_server(ex);
  port = server ? c.local.port : c.remote.port;
  if (!http::split_host(h.authority, name, port))
    name = server ? c.local.address() : c.remote.address();
}

void add_recovery_flags(std::vector<Attribute>& a, const Exchange& ex, const Http2Exchange& h) {
  if (h.path_unknown) add_attribute(a, "weft.http2.path_unknown", true);
  if (h.method_unknown) add_attribute(a, "weft.http2.method_unknown", true);
  if (h.status_unknown) add_attribute(a, "weft.http2.status_unknown", true);
  if (h.unknown_fields > 0)
    add_attribute(a, "weft.http2.unknown_fields", static_cast<int64_t>(h.unknown_fields));
  if (h.headers_damaged || ex.request.truncated || ex.response.truncated)
    add_attribute(a, "weft.http2.headers_truncated", true);
  if (h.reset_code >= 0) add_attribute(a, "weft.http2.reset_code", h.reset_code);
  add_attribute(a, "weft.http2.stream_id", static_cast<int64_t>(h.stream_id));
  if (h.upgraded) add_attribute(a, "weft.http2.upgraded", true);
  if (h.grpc_inferred) add_attribute(a, "weft.grpc.inferred", true);
  if (h.grpc_status_unknown) add_attribute(a, "weft.grpc.status_unknown", true);
}

// What HTTP and gRPC spans of HTTP/2 both say: the protocol, where the server listens, the
// connection, the peer, and what weft could not recover.
void add_common_attributes(std::vector<Attribute>& a, const Exchange& ex, const Http2Exchange& h) {
  add_attribute(a, "network.protocol.name", std::string("http"));
  add_attribute(a, "network.protocol.version", std::string("2"));
  std::string host;
  int64_t port = 0;
  server_address(ex, h, host, port);
  add_attribute(a, "server.address", host);
  add_attribute(a, "server.port", port);
  add_connection_attributes(a, *ex.connection);
  if (is_server(ex)) add_attribute(a, "client.address", ex.connection->remote.address());
}

// Each exchange is described by one set of conventions, chosen by the same flag that chose its
// Protocol object (Http2Exchange::grpc, final once the exchange is emitted).
bool is_error(const Http2Exchange& h, bool server) {
  return h.grpc ? grpc_error(h, server) : http_error(h, server);
}

}  // namespace

bool split_rpc(std::string_view path, std::string_view& service, std::string_view& method) {
  if (!path.starts_with("/")) return false;
  size_t slash = path.find('/', 1);
  if (slash == std::string_view::npos || slash == 1 || slash + 1 >= path.size()) return false;
  service = path.substr(1, slash - 1);
  method = path.substr(slash + 1);
  return method.find('/') == std::string_view::npos;
}

void describe(const Exchange& ex, const DescribeOptions& options, SpanDescription& out) {
  const ConnectionInfo& c = *ex.connection;
  const Http2Exchange& h = http2_of(ex);
  bool server = is_server(ex);
  out.kind = server ? SpanKind::Server : SpanKind::Client;
  out.context_carrier = &h.request_headers;

  std::string method = method_of(h);
  std::string_view target = h.path;
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string shown_query = options.query_values ? std::string(query) : http1::redact_query(query);
  std::string name_method = method.empty() || method == "_OTHER" ? "HTTP" : method;
  out.name = h.route.empty() ? name_method : name_method + " " + h.route;

  auto& a = out.attributes;
  if (!method.empty()) add_attribute(a, "http.request.method", method);
  if (method == "_OTHER") add_attribute(a, "http.request.method_original", h.method);
  std::string scheme = !h.scheme.empty() ? h.scheme : c.tls ? "https" : "http";
  add_attribute(a, "url.scheme", scheme);
  if (target.starts_with("/")) add_attribute(a, "url.path", std::string(path));
  if (!query.empty()) add_attribute(a, "url.query", shown_query);
  if (h.status) add_attribute(a, "http.response.status_code", static_cast<int64_t>(h.status));
  add_common_attributes(a, ex, h);
  if (server) {
    if (!h.route.empty()) add_attribute(a, "http.route", h.route);
  } else {
    if (target.starts_with("/")) {
      std::string authority = h.authority.empty() ? c.remote.to_string() : h.authority;
      std::string full = scheme + "://" + authority + std::string(path);
      if (!query.empty()) full += "?" + shown_query;
      add_attribute(a, "url.full", full);
    }
    if (!h.route.empty()) add_attribute(a, "url.template", h.route);
  }
  if (const std::string* ua = find_header(h.request_headers, "user-agent"))
    add_attribute(a, "user_agent.original", *ua);
  if (auto n = http::content_length(h.request_headers))
    add_attribute(a, "http.request.body.size", *n);
  if (auto n = http::content_length(h.response_headers))
    add_attribute(a, "http.response.body.size", *n);
  add_recovery_flags(a, ex, h);

  out.outcome = h.status ? std::to_string(h.status) : h.reset_code >= 0 ? "RST" : "-";
  if (http_error(h, server)) {
    out.status = StatusCode::Error;
    add_attribute(a, "error.type", h.status ? std::to_string(h.status) : std::string("reset"));
  }
}

// The duration family's labels, in its label_keys order. HTTP: http.request.method,
// http.route (url.template for clients), http.response.status_code. gRPC: rpc.system,
// rpc.service, rpc.method, rpc.grpc.status_code.
void metric_labels(const Exchange& ex, SpanKind, std::vector<LabelValue>& out) {
  const Http2Exchange& h = http2_of(ex);
  if (h.grpc) {
    std::string_view service, method;
    bool named = split_rpc(h.path, service, method);
    out.emplace_back(std::string("grpc"));
    out.push_back(named ? LabelValue(std::string(service)) : LabelValue());
    out.push_back(named ? LabelValue(std::string(method)) : LabelValue());
    out.push_back(h.grpc_status >= 0 ? LabelValue(static_cast<int64_t>(h.grpc_status))
                                     : LabelValue());
    return;
  }
  std::string method = method_of(h);
  out.push_back(method.empty() ? LabelValue() : LabelValue(method));
  out.push_back(h.route.empty() ? LabelValue() : LabelValue(h.route));
  out.push_back(h.status ? LabelValue(static_cast<int64_t>(h.status)) : LabelValue());
}

void essentials(const Exchange& ex, SpanEssentials& out) {
  const Http2Exchange& h = http2_of(ex);
  bool server = is_server(ex);
  out.kind = server ? SpanKind::Server : SpanKind::Client;
  out.context_carrier = &h.request_headers;
  if (is_error(h, server)) out.status = StatusCode::Error;
}

void describe_grpc(const Exchange& ex, const DescribeOptions&, SpanDescription& out) {
  const Http2Exchange& h = http2_of(ex);
  bool server = is_server(ex);
  out.kind = server ? SpanKind::Server : SpanKind::Client;
  out.context_carrier = &h.request_headers;
  std::string_view service, method;
  bool named = split_rpc(h.path, service, method);
  out.name = named ? std::string(service) + "/" + std::string(method) : std::string("grpc");

  auto& a = out.attributes;
  add_attribute(a, "rpc.system", std::string("grpc"));
  if (named) {
    add_attribute(a, "rpc.service", std::string(service));
    add_attribute(a, "rpc.method", std::string(method));
  }
  if (h.grpc_status >= 0)
    add_attribute(a, "rpc.grpc.status_code", static_cast<int64_t>(h.grpc_status));
  add_common_attributes(a, ex, h);
  if (h.request_messages || h.response_messages) {
    add_attribute(a, "weft.grpc.request_messages", static_cast<int64_t>(h.request_messages));
    add_attribute(a, "weft.grpc.response_messages", static_cast<int64_t>(h.response_messages));
  }
  if (h.status && h.status != 200)
    add_attribute(a, "http.response.status_code", static_cast<int64_t>(h.status));
  add_recovery_flags(a, ex, h);

  if (h.grpc_status >= 0 && h.grpc_status < static_cast<int>(std::size(kGrpcCodes)))
    out.outcome = std::string(kGrpcCodes[h.grpc_status]);
  else
    out.outcome = h.grpc_status >= 0      ? std::to_string(h.grpc_status)
                  : h.grpc_status_unknown ? "?"
                                          : "-";
  if (grpc_error(h, server)) {
    out.status = StatusCode::Error;
    add_attribute(a, "error.type",
                  h.grpc_status >= 0 ? std::to_string(h.grpc_status) : std::string("reset"));
  }
}

const MetricFamily& grpc_server_duration_family() {
  static const MetricFamily family{
      "rpc.server.duration",
      "Duration of inbound RPCs (gRPC), from the request's first byte to the response's end.",
      {"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code"},
      "rpc.method",
      http::duration_buckets()};
  return family;
}

const MetricFamily& grpc_client_duration_family() {
  static const MetricFamily family{
      "rpc.client.duration",
      "Duration of outbound RPCs (gRPC), from the request's first byte to the response's end.",
      {"rpc.system", "rpc.service", "rpc.method", "rpc.grpc.status_code"},
      "rpc.method",
      http::duration_buckets()};
  return family;
}

// "GET /a -> 200", "POST /pkg.S/M -> 200 grpc 5", with what could not be recovered.
std::string render_text(const Exchange& ex) {
  const Http2Exchange& h = http2_of(ex);
  std::string method = h.method.empty() ? (h.method_unknown ? "?" : "-") : h.method;
  std::string path = h.path.empty() ? (h.path_unknown ? "?" : "-") : h.path;
  std::string status = h.status ? std::to_string(h.status) : h.status_unknown ? "?" : "-";
  std::string line = method + " " + path + " -> " + status;
  if (h.grpc)
    line += " grpc " + (h.grpc_status >= 0      ? std::to_string(h.grpc_status)
                        : h.grpc_status_unknown ? std::string("?")
                                                : std::string("-"));
  if (h.grpc_inferred) line += " [gRPC by framing]";
  if (h.upgraded) line += " [h2c upgrade]";
  if (h.reset_code >= 0) line += " RST_STREAM " + std::to_string(h.reset_code);
  if (h.unknown_fields > 0) line += " [" + std::to_string(h.unknown_fields) + " fields unknown]";
  if (h.headers_damaged) line += " [headers truncated]";
  return line;
}

void render_json(const Exchange& ex, nlohmann::json& out) {
  const Http2Exchange& h = http2_of(ex);
  auto headers = [](const HeaderList& list) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] : list)
      if (!j.contains(name)) j[name] = value;
    return j;
  };
  out["stream_id"] = h.stream_id;
  out["method"] = h.method;
  out["path"] = h.path;
  out["authority"] = h.authority;
  out["status"] = h.status;
  out["version"] = "2";
  out["grpc"] = h.grpc;
  out["upgraded"] = h.upgraded;
  if (h.grpc) {
    out["grpc_inferred"] = h.grpc_inferred;
    out["grpc_status_unknown"] = h.grpc_status_unknown;
    out["grpc_status"] = h.grpc_status;
    out["request_messages"] = h.request_messages;
    out["response_messages"] = h.response_messages;
  }
  out["reset_code"] = h.reset_code;
  out["fields"] = h.fields;
  out["unknown_fields"] = h.unknown_fields;
  out["path_unknown"] = h.path_unknown;
  out["request_headers"] = headers(h.request_headers);
  out["response_headers"] = headers(h.response_headers);
}

}  // namespace weft::protocols::http2
