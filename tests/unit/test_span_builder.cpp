// Exchange -> span per the stable OpenTelemetry HTTP semantic conventions.
#include <doctest/doctest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "trace/span_builder.h"
#include "trace_fixtures.h"

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;
using weft::protocols::http1::redact_query;

namespace {

std::optional<std::string> str(const Span& s, std::string_view key) {
  const Attribute* a = find_attribute(s, key);
  if (!a) return std::nullopt;
  const auto* v = std::get_if<std::string>(&a->value);
  return v ? std::optional<std::string>(*v) : std::nullopt;
}

std::optional<int64_t> num(const Span& s, std::string_view key) {
  const Attribute* a = find_attribute(s, key);
  if (!a) return std::nullopt;
  const auto* v = std::get_if<int64_t>(&a->value);
  return v ? std::optional<int64_t>(*v) : std::nullopt;
}

std::optional<bool> flag(const Span& s, std::string_view key) {
  const Attribute* a = find_attribute(s, key);
  if (!a) return std::nullopt;
  const auto* v = std::get_if<bool>(&a->value);
  return v ? std::optional<bool>(*v) : std::nullopt;
}

std::vector<std::string> keys(const std::vector<Attribute>& attrs) {
  std::vector<std::string> out;
  for (const auto& a : attrs) out.push_back(a.key.str());
  return out;
}

std::optional<std::string> resource_str(const Span& s, std::string_view key) {
  for (const auto& a : s.resource->attributes)
    if (a.key == key) {
      const auto* v = std::get_if<std::string>(&a.value);
      return v ? std::optional<std::string>(*v) : std::nullopt;
    }
  return std::nullopt;
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

const Endpoint kServer = ep("10.0.0.1", 8080);
const Endpoint kClient = ep("10.0.0.2", 51234);

std::shared_ptr<Exchange> server_exchange(std::string method, std::string target, int status,
                                          HeaderList req = {}, HeaderList resp = {}) {
  auto ex =
      exchange(Role::Server, connection(100, "api", kServer, kClient, process(100, "/usr/bin/api")),
               std::move(method), std::move(target), status, std::move(req), std::move(resp));
  set_timing(*ex, 1000, 1100, 1900, 2000, 7);
  return ex;
}

std::shared_ptr<Exchange> client_exchange(std::string method, std::string target, int status,
                                          HeaderList req = {}, HeaderList resp = {}) {
  auto ex = exchange(Role::Client,
                     connection(200, "web", kClient, kServer, process(200, "/opt/web/bin/web")),
                     std::move(method), std::move(target), status, std::move(req), std::move(resp));
  set_timing(*ex, 1000, 1100, 1900, 2000, 8);
  return ex;
}

}  // namespace

TEST_CASE("redact_query") {
  CHECK(redact_query("a=1&b=2") == "a=REDACTED&b=REDACTED");
  CHECK(redact_query("token=s3cr3t") == "token=REDACTED");
  CHECK(redact_query("flag&a=") == "flag&a=REDACTED");
  CHECK(redact_query("a=1=2") == "a=REDACTED");
  CHECK(redact_query("a=1&&b=2") == "a=REDACTED&&b=REDACTED");
  CHECK(redact_query("") == "");
}

TEST_CASE("span builder: server span") {
  SpanBuilder builder({});
  auto ex = server_exchange("GET", "/users/42?a=1&b=2", 200,
                            {{"host", "api.example.com:8443"}, {"user-agent", "curl/8.5.0"}},
                            {{"content-length", "123"}});
  Span s = builder.build(ex);
  CHECK(s.kind == SpanKind::Server);
  CHECK(s.name == "GET /users/{id}");
  CHECK(s.status == StatusCode::Unset);
  CHECK(s.exchange == ex);
  CHECK_FALSE(s.wire);
  CHECK_FALSE(s.has_parent());
  CHECK(is_zero(s.trace_id.data(), 16));
  CHECK(is_zero(s.span_id.data(), 8));
  CHECK(keys(s.attributes) ==
        std::vector<std::string>{"http.request.method", "url.scheme", "url.path", "url.query",
                                 "http.response.status_code", "network.protocol.version",
                                 "server.address", "server.port", "network.peer.address",
                                 "network.peer.port", "client.address", "http.route",
                                 "user_agent.original", "http.response.body.size"});
  CHECK(str(s, "http.request.method") == "GET");
  CHECK(str(s, "url.scheme") == "http");
  CHECK(str(s, "url.path") == "/users/42");
  CHECK(str(s, "url.query") == "a=REDACTED&b=REDACTED");
  CHECK(num(s, "http.response.status_code") == 200);
  CHECK(str(s, "network.protocol.version") == "1.1");
  CHECK(str(s, "server.address") == "api.example.com");
  CHECK(num(s, "server.port") == 8443);
  CHECK(str(s, "network.peer.address") == "10.0.0.2");
  CHECK(num(s, "network.peer.port") == 51234);
  CHECK(str(s, "client.address") == "10.0.0.2");
  CHECK(str(s, "http.route") == "/users/{id}");
  CHECK(str(s, "user_agent.original") == "curl/8.5.0");
  CHECK(num(s, "http.response.body.size") == 123);
}

TEST_CASE("span builder: client span") {
  SpanBuilder builder({});
  auto ex = client_exchange("POST", "/orders/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4?x=1", 201,
                            {{"host", "orders.internal"}, {"content-length", "42"}},
                            {{"content-length", "0"}});
  Span s = builder.build(ex);
  CHECK(s.kind == SpanKind::Client);
  CHECK(s.name == "POST /orders/{uuid}");
  CHECK(s.status == StatusCode::Unset);
  CHECK(keys(s.attributes) ==
        std::vector<std::string>{"http.request.method", "url.scheme", "url.path", "url.query",
                                 "http.response.status_code", "network.protocol.version",
                                 "server.address", "server.port", "network.peer.address",
                                 "network.peer.port", "url.full", "url.template",
                                 "http.request.body.size", "http.response.body.size"});
  CHECK(str(s, "http.request.method") == "POST");
  CHECK(str(s, "url.path") == "/orders/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4");
  CHECK(str(s, "url.query") == "x=REDACTED");
  CHECK(num(s, "http.response.status_code") == 201);
  // Host without a port: the port the connection went to.
  CHECK(str(s, "server.address") == "orders.internal");
  CHECK(num(s, "server.port") == 8080);
  CHECK(str(s, "network.peer.address") == "10.0.0.1");
  CHECK(num(s, "network.peer.port") == 8080);
  CHECK(str(s, "url.full") ==
        "http://orders.internal/orders/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4?x=REDACTED");
  CHECK(str(s, "url.template") == "/orders/{uuid}");
  CHECK(num(s, "http.request.body.size") == 42);
  CHECK(num(s, "http.response.body.size") == 0);
  CHECK_FALSE(find_attribute(s, "http.route"));
  CHECK_FALSE(find_attribute(s, "client.address"));
}

TEST_CASE("span builder: network.protocol.version is the request's HTTP version") {
  SpanBuilder builder({});
  auto ex = server_exchange("GET", "/", 200);
  http_of(*ex).version = "1.0";
  CHECK(str(builder.build(ex), "network.protocol.version") == "1.0");
}

TEST_CASE("span builder: query values only when asked for") {
  SpanBuilder redacting({});
  SpanBuilder revealing({.query_values = true});
  auto server = server_exchange("GET", "/search?q=weft&page=2", 200);
  CHECK(str(redacting.build(server), "url.query") == "q=REDACTED&page=REDACTED");
  CHECK(str(revealing.build(server), "url.query") == "q=weft&page=2");

  auto client = client_exchange("GET", "/search?q=weft&page=2", 200, {{"host", "search:9200"}});
  Span redacted = redacting.build(client);
  CHECK(str(redacted, "url.query") == "q=REDACTED&page=REDACTED");
  CHECK(str(redacted, "url.full") == "http://search:9200/search?q=REDACTED&page=REDACTED");
  Span revealed = revealing.build(client);
  CHECK(str(revealed, "url.query") == "q=weft&page=2");
  CHECK(str(revealed, "url.full") == "http://search:9200/search?q=weft&page=2");

  // No query: no attribute, no '?'.
  auto plain = client_exchange("GET", "/search", 200, {{"host", "search:9200"}});
  Span p = redacting.build(plain);
  CHECK_FALSE(find_attribute(p, "url.query"));
  CHECK(str(p, "url.full") == "http://search:9200/search");
}

TEST_CASE("span builder: server.address and server.port") {
  SpanBuilder builder({});
  // IPv6 literal with a port.
  Span v6 = builder.build(server_exchange("GET", "/", 200, {{"host", "[::1]:8081"}}));
  CHECK(str(v6, "server.address") == "::1");
  CHECK(num(v6, "server.port") == 8081);
  // IPv6 literal without a port: the local port.
  Span v6_bare = builder.build(server_exchange("GET", "/", 200, {{"host", "[2001:db8::7]"}}));
  CHECK(str(v6_bare, "server.address") == "2001:db8::7");
  CHECK(num(v6_bare, "server.port") == 8080);
  // Name without a port.
  Span named = builder.build(server_exchange("GET", "/", 200, {{"host", "example.com"}}));
  CHECK(str(named, "server.address") == "example.com");
  CHECK(num(named, "server.port") == 8080);
  // No Host header: the server end of the connection (local for servers, remote for clients).
  Span server = builder.build(server_exchange("GET", "/", 200));
  CHECK(str(server, "server.address") == "10.0.0.1");
  CHECK(num(server, "server.port") == 8080);
  auto client_ex = client_exchange("GET", "/x", 200);
  Span client = builder.build(client_ex);
  CHECK(str(client, "server.address") == "10.0.0.1");
  CHECK(num(client, "server.port") == 8080);
  CHECK(str(client, "url.full") == "http://10.0.0.1:8080/x");
  // A Host header that is not host[:port]: the connection's end.
  Span bad = builder.build(server_exchange("GET", "/", 200, {{"host", "example.com:http"}}));
  CHECK(str(bad, "server.address") == "10.0.0.1");
  CHECK(num(bad, "server.port") == 8080);
  Span empty = builder.build(server_exchange("GET", "/", 200, {{"host", ""}}));
  CHECK(str(empty, "server.address") == "10.0.0.1");

  // An IPv6 peer without Host: url.full brackets the address.
  auto v6_client =
      exchange(Role::Client, connection(5, "c", ep("2001:db8::2", 40000), ep("2001:db8::1", 80)),
               "GET", "/x", 200);
  Span c6 = builder.build(v6_client);
  CHECK(str(c6, "server.address") == "2001:db8::1");
  CHECK(num(c6, "server.port") == 80);
  CHECK(str(c6, "network.peer.address") == "2001:db8::1");
  CHECK(str(c6, "url.full") == "http://[2001:db8::1]:80/x");
}

TEST_CASE("span builder: methods") {
  SpanBuilder builder({});
  for (const char* m :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    INFO(m);
    Span s = builder.build(server_exchange(m, "/a", 200));
    CHECK(str(s, "http.request.method") == m);
    CHECK_FALSE(find_attribute(s, "http.request.method_original"));
    CHECK(s.name == std::string(m) + " /a");
  }
  for (const char* m : {"PROPFIND", "get", "Post"}) {
    INFO(m);
    Span s = builder.build(server_exchange(m, "/a", 200));
    CHECK(str(s, "http.request.method") == "_OTHER");
    CHECK(str(s, "http.request.method_original") == m);
  }
}

// The conventions: {method} is "HTTP" when http.request.method is _OTHER (keeps names bounded).
TEST_CASE("span builder: an unknown method names the span HTTP") {
  SpanBuilder builder({});
  CHECK(builder.build(server_exchange("PROPFIND", "/files/7", 207)).name == "HTTP /files/{id}");
  CHECK(builder.build(client_exchange("get", "*", 200)).name == "HTTP");
  CHECK(builder.build(client_exchange("PURGE", "/cache/a", 200)).name == "HTTP /cache/a");
  // A known method keeps its name.
  CHECK(builder.build(client_exchange("PATCH", "/cache/a", 200)).name == "PATCH /cache/a");
}

TEST_CASE("span builder: targets that are not paths") {
  SpanBuilder builder({});
  Span star = builder.build(server_exchange("OPTIONS", "*", 200));
  CHECK(star.name == "OPTIONS");
  CHECK_FALSE(find_attribute(star, "url.path"));
  CHECK_FALSE(find_attribute(star, "http.route"));
  Span absolute = builder.build(client_exchange("GET", "http://example.com/x", 200));
  CHECK(absolute.name == "GET");
  CHECK_FALSE(find_attribute(absolute, "url.template"));
  CHECK_FALSE(find_attribute(absolute, "url.path"));
  Span root = builder.build(server_exchange("GET", "/", 200));
  CHECK(root.name == "GET /");
  CHECK(str(root, "http.route") == "/");
}

// A request to a forward proxy carries the URL as its target: url.full is required for clients.
TEST_CASE("span builder: an absolute-form client target is the url.full") {
  SpanBuilder builder({});
  Span s =
      builder.build(client_exchange("GET", "http://example.com/x", 200, {{"host", "example.com"}}));
  CHECK(str(s, "url.full") == "http://example.com/x");
  CHECK(s.name == "GET");
  CHECK(str(builder.build(client_exchange("GET", "http://example.com/x?a=1&b=2", 200)),
            "url.full") == "http://example.com/x?a=REDACTED&b=REDACTED");
  SpanBuilder revealing({.query_values = true});
  CHECK(str(revealing.build(client_exchange("GET", "https://example.com/x?a=1", 200)),
            "url.full") == "https://example.com/x?a=1");
  // Not a URL (OPTIONS *): no url.full.
  CHECK_FALSE(find_attribute(builder.build(client_exchange("OPTIONS", "*", 200)), "url.full"));
}

TEST_CASE("span builder: status") {
  SpanBuilder builder({});
  struct Case {
    Role side;
    int status;
    StatusCode want;
  };
  const Case cases[] = {
      {Role::Server, 200, StatusCode::Unset}, {Role::Server, 302, StatusCode::Unset},
      {Role::Server, 404, StatusCode::Unset}, {Role::Server, 499, StatusCode::Unset},
      {Role::Server, 500, StatusCode::Error}, {Role::Server, 503, StatusCode::Error},
      {Role::Client, 200, StatusCode::Unset}, {Role::Client, 304, StatusCode::Unset},
      {Role::Client, 400, StatusCode::Error}, {Role::Client, 404, StatusCode::Error},
      {Role::Client, 500, StatusCode::Error}, {Role::Client, 599, StatusCode::Error},
  };
  for (const auto& c : cases) {
    INFO(to_string(c.side) << " " << c.status);
    auto ex = c.side == Role::Server ? server_exchange("GET", "/", c.status)
                                     : client_exchange("GET", "/", c.status);
    Span s = builder.build(ex);
    CHECK(s.status == c.want);
    if (c.want == StatusCode::Error)
      CHECK(str(s, "error.type") == std::to_string(c.status));
    else
      CHECK_FALSE(find_attribute(s, "error.type"));
    CHECK(num(s, "http.response.status_code") == c.status);
  }
  // No response status: no status code attribute, no error.
  Span none = builder.build(client_exchange("GET", "/", 0));
  CHECK_FALSE(find_attribute(none, "http.response.status_code"));
  CHECK(none.status == StatusCode::Unset);
}

TEST_CASE("span builder: body sizes, truncation and inferred ends") {
  SpanBuilder builder({});
  auto ex = server_exchange("PUT", "/blob", 200, {{"content-length", "1048576"}},
                            {{"content-length", "12x"}});
  Span s = builder.build(ex);
  CHECK(num(s, "http.request.body.size") == 1048576);
  CHECK_FALSE(find_attribute(s, "http.response.body.size"));
  CHECK_FALSE(find_attribute(s, "weft.http.headers_truncated"));
  CHECK_FALSE(find_attribute(s, "weft.http.response_end_inferred"));

  auto odd =
      server_exchange("PUT", "/blob", 200, {{"content-length", ""}}, {{"content-length", "-1"}});
  odd->request.truncated = true;
  http_of(*odd).response_end_inferred = true;
  Span o = builder.build(odd);
  CHECK_FALSE(find_attribute(o, "http.request.body.size"));
  CHECK_FALSE(find_attribute(o, "http.response.body.size"));
  CHECK(flag(o, "weft.http.headers_truncated") == true);
  CHECK(flag(o, "weft.http.response_end_inferred") == true);
}

TEST_CASE("span builder: times are wall clock") {
  SpanBuilder builder({});
  auto ex = exchange(Role::Server,
                     connection(1, "srv", kServer, kClient, nullptr, 1'700'000'000'000'000'000),
                     "GET", "/", 200);
  set_timing(*ex, 5000, 5100, 5900, 6000, 3);
  Span s = builder.build(ex);
  CHECK(s.start_ns == 1'700'000'000'000'005'000ull);
  CHECK(s.end_ns == 1'700'000'000'000'006'000ull);
  // No response end: a zero-length span at the request's start.
  ex->response.end_ns = 0;
  Span open = builder.build(ex);
  CHECK(open.start_ns == 1'700'000'000'000'005'000ull);
  CHECK(open.end_ns == 1'700'000'000'000'005'000ull);
}

TEST_CASE("span builder: wire context from the request headers") {
  SpanBuilder builder({});
  Span s = builder.build(
      server_exchange("GET", "/", 200,
                      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                       {"tracestate", "a=1"}}));
  REQUIRE(s.wire);
  CHECK(hex(s.wire->trace_id) == "4bf92f3577b34da6a3ce929d0e0e4736");
  CHECK(hex(s.wire->span_id) == "00f067aa0ba902b7");
  CHECK(s.wire->tracestate == "a=1");
  // The span itself has no ids until the stitcher places it.
  CHECK(is_zero(s.trace_id.data(), 16));
  CHECK(s.tracestate.empty());
}

// What the stitcher and the sampler see before a trace is kept must be what the full
// description says: kind, status (errors are kept), wire context, times, resource, family.
TEST_CASE("span builder: a deferred span has the essentials, described later in full") {
  SpanBuilder builder({});
  std::vector<std::shared_ptr<Exchange>> exchanges;
  for (int status : {200, 404, 500, 0}) {
    exchanges.push_back(server_exchange("GET", "/items/7?q=1", status));
    exchanges.push_back(client_exchange("POST", "/items", status));
  }
  exchanges.push_back(server_exchange(
      "GET", "/", 200,
      {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}));
  for (const auto& ex : exchanges) {
    INFO(to_string(ex->side) << " " << http_of(*ex).status);
    Span full = builder.build(ex);
    Span deferred = builder.build_deferred(ex);
    CHECK(deferred.name.empty());
    CHECK(deferred.attributes.empty());
    CHECK(deferred.outcome.empty());
    CHECK(deferred.kind == full.kind);
    CHECK(deferred.status == full.status);
    CHECK(deferred.wire.has_value() == full.wire.has_value());
    if (full.wire) CHECK(deferred.wire->trace_id == full.wire->trace_id);
    CHECK(deferred.start_ns == full.start_ns);
    CHECK(deferred.end_ns == full.end_ns);
    CHECK(deferred.resource == full.resource);
    CHECK(deferred.metric_family == full.metric_family);
    // Something the stitcher adds before the description stays.
    deferred.attributes.push_back({"weft.start_bounded_by_child", true});
    builder.describe(deferred);
    CHECK(deferred.name == full.name);
    CHECK(deferred.outcome == full.outcome);
    std::vector<std::string> want = keys(full.attributes);
    want.push_back("weft.start_bounded_by_child");
    CHECK(keys(deferred.attributes) == want);
    // Describing twice changes nothing.
    builder.describe(deferred);
    CHECK(keys(deferred.attributes) == want);
  }
}

TEST_CASE("span builder: a service name given to weft names every process") {
  SpanBuilder builder({.service_name = "edge"});
  auto with_service = process(100, "/usr/local/bin/checkout", "checkout-svc", "checkout");
  Span s = builder.build(exchange(
      Role::Server, connection(100, "checkout", kServer, kClient, with_service), "GET", "/", 200));
  CHECK(s.resource->service_name == "edge");
  CHECK(resource_str(s, "service.name") == "edge");
  CHECK(resource_str(s, "process.executable.name") == "checkout");  // the process's own facts stay
}

TEST_CASE("span builder: resource") {
  SpanBuilder builder({});
  auto with_service =
      process(100, "/usr/local/bin/checkout", "checkout-svc", "checkout --port 8080");
  auto ex =
      exchange(Role::Server, connection(100, "checkout-worker", kServer, kClient, with_service),
               "GET", "/", 200);
  Span s = builder.build(ex);
  REQUIRE(s.resource);
  CHECK(s.resource->service_name == "checkout-svc");
  std::vector<std::string> want_keys = {"service.name", "process.pid", "process.executable.name",
                                        "process.executable.path"};
  if (!host_name().empty()) want_keys.push_back("host.name");
  want_keys.push_back("telemetry.distro.name");
  CHECK(keys(s.resource->attributes) == want_keys);
  CHECK(resource_str(s, "service.name") == "checkout-svc");
  CHECK(resource_str(s, "process.executable.name") == "checkout");
  CHECK(resource_str(s, "process.executable.path") == "/usr/local/bin/checkout");
  CHECK(resource_str(s, "telemetry.distro.name") == "weft");
  if (!host_name().empty()) CHECK(resource_str(s, "host.name") == host_name());
  const Attribute& pid = s.resource->attributes[1];
  REQUIRE(std::holds_alternative<int64_t>(pid.value));
  CHECK(std::get<int64_t>(pid.value) == 100);
  // No command line unless asked for.
  CHECK_FALSE(resource_str(s, "process.command_line"));

  // One resource per process: the same object for every span of it.
  Span again = builder.build(server_exchange("GET", "/x", 200));  // pid 100, another exe
  CHECK(builder.build(ex).resource == s.resource);
  CHECK(again.resource != s.resource);

  // No OTEL_SERVICE_NAME: the executable's base name.
  Span plain = builder.build(client_exchange("GET", "/", 200));
  CHECK(plain.resource->service_name == "web");
  CHECK(resource_str(plain, "service.name") == "web");
  CHECK(resource_str(plain, "process.executable.name") == "web");
  CHECK(resource_str(plain, "process.executable.path") == "/opt/web/bin/web");

  // No process information at all: the comm, and no executable path.
  auto anonymous =
      exchange(Role::Server, connection(300, "nginx", kServer, kClient), "GET", "/", 200);
  Span a = builder.build(anonymous);
  CHECK(a.resource->service_name == "nginx");
  CHECK(resource_str(a, "process.executable.name") == "nginx");
  CHECK_FALSE(resource_str(a, "process.executable.path"));

  // The command line when asked for.
  SpanBuilder with_command_line({.command_line = true});
  Span c = with_command_line.build(ex);
  CHECK(resource_str(c, "process.command_line") == "checkout --port 8080");
  // ... and only when there is one.
  CHECK_FALSE(resource_str(with_command_line.build(client_exchange("GET", "/", 200)),
                           "process.command_line"));
}

TEST_CASE("span builder: an exited process's resource is forgotten, others kept") {
  SpanBuilder builder({});
  auto build_for = [&](uint32_t pid) {
    auto p = process(pid, "/usr/bin/curl", "", "curl");
    return builder.build(
        exchange(Role::Client, connection(pid, "curl", kClient, kServer, p), "GET", "/", 200));
  };
  Span first = build_for(100), other = build_for(200);
  CHECK(build_for(100).resource == first.resource);  // one resource per process
  builder.forget_processes({100});
  Span after = build_for(100);
  CHECK(after.resource != first.resource);  // built again for whatever pid 100 is now
  CHECK(after.resource->service_name == "curl");
  CHECK(build_for(200).resource == other.resource);
}
