// The /metrics endpoint: what it answers, what it refuses, how it fails to start and stops.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "metrics/metrics_server.h"
#include "protocols/protocol.h"

using namespace weft;
using namespace weft::metrics;

namespace {

trace::Span server_span(const std::string& service) {
  trace::Span s;
  s.kind = trace::SpanKind::Server;
  s.start_ns = 1'000'000;
  s.end_ns = 4'000'000;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = service;
  s.resource = resource;
  s.metric_family = protocols::find_protocol("http1")->metric_family(s.kind);
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.route", std::string("/a")});
  s.attributes.push_back({"http.response.status_code", int64_t{200}});
  return s;
}

// A plain listening socket on 127.0.0.1 (no SO_REUSEPORT) holding a free port.
struct PortHolder {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int port = 0;

  PortHolder() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(fd, 1) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~PortHolder() { close(fd); }
};

bool accepts_connections(const char* host, int port) {
  httplib::Client client(host, port);
  client.set_connection_timeout(std::chrono::milliseconds(500));
  return static_cast<bool>(client.Get("/metrics"));
}

// Destroys `server` on another thread: false when that takes longer than `limit` (the thread
// is then left behind, so that a server that never stops fails this test instead of hanging it).
bool destroyed_within(std::unique_ptr<MetricsServer> server, std::chrono::milliseconds limit) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> destroyed = done->get_future();
  std::thread([server = std::move(server), done]() mutable {
    server.reset();
    done->set_value();
  }).detach();
  return destroyed.wait_for(limit) == std::future_status::ready;
}

bool ipv6_loopback_available() {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

}  // namespace

TEST_CASE("metrics server: GET /metrics answers the registry's exposition") {
  MetricsRegistry registry;
  registry.record_span(server_span("front"));
  std::string error;
  auto server = MetricsServer::start("127.0.0.1:0", registry, &error);
  REQUIRE_MESSAGE(server, error);
  CHECK(error.empty());
  CHECK(server->port() > 0);

  httplib::Client client("127.0.0.1", server->port());
  auto response = client.Get("/metrics");
  REQUIRE(response);
  CHECK(response->status == 200);
  CHECK(response->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(response->body == registry.render_prometheus());
  CHECK(response->body.find("service_name=\"front\"") != std::string::npos);

  // Later spans show up in later scrapes.
  registry.record_span(server_span("back"));
  auto again = client.Get("/metrics?ignored=1");
  REQUIRE(again);
  CHECK(again->body.find("service_name=\"back\"") != std::string::npos);
}

TEST_CASE("metrics server: anything but GET /metrics is 404") {
  MetricsRegistry registry;
  std::string error;
  auto server = MetricsServer::start("127.0.0.1:0", registry, &error);
  REQUIRE_MESSAGE(server, error);
  httplib::Client client("127.0.0.1", server->port());
  auto other_path = client.Get("/");
  REQUIRE(other_path);
  CHECK(other_path->status == 404);
  auto prefixed = client.Get("/metrics/extra");
  REQUIRE(prefixed);
  CHECK(prefixed->status == 404);
  auto post = client.Post("/metrics", "x", "text/plain");
  REQUIRE(post);
  CHECK(post->status == 404);
  auto head = client.Head("/metrics");
  REQUIRE(head);
  CHECK(head->status == 404);
  auto del = client.Delete("/metrics");
  REQUIRE(del);
  CHECK(del->status == 404);
}

TEST_CASE("metrics server: a port in use is a synchronous one-line error") {
  PortHolder taken;
  MetricsRegistry registry;
  std::string error;
  std::string address = "127.0.0.1:" + std::to_string(taken.port);
  auto server = MetricsServer::start(address, registry, &error);
  CHECK_FALSE(server);
  CHECK(error == "cannot serve metrics on " + address + ": Address already in use");
}

TEST_CASE("metrics server: a second server cannot share the first one's port") {
  MetricsRegistry registry;
  std::string error;
  auto first = MetricsServer::start("127.0.0.1:0", registry, &error);
  REQUIRE_MESSAGE(first, error);
  std::string address = "127.0.0.1:" + std::to_string(first->port());
  auto second = MetricsServer::start(address, registry, &error);
  CHECK_FALSE(second);
  CHECK(error == "cannot serve metrics on " + address + ": Address already in use");
}

TEST_CASE("metrics server: an address not on this machine cannot be bound") {
  MetricsRegistry registry;
  std::string error;
  CHECK_FALSE(MetricsServer::start("192.0.2.1:9464", registry, &error));  // TEST-NET-1
  CHECK(error == "cannot serve metrics on 192.0.2.1:9464: Cannot assign requested address");
}

TEST_CASE("metrics server: malformed addresses are refused before binding") {
  CHECK(validate_metrics_address("127.0.0.1:9464") == "");
  CHECK(validate_metrics_address("0.0.0.0:0") == "");
  CHECK(validate_metrics_address("localhost:65535") == "");
  CHECK(validate_metrics_address("[::1]:9464") == "");
  CHECK(validate_metrics_address("[::]:9464") == "");
  const std::string usage = "expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464";
  const std::string port = "the port must be a number from 0 to 65535";
  CHECK(validate_metrics_address("9464") == "metrics address '9464': " + usage);
  CHECK(validate_metrics_address(":9464") == "metrics address ':9464': " + usage);
  CHECK(validate_metrics_address("[::1]") == "metrics address '[::1]': " + usage);
  CHECK(validate_metrics_address("") == "metrics address '': " + usage);
  CHECK(validate_metrics_address("host:") == "metrics address 'host:': " + port);
  CHECK(validate_metrics_address("host:65536") == "metrics address 'host:65536': " + port);
  CHECK(validate_metrics_address("host:http") == "metrics address 'host:http': " + port);
  CHECK(validate_metrics_address("host:-1") == "metrics address 'host:-1': " + port);
  CHECK(validate_metrics_address("::1:9464") ==
        "metrics address '::1:9464': an IPv6 address goes in brackets, e.g. [::1]:9464");
  CHECK(validate_metrics_address("[nothex]:80") ==
        "metrics address '[nothex]:80': expected an IPv6 address in brackets, e.g. [::1]:9464");
  CHECK(validate_metrics_address("[]:80") ==
        "metrics address '[]:80': expected an IPv6 address in brackets, e.g. [::1]:9464");

  MetricsRegistry registry;
  std::string error;
  CHECK_FALSE(MetricsServer::start("::1:9464", registry, &error));
  CHECK(error == validate_metrics_address("::1:9464"));
}

TEST_CASE("metrics server: IPv6 addresses in brackets are served") {
  if (!ipv6_loopback_available()) {
    MESSAGE("no IPv6 loopback here: skipped");
    return;
  }
  MetricsRegistry registry;
  std::string error;
  auto server = MetricsServer::start("[::1]:0", registry, &error);
  REQUIRE_MESSAGE(server, error);
  CHECK(accepts_connections("::1", server->port()));
  CHECK(server->local_endpoint().to_string() == "[::1]:" + std::to_string(server->port()));
}

TEST_CASE("metrics server: it tells where it is bound, for keeping scrapes out of traces") {
  MetricsRegistry registry;
  std::string error;
  auto loopback = MetricsServer::start("127.0.0.1:0", registry, &error);
  REQUIRE_MESSAGE(loopback, error);
  CHECK(loopback->local_endpoint().port == loopback->port());
  CHECK(loopback->local_endpoint().to_string() == "127.0.0.1:" + std::to_string(loopback->port()));
  // Every address: the all-zero address, as the kernel's self-endpoint map expects.
  auto everywhere = MetricsServer::start("0.0.0.0:0", registry, &error);
  REQUIRE_MESSAGE(everywhere, error);
  CHECK(everywhere->local_endpoint().addr == std::array<uint8_t, 16>{});
  CHECK(everywhere->local_endpoint().port == everywhere->port());
  CHECK(everywhere->port() > 0);
}

TEST_CASE("metrics server: destroying it stops listening, promptly") {
  MetricsRegistry registry;
  std::string error;
  auto server = MetricsServer::start("127.0.0.1:0", registry, &error);
  REQUIRE_MESSAGE(server, error);
  int port = server->port();
  REQUIRE(accepts_connections("127.0.0.1", port));
  REQUIRE(destroyed_within(std::move(server), std::chrono::milliseconds(1500)));
  CHECK_FALSE(accepts_connections("127.0.0.1", port));
  // The port is free again at once.
  auto again = MetricsServer::start("127.0.0.1:" + std::to_string(port), registry, &error);
  CHECK_MESSAGE(again, error);
}
