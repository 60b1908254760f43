#include "metrics/metrics_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "metrics/prometheus_text.h"

namespace weft::metrics {
namespace {

// Scrapes are rare and short: two workers are plenty, and one slow client cannot block the other.
constexpr size_t kWorkerThreads = 2;
// Bounds how long a silent or slow client keeps a worker, and so how long stopping may take.
constexpr time_t kIdleTimeoutSeconds = 1;
constexpr time_t kReadTimeoutSeconds = 1;
constexpr time_t kWriteTimeoutSeconds = 2;

struct HostPort {
  std::string host;  // without brackets
  int port = 0;
};

std::string address_error(const std::string& address, const std::string& reason) {
  return "metrics address '" + address + "': " + reason;
}

bool valid_port(const std::string& port) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return !port.empty() && port.size() <= 5 && std::all_of(port.begin(), port.end(), digit) &&
         std::stoi(port) <= 65535;
}

// Empty when `address` is HOST:PORT or [IPV6]:PORT, with `out` filled.
std::string parse_address(const std::string& address, HostPort* out) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || address.back() == ']')
    return address_error(address, "expected HOST:PORT, e.g. 127.0.0.1:9464 or [::1]:9464");
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (!valid_port(port)) return address_error(address, "the port must be a number from 0 to 65535");
  if (host.front() == '[') {
    in6_addr ignored{};
    if (host.size() < 3 || host.back() != ']' ||
        inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &ignored) != 1)
      return address_error(address, "expected an IPv6 address in brackets, e.g. [::1]:9464");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string::npos) {
    return address_error(address, "an IPv6 address goes in brackets, e.g. [::1]:9464");
  }
  out->host = host;
  out->port = std::stoi(port);
  return "";
}

// httplib would only say that binding failed; the resolver says why a name does not work.
std::string resolve_error(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (found) freeaddrinfo(found);
  return rc == 0 ? "" : gai_strerror(rc);
}

// httplib's default also sets SO_REUSEPORT, which would let a second weft share the port
// silently and answer half the scrapes. SO_REUSEADDR alone lets a restart bind at once.
void reuse_address_only(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

httplib::Server::HandlerResponse only_get_metrics(const httplib::Request& request,
                                                  httplib::Response& response) {
  if (request.method == "GET" && request.path == "/metrics")
    return httplib::Server::HandlerResponse::Unhandled;
  response.status = 404;
  response.set_content("not found: weft serves GET /metrics\n", "text/plain; charset=utf-8");
  return httplib::Server::HandlerResponse::Handled;
}

void configure(httplib::Server& http, MetricsRegistry& registry) {
  http.set_socket_options(reuse_address_only);
  http.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  http.set_keep_alive_max_count(1);
  http.set_keep_alive_timeout(kIdleTimeoutSeconds);
  http.set_read_timeout(kReadTimeoutSeconds);
  http.set_write_timeout(kWriteTimeoutSeconds);
  http.set_pre_routing_handler(only_get_metrics);
  http.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& response) {
    response.set_content(registry.render_prometheus(), kPrometheusContentType);
  });
}

bool bind_to(httplib::Server& http, const HostPort& where) {
  if (where.port == 0) return http.bind_to_any_port(where.host) >= 0;
  return http.bind_to_port(where.host, where.port);
}

std::unique_ptr<MetricsServer> fail(std::string* error, std::string message) {
  *error = std::move(message);
  return nullptr;
}

}  // namespace

// httplib keeps its listening socket to itself; a subclass may read where it is bound.
class MetricsServer::HttpServer : public httplib::Server {
 public:
  Endpoint bound_endpoint() const {
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    getsockname(svr_sock_, reinterpret_cast<sockaddr*>(&bound), &length);
    return endpoint_of(bound);
  }

 private:
  // The all-zero address stands for every address, IPv4's 0.0.0.0 included.
  static Endpoint endpoint_of(const sockaddr_storage& bound) {
    Endpoint e;
    if (bound.ss_family == AF_INET6) {
      const auto& v6 = reinterpret_cast<const sockaddr_in6&>(bound);
      std::memcpy(e.addr.data(), &v6.sin6_addr, 16);
      e.port = ntohs(v6.sin6_port);
      return e;
    }
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(bound);
    if (v4.sin_addr.s_addr != INADDR_ANY) {
      e.addr[10] = e.addr[11] = 0xff;
      std::memcpy(e.addr.data() + 12, &v4.sin_addr, 4);
    }
    e.port = ntohs(v4.sin_port);
    return e;
  }
};

std::string validate_metrics_address(const std::string& address) {
  HostPort ignored;
  return parse_address(address, &ignored);
}

MetricsServer::MetricsServer() : http_(std::make_unique<HttpServer>()) {}

MetricsServer::~MetricsServer() {
  if (!listener_.joinable()) return;
  http_->stop();
  listener_.join();
}

std::unique_ptr<MetricsServer> MetricsServer::start(const std::string& address,
                                                    MetricsRegistry& registry, std::string* error) {
  HostPort where;
  if (std::string bad = parse_address(address, &where); !bad.empty()) return fail(error, bad);
  if (std::string bad = resolve_error(where.host); !bad.empty())
    return fail(error, address_error(address, bad));
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  configure(*server->http_, registry);
  errno = 0;
  if (!bind_to(*server->http_, where)) {
    std::string reason = errno ? std::strerror(errno) : "cannot bind";
    return fail(error, "cannot serve metrics on " + address + ": " + reason);
  }
  server->local_ = server->http_->bound_endpoint();
  server->listener_ = std::thread(&MetricsServer::listen, server.get());
  // stop() only acts on a server that is already listening: wait for that, so that the
  // destructor always stops it.
  while (!server->http_->is_running() && !server->listener_done_)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!server->http_->is_running())
    return fail(error, "cannot serve metrics on " + address + ": listening failed");
  return server;
}

void MetricsServer::listen() {
  http_->listen_after_bind();
  listener_done_ = true;
}

}  // namespace weft::metrics
