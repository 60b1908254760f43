// HTTP/1 exchanges as later stages see them: spans per the stable OpenTelemetry HTTP semantic
// conventions (server spans where this process received the request, client spans where it
// sent it), the http.*.request.duration families, and `weft exchanges` lines.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "protocols/http1/http1.h"
#include "protocols/http1/route.h"
#include "protocols/http_semantics.h"
#include "protocols/span_attributes.h"

namespace weft::protocols::http1 {
namespace {

using http::content_length;
using http::is_error;
using http::known_method;
using http::split_host;

// The method as the conventions report it: one they know, else "_OTHER" (unbounded input).
std::string_view method_of(const HttpExchange& http) {
  return known_method(http.method) ? std::string_view(http.method) : "_OTHER";
}

}  // namespace

std::string redact_query(std::string_view query) {
  std::string out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    out += eq == std::string_view::npos ? pair : std::string(pair.substr(0, eq)) + "=REDACTED";
    if (amp == std::string_view::npos) break;
    out += '&';
    query = query.substr(amp + 1);
  }
  return out;
}

void describe(const Exchange& ex, const DescribeOptions& options, SpanDescription& out) {
  const ConnectionInfo& c = *ex.connection;
  const HttpExchange& http = http_of(ex);
  bool server = ex.side != Role::Client;
  out.kind = server ? SpanKind::Server : SpanKind::Client;
  out.context_carrier = &http.request_headers;

  std::string_view method = method_of(http);
  std::string_view target = http.target;
  bool origin_form = target.starts_with("/");
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  std::string shown_query = options.query_values ? std::string(query) : redact_query(query);
  const std::string& route = http.route;
  // Semantic conventions: an unknown method is named "HTTP" (the method is unbounded input).
  std::string_view name_method = method == "_OTHER" ? "HTTP" : method;
  out.name.reserve(name_method.size() + 1 + route.size());
  out.name.append(name_method);
  if (!route.empty()) out.name.append(" ").append(route);

  auto& a = out.attributes;
  add_attribute(a, "http.request.method", std::string(method));
  if (method == "_OTHER") add_attribute(a, "http.request.method_original", http.method);
  std::string_view scheme = c.tls ? "https" : "http";
  add_attribute(a, "url.scheme", std::string(scheme));
  if (origin_form) add_attribute(a, "url.path", std::string(path));
  if (!query.empty()) add_attribute(a, "url.query", shown_query);
  if (http.status) add_attribute(a, "http.response.status_code", static_cast<int64_t>(http.status));
  add_attribute(a, "network.protocol.version", http.version);

  std::string host_name;
  int64_t host_port = server ? c.local.port : c.remote.port;
  const std::string* host = find_header(http.request_headers, "host");
  std::string peer = c.remote.address();  // network.peer.address, and client.address
  if (!host || !split_host(*host, host_name, host_port))
    host_name = server ? c.local.address() : peer;
  add_attribute(a, "server.address", std::move(host_name));
  add_attribute(a, "server.port", host_port);
  add_connection_attributes(a, c, server ? peer : std::move(peer));
  if (server) {
    add_attribute(a, "client.address", std::move(peer));
    if (!route.empty()) add_attribute(a, "http.route", route);
  } else {
    std::string full;
    full.reserve(scheme.size() + 3 + (host ? host->size() : 47) + target.size());
    full.append(scheme).append("://").append(host ? *host : c.remote.to_string()).append(path);
    if (!query.empty()) full.append("?").append(shown_query);
    if (origin_form) {
      add_attribute(a, "url.full", std::move(full));
    } else if (target.starts_with("http://") || target.starts_with("https://")) {
      // Absolute form (a request to a proxy): the target is the URL.
      std::string absolute(target.substr(0, question));
      if (!query.empty()) absolute += "?" + shown_query;
      add_attribute(a, "url.full", absolute);
    }
    if (!route.empty()) add_attribute(a, "url.template", route);
  }
  if (const std::string* ua = find_header(http.request_headers, "user-agent"))
    add_attribute(a, "user_agent.original", *ua);
  if (auto n = content_length(http.request_headers)) add_attribute(a, "http.request.body.size", *n);
  if (auto n = content_length(http.response_headers))
    add_attribute(a, "http.response.body.size", *n);
  if (ex.request.truncated || ex.response.truncated)
    add_attribute(a, "weft.http.headers_truncated", true);
  if (http.response_end_inferred) add_attribute(a, "weft.http.response_end_inferred", true);

  int status = http.status;
  out.outcome = status ? std::to_string(status) : "-";
  if (is_error(status, server)) {
    out.status = StatusCode::Error;
    add_attribute(a, "error.type", std::to_string(status));
  }
}

// http.request.method, http.route (url.template for clients), http.response.status_code.
void metric_labels(const Exchange& ex, SpanKind, std::vector<LabelValue>& out) {
  const HttpExchange& http = http_of(ex);
  out.emplace_back(std::string(method_of(http)));
  out.push_back(http.route.empty() ? LabelValue() : LabelValue(http.route));
  out.push_back(http.status ? LabelValue(static_cast<int64_t>(http.status)) : LabelValue());
}

void essentials(const Exchange& ex, SpanEssentials& out) {
  const HttpExchange& http = http_of(ex);
  bool server = ex.side != Role::Client;
  out.kind = server ? SpanKind::Server : SpanKind::Client;
  out.context_carrier = &http.request_headers;
  if (is_error(http.status, server)) out.status = StatusCode::Error;
}

std::string render_text(const Exchange& ex) {
  const HttpExchange& http = http_of(ex);
  std::string line = http.method + " " + http.target + " -> " + std::to_string(http.status);
  if (ex.request.truncated || ex.response.truncated) line += " [headers truncated]";
  if (http.response_end_inferred) line += " [end inferred]";
  return line;
}

void render_json(const Exchange& ex, nlohmann::json& out) {
  const HttpExchange& http = http_of(ex);
  auto headers = [](const HeaderList& list) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, value] : list)
      if (!j.contains(name)) j[name] = value;
    return j;
  };
  out["method"] = http.method;
  out["target"] = http.target;
  out["version"] = http.version;
  out["status"] = http.status;
  out["request_headers"] = headers(http.request_headers);
  out["response_headers"] = headers(http.response_headers);
  out["response_end_inferred"] = http.response_end_inferred;
}

}  // namespace weft::protocols::http1
