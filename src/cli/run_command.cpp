// `weft run`: weft's main job. Kernel events -> connections -> exchanges -> spans -> traces
// -> an exporter.
#include <cstdio>

#include "capture/kernel_capture.h"
#include "cli/commands.h"
#include "cli/pipeline.h"
#include "cli/run_summary.h"
#include "conn/connection_tracker.h"
#include "export/console_exporter.h"
#include "export/delivery_report.h"
#include "export/export_queue.h"
#include "export/otlp_exporter.h"
#include "export/otlp_json.h"
#include "metrics/metrics_pusher.h"
#include "metrics/metrics_registry.h"
#include "metrics/metrics_server.h"
#include "metrics/self_snapshot.h"
#include "net/ack_wait.h"
#include "net/span_facts.h"
#include "net/tcp_facts.h"
#include "net/tcp_metrics.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "trace/thread_evidence_feed.h"

namespace weft::cli {
namespace {

exporter::ResourceOverrides resource_overrides(const exporter::ExportConfig& o) {
  return {o.resource_attributes};
}

// On exit, how long the export thread may keep trying to deliver what is queued.
constexpr std::chrono::milliseconds kExportDrainTime{5000};
// How often the pipeline thread refreshes weft's own counters for /metrics.
constexpr uint64_t kSelfMetricsPeriodNs = 1'000'000'000;
// How often it looks for exited processes, whose per-process state then goes: a node starts
// processes all day (cron jobs, health checks, curl in a loop).
constexpr uint64_t kExitedProcessesPeriodNs = 5'000'000'000;

std::unique_ptr<exporter::BatchExporter> make_exporter(const exporter::ExportConfig& o,
                                                       std::string* error) {
  if (o.exporter == "console") return std::make_unique<exporter::ConsoleExporter>(stdout);
  if (o.exporter == "otlp-file") return exporter::OtlpFileExporter::open(o.output_path, error);
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Traces, o.traces, error);
  if (!transport) return nullptr;
  return std::make_unique<exporter::OtlpTraceExporter>(std::move(transport), resource_overrides(o));
}

// The Prometheus endpoint. A failure to bind the default address is a warning (another weft,
// or something else, has the port); an address the user asked for is a hard error.
bool start_metrics_server(const exporter::ExportConfig& o, metrics::MetricsRegistry& registry,
                          std::unique_ptr<metrics::MetricsServer>& server) {
  if (o.metrics_address == "off") return true;
  std::string error;
  server = metrics::MetricsServer::start(o.metrics_address, registry, &error);
  if (server) return true;
  if (o.metrics_address_explicit) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    return false;
  }
  std::fprintf(
      stderr,
      "weft run: no metrics endpoint: %s (--metrics-address to choose another, off to silence)\n",
      error.c_str());
  return true;
}

std::unique_ptr<metrics::MetricsPusher> start_metrics_pusher(const exporter::ExportConfig& o,
                                                             metrics::MetricsRegistry& registry,
                                                             std::string* error) {
  if (!o.otlp_metrics) return nullptr;
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Metrics, o.metrics, error);
  if (!transport) return nullptr;
  metrics::OtlpMetricsOptions options;
  options.resource_attributes.assign(o.resource_attributes.begin(), o.resource_attributes.end());
  return std::make_unique<metrics::MetricsPusher>(registry, std::move(transport),
                                                  std::move(options), o.metrics_interval);
}

exporter::QueueConfig queue_config(const exporter::ExportConfig& o) {
  exporter::QueueConfig q;
  q.max_spans = o.queue_max_spans;
  q.max_bytes = o.queue_max_bytes;
  q.flush_interval = o.queue_interval;
  return q;
}

void print_summary(const trace::StitchCounters& s, const conn::ConnectionTracker& tracker,
                   const exporter::ExportQueue& queue) {
  exporter::QueueCounters q = queue.counters();
  std::fprintf(stderr, "%s\n", spans_line(tally(s, q)).c_str());
  std::fprintf(stderr, "%s\n", links_line(s).c_str());
  const auto& t = tracker.counters();
  const auto& p = tracker.protocol_counters();
  uint64_t parse_errors = 0, unmatched = 0;
  for (const auto& c : p) {
    parse_errors += c.parse_errors;
    unmatched += c.unmatched_requests + c.unmatched_responses;
  }
  std::fprintf(
      stderr,
      "weft run: connections: %llu tracked, %llu undetected, %llu detected after a miss, %llu "
      "evicted, %llu sequence mismatches; parse_errors=%llu unmatched=%llu; tls: %llu "
      "connections read as plaintext, %llu ciphertext bytes not parsed; %llu body bytes left "
      "uncopied by %llu skip verdicts\n",
      (unsigned long long)t.connections, (unsigned long long)t.undetected,
      (unsigned long long)t.redetected, (unsigned long long)t.evicted,
      (unsigned long long)t.sequence_mismatches, (unsigned long long)parse_errors,
      (unsigned long long)unmatched, (unsigned long long)t.tls_connections,
      (unsigned long long)t.superseded_bytes, (unsigned long long)t.skipped_bytes,
      (unsigned long long)t.skip_verdicts);
  std::fprintf(stderr, "%s\n", export_line(q, queue.last_error()).c_str());
}

// --ack-wait holds server spans for an ACK record: only when tcp__acked runs (a recording has
// whatever records it has). Otherwise every span would wait out its bound for nothing.
bool ack_records_expected(const RunOptions& options, capture::EventSource& source) {
  if (!options.capture.ack_wait) return false;
  auto* kernel = dynamic_cast<capture::KernelCapture*>(&source);
  if (!kernel) return true;
  for (const capture::HookStatus& h : kernel->hooks()) {
    if (h.spec->program != "tcp__acked") continue;
    if (h.state == capture::HookState::Attached) return true;
    std::fprintf(stderr, "weft run: --ack-wait: tcp__acked is %s (%s): server spans are not held\n",
                 capture::to_string(h.state), h.detail.c_str());
    return false;
  }
  return false;
}

void print_ack_wait_summary(const net::AckWaitCounters& a) {
  std::fprintf(stderr,
               "weft run: ack wait: %llu server spans held, %llu acknowledged, %llu by an ACK "
               "weft was not told of, %llu closed first, %llu unanswered; %llu not held (no "
               "sequence range)\n",
               (unsigned long long)a.held, (unsigned long long)a.acked,
               (unsigned long long)a.ack_unseen, (unsigned long long)a.closed_first,
               (unsigned long long)a.timed_out, (unsigned long long)a.not_held);
}

void print_push_summary(const metrics::PushCounters& p) {
  std::fprintf(stderr, "weft run: metrics: %llu OTLP pushes, %llu failed%s%s\n",
               (unsigned long long)p.pushes, (unsigned long long)p.failures,
               p.last_error.empty() ? "" : "; last error: ", p.last_error.c_str());
}

}  // namespace

std::string validate(const RunOptions& o) {
  if (o.output.metrics_address != "off")
    if (std::string bad = metrics::validate_metrics_address(o.output.metrics_address); !bad.empty())
      return "--metrics-address: " + bad;
  if (std::string bad = trace::validate(o.stitch.sampler); !bad.empty()) return bad;
  return capture::validate(o.capture);
}

int run_traces(const RunOptions& options) {
  std::string error;
  auto out = make_exporter(options.output, &error);
  if (!out) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    return kExitUsage;
  }
  metrics::MetricsRegistry registry;  // outlives the server and the pusher that read it
  std::unique_ptr<metrics::MetricsServer> metrics_server;
  if (!start_metrics_server(options.output, registry, metrics_server)) return kExitFailure;
  OpenedSource opened = open_source(options.replay_path, options.capture, "run");
  if (!opened.source) return opened.exit_code;
  if (metrics_server) opened.source->exclude_peers_of(metrics_server->local_endpoint());
  int64_t wall_offset = opened.source->wall_offset_ns();
  bool hold_for_acks = ack_records_expected(options, *opened.source);
  capture::EventStream stream(std::move(opened.source));

  // The export thread: the pipeline never waits for an exporter.
  // Export failures are told on stderr as they happen, not only in the summary.
  auto reporter = std::make_unique<exporter::DeliveryReporter>(
      out->destination(),
      [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); });
  exporter::ExportQueue queue(queue_config(options.output), std::move(out), std::move(reporter));
  auto pusher = start_metrics_pusher(options.output, registry, &error);
  if (!error.empty()) std::fprintf(stderr, "weft run: no OTLP metrics: %s\n", error.c_str());
  trace::SpanBuilder spans(options.spans);
  // Spans are described (name, attributes) only when their trace is kept; the duration metrics
  // take their labels from the exchange (Protocol::metric_labels).
  trace::Stitcher stitcher(
      options.stitch, [&](trace::Trace&& t) { queue.push(std::move(t)); },
      [&](trace::Span& s) { spans.describe(s); });
  bool record_metrics = metrics_server || pusher;
  uint64_t now_wall = 0;
  net::TcpFacts tcp_facts;  // fed before the tracker: an exchange finds what preceded its end
  // The kernel facts are read as a span leaves: at once, or with --ack-wait when its response
  // was acknowledged (server spans).
  auto span_done = [&](trace::Span&& span) {
    net::ExchangeFacts kernel_facts = tcp_facts.for_exchange(*span.exchange);
    net::annotate_span(kernel_facts, wall_offset, span);
    if (record_metrics) {  // every request counts, sampled or not
      registry.record_span(span);
      net::record_receive_queue_wait(registry, span, kernel_facts);
    }
    stitcher.add(std::move(span), now_wall);
  };
  // Half the stitch wait at most: the span must still find its client span.
  net::AckWait ack_wait(tcp_facts, options.stitch.wait_ns / 2, span_done);
  trace::TraceFeed feed(stitcher, wall_offset, [&](Exchange&& ex) {
    auto shared = std::make_shared<const Exchange>(std::move(ex));
    bool labels_need_attributes = record_metrics && !shared->protocol->has_metric_labels();
    trace::Span span = labels_need_attributes ? spans.build(std::move(shared))
                                              : spans.build_deferred(std::move(shared));
    if (hold_for_acks)
      ack_wait.add(std::move(span));
    else
      span_done(std::move(span));
  });
  conn::TrackerOutputs outputs = feed.outputs();
  // Connections weft gave up on stop costing the kernel a copy of their bytes.
  outputs.capture_verdict = [&stream](uint64_t cookie, const CaptureVerdict& verdict) {
    stream.source().set_verdict(cookie, verdict);
  };
  conn::ConnectionTracker tracker(options.tracker, std::move(outputs), wall_offset);
  auto publish_self = [&] {
    registry.set_self(metrics::collect_self_snapshot(stream.source_stats(), stream.stream_stats(),
                                                     tracker, stitcher.counters(),
                                                     queue.counters()));
  };
  uint64_t self_published_at = 0;
  uint64_t exited_checked_at = 0;

  pump(
      stream, options.duration_s,
      [&](Event&& e) {
        now_wall = std::max(now_wall, e.mono_ns + wall_offset);
        if (record_metrics && (e.kind == EventKind::Tcp || e.kind == EventKind::Close)) {
          net::NetCounters before = tcp_facts.counters();  // what this event adds is counted
          tcp_facts.on_event(e);
          net::record_tcp(registry, e, before, tcp_facts.counters(), tcp_facts.find(e.cookie));
        } else {
          tcp_facts.on_event(e);
          if (record_metrics) net::record_connect(registry, e);
        }
        ack_wait.on_event(e);
        tracker.on_event(e);
      },
      [&](uint64_t now_mono) {
        now_wall = std::max(now_wall, now_mono + wall_offset);
        tracker.expire_idle(now_mono);
        ack_wait.expire(now_mono);
        tcp_facts.expire(now_mono);
        stitcher.flush_ready(now_wall);
        if (now_mono - self_published_at >= kSelfMetricsPeriodNs) {  // weft's own counters, ~1/s
          publish_self();
          self_published_at = now_mono;
        }
        if (now_mono - exited_checked_at >= kExitedProcessesPeriodNs) {
          std::vector<uint32_t> exited = stream.source().exited_processes();
          spans.forget_processes(exited);
          stitcher.processes_exited(exited, now_wall);
          exited_checked_at = now_mono;
        }
      });
  tracker.close_all();
  ack_wait.flush_all();
  stitcher.flush_all();
  queue.shutdown(kExportDrainTime);
  publish_self();
  if (pusher) pusher->stop();  // one last push with the final counts
  metrics_server.reset();
  print_summary(stitcher.counters(), tracker, queue);
  if (hold_for_acks) print_ack_wait_summary(ack_wait.counters());
  if (pusher) print_push_summary(pusher->counters());
  print_loss_summary("run", stream.source_stats(), stream.stream_stats());
  return finish_source(opened);
}

}  // namespace weft::cli
