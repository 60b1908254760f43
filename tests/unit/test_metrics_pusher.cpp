// MetricsPusher: the registry leaves on the pusher's own thread while the pipeline thread keeps
// recording, with one last push at stop; failed pushes are counted. Under TSan
// (scripts/sanitize.sh thread) this is what checks the pusher's locking.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "metrics/metrics_pusher.h"
#include "protocols/protocol.h"

using namespace weft;
using namespace std::chrono_literals;

namespace {

trace::Span server_span(int n) {
  trace::Span s;
  s.kind = trace::SpanKind::Server;
  s.start_ns = 1'700'000'000'000'000'000ull;
  s.end_ns = s.start_ns + 1'000'000;
  auto resource = std::make_shared<trace::Resource>();
  resource->service_name = "svc-" + std::to_string(n % 4);
  s.resource = resource;
  s.metric_family = protocols::find_protocol("http1")->metric_family(s.kind);
  s.attributes.push_back({"http.request.method", std::string("GET")});
  s.attributes.push_back({"http.response.status_code", int64_t{200}});
  return s;
}

// A loopback port that was just free: bound once, then closed, so connections are refused.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::unique_ptr<exporter::OtlpTransport> transport_to(int port) {
  exporter::OtlpSignal s;
  s.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/metrics";
  s.timeout = 2000ms;
  std::string error;
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Metrics, s, &error);
  REQUIRE_MESSAGE(transport, error);
  return transport;
}

// Records spans on this thread until `pushes` pushes arrived (or 20 s passed).
void record_until(metrics::MetricsRegistry& registry, const std::atomic<int>& received,
                  int pushes) {
  auto deadline = std::chrono::steady_clock::now() + 20s;
  for (int n = 0; received < pushes && std::chrono::steady_clock::now() < deadline; ++n) {
    registry.record_span(server_span(n));
    if (n % 64 == 0) std::this_thread::sleep_for(1ms);
  }
}

}  // namespace

TEST_CASE("metrics pusher: pushes on its thread while spans are recorded, and once more at stop") {
  httplib::Server backend;
  std::atomic<int> received{0};
  backend.Post("/v1/metrics", [&](const httplib::Request& req, httplib::Response& res) {
    CHECK(!req.body.empty());
    ++received;
    res.status = 200;
  });
  // One request per connection: a kept-alive one would hold stop() for its 5 s timeout.
  backend.set_keep_alive_max_count(1);
  int port = backend.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { backend.listen_after_bind(); });

  metrics::MetricsRegistry registry;
  metrics::MetricsPusher pusher(registry, transport_to(port), {}, 20ms);
  record_until(registry, received, 2);
  REQUIRE(received >= 2);
  pusher.stop();
  metrics::PushCounters c = pusher.counters();
  CHECK(c.pushes >= 3);  // two during recording, the last one at stop
  CHECK(c.failures == 0);
  CHECK(received == static_cast<int>(c.pushes));
  backend.stop();
  serving.join();
}

TEST_CASE("metrics pusher: pushes nobody receives are counted as failures, not retried") {
  metrics::MetricsRegistry registry;
  metrics::MetricsPusher pusher(registry, transport_to(closed_port()), {}, 10ms);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (int n = 0; pusher.counters().failures < 3 && std::chrono::steady_clock::now() < deadline;
       ++n) {
    registry.record_span(server_span(n));
    std::this_thread::sleep_for(1ms);
  }
  pusher.stop();
  metrics::PushCounters c = pusher.counters();
  CHECK(c.failures >= 3);
  CHECK(c.failures == c.pushes);
  CHECK(!c.last_error.empty());
}
