// GET /metrics over HTTP (cpp-httplib) for Prometheus, on threads of its own.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "metrics/metrics_registry.h"
#include "weft/event.h"

namespace httplib {
class Server;
}

namespace weft::metrics {

// Empty when `address` is HOST:PORT (IPv6 in brackets: [::1]:9464; port 0: any free port),
// else a one-line reason. Names are not resolved here.
std::string validate_metrics_address(const std::string& address);

class MetricsServer {
 public:
  // Binds before returning, so a malformed address or one that cannot be bound yields null and
  // a one-line `error`; then serves on its own thread. `registry` must outlive the server.
  static std::unique_ptr<MetricsServer> start(const std::string& address, MetricsRegistry& registry,
                                              std::string* error);
  // Stops listening and waits for requests being answered.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  int port() const { return local_.port; }  // the bound port (the chosen one when asked for 0)
  // The bound address and port, for keeping scrapes out of the traces
  // (EventSource::exclude_peers_of). All-zero address when listening on every address.
  const Endpoint& local_endpoint() const { return local_; }

 private:
  MetricsServer();
  void listen();

  class HttpServer;
  std::unique_ptr<HttpServer> http_;
  Endpoint local_;
  std::atomic<bool> listener_done_{false};
  std::thread listener_;
};

}  // namespace weft::metrics
