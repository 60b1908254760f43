// Spans exported per second per core: synthetic traces shaped like weft's own (six HTTP spans,
// three services, the attributes the span builder sets) go through the real ExportQueue and
// exporter to
//   http/protobuf, http/json: OtlpTraceExporter and OtlpTransport (curl), to a sink that
//     answers 200 from a separate process, so only weft's side is counted;
//   file: the OTLP JSON file exporter, writing to /dev/null;
//   encode/protobuf, encode/json: OtlpTraceExporter with a transport that drops the encoded
//     request: the queue and the encoder alone (for callgrind's instruction counts).
// The CPU time of this process (every thread: the pusher, the export thread, the HTTP client's
// thread) divided into the spans delivered is the cost per span.
//   usage: weft_otlp_export_bench [spans] [http/protobuf|http/json|file|encode/protobuf|
//                                          encode/json] [gzip]
#include <httplib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "export/export_queue.h"
#include "export/otlp_exporter.h"
#include "export/otlp_json.h"

namespace {

using namespace weft;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// A child process answering every POST with 200; returns its pid and port.
pid_t start_sink(int* port) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    httplib::Server server;
    server.Post(".*", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
    int p = server.bind_to_any_port("127.0.0.1");
    if (write(fds[1], &p, sizeof(p)) != sizeof(p)) _exit(1);
    server.listen_after_bind();
    _exit(0);
  }
  if (read(fds[0], port, sizeof(*port)) != sizeof(*port)) return -1;
  close(fds[0]);
  close(fds[1]);
  return pid;
}

// Accepts every request without sending it; counts the bytes, so nothing is optimised away.
class DroppingTransport : public exporter::OtlpTransport {
 public:
  explicit DroppingTransport(exporter::Encoding encoding) : OtlpTransport("drop://", encoding) {}
  exporter::ExportResult send_encoded(std::string_view request) override {
    bytes += request.size();
    return {};
  }
  void cancel() override {}
  size_t bytes = 0;
};

std::unique_ptr<exporter::BatchExporter> make_exporter(const std::string& mode, bool gzip,
                                                       int port) {
  std::string error;
  if (mode == "file") return exporter::OtlpFileExporter::open("/dev/null", &error);
  if (mode.starts_with("encode/"))
    return std::make_unique<exporter::OtlpTraceExporter>(
        std::make_unique<DroppingTransport>(mode == "encode/json" ? exporter::Encoding::Json
                                                                  : exporter::Encoding::Protobuf),
        exporter::ResourceOverrides{});
  exporter::OtlpSignal settings;
  settings.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  settings.protocol = *exporter::parse_protocol(mode);
  settings.gzip = gzip;
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Traces, settings, &error);
  return std::make_unique<exporter::OtlpTraceExporter>(std::move(transport),
                                                       exporter::ResourceOverrides{});
}

trace::Trace chain_trace(uint64_t n,
                         const std::vector<std::shared_ptr<const trace::Resource>>& services) {
  trace::Trace t;
  uint64_t start = 1'700'000'000'000'000'000ull + n * 1'000'000;
  for (int i = 0; i < 6; ++i) {
    trace::Span s;
    for (size_t b = 0; b < 16; ++b) s.trace_id[b] = static_cast<uint8_t>(n >> (8 * (b % 8))) ^ 0x5a;
    s.span_id.fill(static_cast<uint8_t>(i + 1));
    s.span_id[0] = static_cast<uint8_t>(n);
    if (i > 0) s.parent_span_id = t.spans.back().span_id;
    s.kind = i % 2 == 0 ? trace::SpanKind::Client : trace::SpanKind::Server;
    s.name = "GET /orders/{id}";
    s.start_ns = start + i * 1000;
    s.end_ns = start + 5'000'000 - i * 1000;
    s.resource = services[static_cast<size_t>(i / 2)];
    s.attributes = {{"http.request.method", std::string("GET")},
                    {"url.scheme", std::string("http")},
                    {"url.path", "/orders/" + std::to_string(n)},
                    {"http.response.status_code", int64_t{200}},
                    {"network.protocol.version", std::string("1.1")},
                    {"server.address", std::string("127.0.0.1")},
                    {"server.port", int64_t{8080 + i / 2}},
                    {"network.peer.address", std::string("127.0.0.1")},
                    {"network.peer.port", int64_t{40000 + i}},
                    {"http.route", std::string("/orders/{id}")},
                    {"user_agent.original", std::string("curl/7.88.1")},
                    {"http.response.body.size", int64_t{1234}}};
    t.spans.push_back(std::move(s));
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t want_spans = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 300'000;
  std::string protocol = argc > 2 ? argv[2] : "http/protobuf";
  bool gzip = argc > 3 && std::strcmp(argv[3], "gzip") == 0;
  bool http = protocol.starts_with("http/");

  int port = 0;
  pid_t sink = http ? start_sink(&port) : 0;
  if (sink < 0) return 1;
  std::vector<std::shared_ptr<const trace::Resource>> services;
  for (const char* name : {"front", "middle", "back"}) {
    auto r = std::make_shared<trace::Resource>();
    r->service_name = name;
    r->attributes = {{"service.name", std::string(name)},
                     {"process.pid", int64_t{1000}},
                     {"host.name", std::string("node")}};
    services.push_back(r);
  }

  exporter::QueueConfig queue_config;
  queue_config.max_spans = want_spans + 1000;  // the benchmark measures cost, not dropping
  queue_config.max_bytes = size_t{8} << 30;
  std::vector<trace::Trace> traces;  // built before the clock starts: not export's cost
  for (uint64_t n = 0; n * 6 < want_spans; ++n) traces.push_back(chain_trace(n, services));
  double cpu_before = cpu_seconds();
  auto wall_before = std::chrono::steady_clock::now();
  exporter::QueueCounters counters;
  {
    exporter::ExportQueue queue(queue_config, make_exporter(protocol, gzip, port));
    for (auto& t : traces) queue.push(std::move(t));
    queue.shutdown(std::chrono::milliseconds(600'000));
    counters = queue.counters();
  }
  double cpu = cpu_seconds() - cpu_before;
  double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_before).count();
  if (sink > 0) {
    kill(sink, SIGKILL);
    waitpid(sink, nullptr, 0);
  }

  std::printf(
      "protocol %s%s  spans %llu  failed %llu  wall %.2fs  cpu %.2fs  spans/s %.0f  spans/cpu-s "
      "%.0f  us/span %.2f\n",
      protocol.c_str(), gzip ? "+gzip" : "", (unsigned long long)counters.spans_exported,
      (unsigned long long)counters.export_failures, wall, cpu, counters.spans_exported / wall,
      counters.spans_exported / cpu, cpu * 1e6 / counters.spans_exported);
  return counters.spans_exported == 0 ? 1 : 0;
}
