#include "trace/span_builder.h"

#include <unistd.h>

#include <algorithm>

#include "trace/route.h"

namespace weft::trace {
namespace {

constexpr std::string_view kKnownMethods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

bool known_method(std::string_view m) {
  return std::find(std::begin(kKnownMethods), std::end(kKnownMethods), m) != std::end(kKnownMethods);
}

std::string basename_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "example.com:8080" -> ("example.com", 8080); "[::1]:80" -> ("::1", 80).
bool split_host(std::string_view host, std::string& name, int64_t& port) {
  if (host.empty()) return false;
  size_t colon = host.rfind(':');
  size_t bracket = host.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    std::string_view p = host.substr(colon + 1);
    if (p.empty() || !std::all_of(p.begin(), p.end(), ::isdigit) || p.size() > 5) return false;
    port = std::stoll(std::string(p));
    if (port > 65535) return false;
    host = host.substr(0, colon);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  name = host;
  return !name.empty();
}

void add(std::vector<Attribute>& attrs, std::string key, AttributeValue value) {
  attrs.push_back({std::move(key), std::move(value)});
}

std::optional<int64_t> content_length(const HeaderList& headers) {
  const std::string* v = find_header(headers, "content-length");
  if (!v || v->empty() || !std::all_of(v->begin(), v->end(), ::isdigit) || v->size() > 18) return std::nullopt;
  return std::stoll(*v);
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

const Attribute* find_attribute(const Span& span, std::string_view key) {
  for (const auto& a : span.attributes)
    if (a.key == key) return &a;
  return nullptr;
}

SpanBuilder::SpanBuilder(SpanOptions options) : options_(options) {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) host_name_ = name;
}

std::shared_ptr<const Resource> SpanBuilder::resource_for(const ConnectionInfo& c) {
  std::string exe = c.process ? c.process->exe : "";
  uint64_t key = static_cast<uint64_t>(c.pid) << 32 ^ std::hash<std::string>{}(exe);
  if (auto it = resources_.find(key); it != resources_.end()) return it->second;
  if (resources_.size() > 65536) resources_.clear();  // bounded; rebuilt on demand

  auto r = std::make_shared<Resource>();
  std::string executable = exe.empty() ? c.comm : basename_of(exe);
  r->service_name = !options_.service_name.empty()                          ? options_.service_name
                    : c.process && !c.process->service_name.empty() ? c.process->service_name
                                                                     : executable;
  add(r->attributes, "service.name", r->service_name);
  add(r->attributes, "process.pid", static_cast<int64_t>(c.pid));
  add(r->attributes, "process.executable.name", executable);
  if (!exe.empty()) add(r->attributes, "process.executable.path", exe);
  if (options_.command_line && c.process && !c.process->command_line.empty())
    add(r->attributes, "process.command_line", c.process->command_line);
  if (!host_name_.empty()) add(r->attributes, "host.name", host_name_);
  add(r->attributes, "telemetry.distro.name", std::string("weft"));
  resources_[key] = r;
  return r;
}

Span SpanBuilder::build(std::shared_ptr<const Exchange> ex) {
  const ConnectionInfo& c = *ex->connection;
  const HttpInfo& http = ex->http;
  Span s;
  s.kind = ex->side == Role::Client ? SpanKind::Client : SpanKind::Server;
  s.start_ns = ex->request.start_ns + c.wall_offset_ns;
  s.end_ns = std::max(ex->response.end_ns, ex->request.start_ns) + c.wall_offset_ns;
  s.resource = resource_for(c);
  s.wire = extract_context(http.request_headers);

  std::string method = known_method(http.method) ? http.method : "_OTHER";
  std::string_view target = http.target;
  bool origin_form = target.starts_with("/");
  std::string_view path = target.substr(0, target.find('?'));
  std::string_view query = target.find('?') == std::string_view::npos ? std::string_view() : target.substr(target.find('?') + 1);
  std::string route = origin_form ? route_template(path) : "";
  // Semantic conventions: an unknown method is named "HTTP" (the method is unbounded input).
  std::string name_method = method == "_OTHER" ? "HTTP" : method;
  s.name = route.empty() ? name_method : name_method + " " + route;

  auto& a = s.attributes;
  add(a, "http.request.method", method);
  if (method == "_OTHER") add(a, "http.request.method_original", http.method);
  add(a, "url.scheme", std::string("http"));
  if (origin_form) add(a, "url.path", std::string(path));
  if (!query.empty()) add(a, "url.query", options_.query_values ? std::string(query) : redact_query(query));
  if (http.status) add(a, "http.response.status_code", static_cast<int64_t>(http.status));
  add(a, "network.protocol.version", http.version);

  std::string host_name;
  int64_t host_port = s.kind == SpanKind::Server ? c.local.port : c.remote.port;
  const std::string* host = find_header(http.request_headers, "host");
  if (!host || !split_host(*host, host_name, host_port)) host_name = s.kind == SpanKind::Server ? c.local.address() : c.remote.address();
  add(a, "server.address", host_name);
  add(a, "server.port", host_port);
  add(a, "network.peer.address", c.remote.address());
  add(a, "network.peer.port", static_cast<int64_t>(c.remote.port));
  if (s.kind == SpanKind::Server) {
    add(a, "client.address", c.remote.address());
    if (!route.empty()) add(a, "http.route", route);
  } else {
    std::string full = "http://" + (host ? *host : c.remote.to_string()) + std::string(path);
    if (!query.empty()) full += "?" + (options_.query_values ? std::string(query) : redact_query(query));
    if (origin_form) {
      add(a, "url.full", full);
    } else if (target.starts_with("http://") || target.starts_with("https://")) {
      // Absolute form (a request to a proxy): the target is the URL.
      std::string absolute(target.substr(0, target.find('?')));
      if (!query.empty()) absolute += "?" + (options_.query_values ? std::string(query) : redact_query(query));
      add(a, "url.full", absolute);
    }
    if (!route.empty()) add(a, "url.template", route);
  }
  if (const std::string* ua = find_header(http.request_headers, "user-agent")) add(a, "user_agent.original", *ua);
  if (auto n = content_length(http.request_headers)) add(a, "http.request.body.size", *n);
  if (auto n = content_length(http.response_headers)) add(a, "http.response.body.size", *n);
  if (ex->request.truncated || ex->response.truncated) add(a, "weft.http.headers_truncated", true);
  if (http.response_end_inferred) add(a, "weft.http.response_end_inferred", true);

  // 5xx is an error on both sides; 4xx only for the client (the server did its job).
  int status = http.status;
  if (status >= 500 || (s.kind == SpanKind::Client && status >= 400)) {
    s.status = StatusCode::Error;
    add(a, "error.type", std::to_string(status));
  }
  s.exchange = std::move(ex);
  return s;
}

}  // namespace weft::trace
