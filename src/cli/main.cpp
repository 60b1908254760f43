// weft: zero-instrumentation distributed tracing on eBPF.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli/commands.h"
#include "net/connection_table.h"

namespace {

using weft::capture::CaptureConfig;

// CLI11's own number checks echo the whole parsed value back; these say what is wanted, in
// the unit the option takes. The unit is also what --help shows as the option's type.
CLI::Validator number_of(const char* unit, bool zero_allowed, double max) {
  std::string want = std::string("must be a number of ") + unit +
                     (zero_allowed ? ", 0 or more" : ", above 0") +
                     (max < 1e9 ? " and at most " + std::to_string(static_cast<int>(max)) : "");
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        bool ok = !text.empty() && *end == '\0' && (zero_allowed ? v >= 0 : v > 0) && v <= max;
        return ok ? std::string() : want;
      },
      "");
}
const CLI::Validator kSeconds = number_of("seconds", true, 1e9);
// Settings the config file also takes, with the file's rule (export_config.cpp).
const CLI::Validator kSettingSeconds = number_of("seconds", false, 3600);
const CLI::Validator kMilliseconds = number_of("milliseconds", true, 1e9);

void add_capture_options(CLI::App& cmd, CaptureConfig& c) {
  cmd.add_option("--ringbuf-bytes", c.ringbuf_bytes, "Ring buffer size in bytes (power of two)")
      ->capture_default_str();
  cmd.add_option("--chunk-bytes", c.chunk_bytes, "Payload bytes per data event (1-8192)")
      ->capture_default_str();
  cmd.add_option(
         "--capture-bytes", c.max_capture_bytes,
         "Payload bytes captured per syscall, split into chunks; the full count is always reported")
      ->capture_default_str();
  cmd.add_option("--max-connections", c.max_connections,
                 "Connections tracked in the kernel at once")
      ->capture_default_str();
  cmd.add_flag("!--no-existing", c.scan_existing, "Do not report connections open before start");
  cmd.add_flag("!--no-tls", c.tls,
               "Do not hook TLS libraries (OpenSSL, GnuTLS): TLS connections stay ciphertext");
  cmd.add_flag("--tls-memory-bio", c.tls_memory_bio,
               "Also hook BIO_read/BIO_write in shared libcrypto, for node linking libssl.so and "
               "Python asyncio (every OpenSSL user then pays ~10 more uprobe traps per request)");
  cmd.add_flag(
      "--exact-accept", c.exact_accept,
      "Attach the accept() syscall tracepoints for exact accept times (slows every syscall)");
  cmd.add_flag("--receive-queue-wait", c.receive_queue_wait,
               "Attach sk_data_ready: how long each request waited in the server's receive queue "
               "(runs for every arriving segment)");
  cmd.add_flag("--ack-wait", c.ack_wait,
               "Attach tcp_probe: how long each server response waited for its last byte's ACK "
               "(runs for every arriving segment; server spans wait for that ACK)");
  cmd.add_option("--disable-hook", c.disabled_hooks,
                 "Do not attach this optional hook (program or attach name; repeatable)");
}

// Bytes as a number with an optional K, M or G (powers of 1024); 0 when the text is not one.
uint64_t parse_bytes(const std::string& text) {
  char* end = nullptr;
  unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || end == text.c_str() || text[0] == '-') return 0;
  std::string unit(end);
  int shift = unit.empty()                   ? 0
              : unit == "K" || unit == "KiB" ? 10
              : unit == "M" || unit == "MiB" ? 20
              : unit == "G" || unit == "GiB" ? 30
                                             : -1;
  if (shift < 0 || n > (UINT64_MAX >> shift)) return 0;
  return static_cast<uint64_t>(n) << shift;
}

// The connection tracker's limits, the same for every command that tracks connections.
struct TrackerFlags {
  std::string memory;
  double idle_s = 0;
};
constexpr uint64_t kMinConnectionMemory = 64u << 10;  // a few connections: less only thrashes

void add_tracker_options(CLI::App& cmd, TrackerFlags& f, const weft::conn::TrackerConfig& c) {
  f.memory = std::to_string(c.memory_budget_bytes >> 20) + "M";
  f.idle_s = static_cast<double>(c.idle_timeout_ns) / 1e9;
  cmd.add_option("--max-connection-memory", f.memory,
                 "Memory for all connection state (buffers, parser state), K/M/G suffixes; over "
                 "it the connection silent longest is freed first (counted as evicted)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            return parse_bytes(text) >= kMinConnectionMemory
                       ? std::string()
                       : "must be a number of bytes, optionally with K, M or G (KiB, MiB, GiB), "
                         "at least 64K";
          },
          ""))
      ->type_name("BYTES")
      ->capture_default_str();
  cmd.add_option("--idle-timeout", f.idle_s,
                 "Free a silent connection's state after this many seconds (counted as "
                 "idle-expired)")
      ->check(number_of("seconds", false, 1e9))
      ->type_name("SECONDS")
      ->capture_default_str();
}

void apply(const TrackerFlags& f, weft::conn::TrackerConfig& c) {
  c.memory_budget_bytes = parse_bytes(f.memory);
  c.idle_timeout_ns = static_cast<uint64_t>(f.idle_s * 1e9);
}

// The export settings `weft run` takes as flags: the highest-precedence configuration layer.
struct ExportFlags {
  weft::exporter::ConfigLayer layer{.origin = "flags"};
  std::string config_path;
  std::vector<std::string> headers, resource_attributes;
  double timeout_s = 0, metrics_interval_s = 0, queue_interval_s = 0;
  size_t queue_spans = 0, queue_bytes = 0;
};

template <typename T>
void optional_option(CLI::App& cmd, const char* name, std::optional<T>& into, const char* help) {
  cmd.add_option_function<T>(
      name, [&into](const T& v) { into = v; }, help);
}

void add_export_options(CLI::App& cmd, ExportFlags& f) {
  auto& l = f.layer;
  optional_option(cmd, "--exporter", l.exporter,
                  "console (trees for people), otlp-file (OTLP/JSON lines) or otlp (to a backend); "
                  "default: otlp when an OTLP endpoint is configured, else console");
  optional_option(cmd, "-o,--output", l.output_path, "File for --exporter otlp-file (appended to)");
  cmd.add_option("--config", f.config_path,
                 "JSON config file (flags win over it, it wins over OTEL_* variables)");
  optional_option(
      cmd, "--otlp-endpoint", l.otlp.endpoint,
      "OTLP base URL (HTTP: /v1/traces and /v1/metrics are appended; gRPC: http[s]://host:port)");
  optional_option(cmd, "--otlp-traces-endpoint", l.traces.endpoint,
                  "OTLP URL for traces, used as is");
  optional_option(cmd, "--otlp-metrics-endpoint", l.metrics.endpoint,
                  "OTLP URL for metrics, used as is");
  optional_option(cmd, "--otlp-protocol", l.otlp.protocol,
                  "http/protobuf (default), http/json or grpc");
  cmd.add_option("--otlp-header", f.headers, "KEY=VALUE sent with every OTLP request (repeatable)");
  optional_option(cmd, "--otlp-compression", l.otlp.compression, "gzip or none");
  cmd.add_option("--otlp-timeout", f.timeout_s, "Seconds an OTLP request may take (default 10)")
      ->check(kSettingSeconds)
      ->type_name("SECONDS");
  optional_option(cmd, "--otlp-client-key", l.otlp.client_key,
                  "PEM private key for mTLS (with --otlp-client-certificate)");
  optional_option(cmd, "--otlp-client-certificate", l.otlp.client_certificate,
                  "PEM certificate chain for mTLS");
  optional_option(cmd, "--otlp-certificate", l.otlp.certificate,
                  "PEM file of CAs to trust for https endpoints");
  optional_option(cmd, "--service-name", l.service_name,
                  "service.name on every exported resource (overrides each process's)");
  cmd.add_option("--resource-attribute", f.resource_attributes,
                 "KEY=VALUE added to every exported resource (repeatable)");
  optional_option(cmd, "--metrics-address", l.metrics_address,
                  "HOST:PORT of the Prometheus endpoint (default 127.0.0.1:9464), or off");
  cmd.add_option("--metrics-interval", f.metrics_interval_s,
                 "Seconds between OTLP metrics exports (default 60)")
      ->check(kSettingSeconds)
      ->type_name("SECONDS");
  cmd.add_option("--export-queue-spans", f.queue_spans,
                 "Spans waiting for export at most, oldest traces dropped beyond (default 100000)")
      ->check(number_of("spans", false, 1e18))
      ->type_name("SPANS");
  cmd.add_option("--export-queue-bytes", f.queue_bytes,
                 "Bytes of spans waiting for export at most (default 67108864)")
      ->check(number_of("bytes", false, 1e18))
      ->type_name("BYTES");
  cmd.add_option("--export-interval", f.queue_interval_s,
                 "Seconds a finished trace waits to join a batch (default 0.5)")
      ->check(kSettingSeconds)
      ->type_name("SECONDS");
}

// Environment, then the config file, then flags: the later wins.
std::string resolve_export(ExportFlags& f, weft::exporter::ExportConfig& out) {
  using namespace weft::exporter;
  using std::chrono::milliseconds;
  auto& l = f.layer;
  std::string error;
  for (const auto& h : f.headers)
    if (!parse_key_values(h, l.otlp.headers, &error)) return "--otlp-header: " + error;
  for (const auto& a : f.resource_attributes)
    if (!parse_key_values(a, l.resource_attributes, &error))
      return "--resource-attribute: " + error;
  // Rounded as the config file rounds, and never to 0 ms: that would mean "not set".
  auto seconds = [](double s) {
    return std::optional<milliseconds>(milliseconds(std::max<int64_t>(1, std::llround(s * 1000))));
  };
  if (f.timeout_s > 0) l.otlp.timeout = seconds(f.timeout_s);
  if (f.metrics_interval_s > 0) l.metrics_interval = seconds(f.metrics_interval_s);
  if (f.queue_interval_s > 0) l.queue_interval = seconds(f.queue_interval_s);
  if (f.queue_spans > 0) l.queue_max_spans = f.queue_spans;
  if (f.queue_bytes > 0) l.queue_max_bytes = f.queue_bytes;

  std::vector<ConfigLayer> layers;
  layers.push_back(
      layer_from_environment([](const char* name) { return std::getenv(name); }, &error));
  if (!error.empty()) return error;
  if (!f.config_path.empty()) {
    layers.push_back(layer_from_file(f.config_path, &error));
    if (!error.empty()) return error;
  }
  layers.push_back(l);
  out = resolve(layers, &error);
  return error;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weft: zero-instrumentation distributed tracing for Linux, on eBPF"};
  app.set_version_flag("--version", std::string("weft ") + WEFT_VERSION);
  app.require_subcommand(1);

  CaptureConfig doctor_capture;
  ExportFlags doctor_export;
  auto* doctor = app.add_subcommand(
      "doctor", "Check the kernel, privileges, every hook and where telemetry goes");
  add_capture_options(*doctor, doctor_capture);
  add_export_options(*doctor, doctor_export);

  weft::cli::EventsOptions events;
  uint32_t pid = 0;
  uint16_t port = 0;
  auto* events_cmd = app.add_subcommand("events", "Show live (or recorded) TCP events");
  events_cmd->add_flag("--json", events.json,
                       "One JSON object per line (payload base64 in `data`)");
  events_cmd->add_option("--duration", events.duration_s, "Stop after this many seconds (0: never)")
      ->check(kSeconds)
      ->type_name("SECONDS");
  auto* pid_opt = events_cmd->add_option("--pid", pid, "Only this process");
  auto* port_opt =
      events_cmd->add_option("--port", port, "Only connections with this local or remote port");
  events_cmd->add_option("--comm", events.filter.comm, "Only processes with this command name");
  events_cmd->add_option("--replay", events.replay_path, "Read events from a `weft record` file");
  add_capture_options(*events_cmd, events.capture);

  weft::cli::RunOptions run;
  double wait_s = static_cast<double>(run.stitch.wait_ns) / 1e9;
  double slow_ms = 0;
  bool no_keep_errors = false;
  double max_traces_per_second = 0;
  ExportFlags export_flags;
  auto* run_cmd = app.add_subcommand(
      "run", "Trace: spans and traces from every TCP conversation (weft's main job)");
  add_export_options(*run_cmd, export_flags);
  run_cmd
      ->add_option("--duration", run.duration_s,
                   "Stop after this many seconds, flushing everything (0: never)")
      ->check(kSeconds)
      ->type_name("SECONDS");
  run_cmd->add_option("--replay", run.replay_path, "Read events from a `weft record` file");
  TrackerFlags run_tracker;
  add_tracker_options(*run_cmd, run_tracker, run.tracker);
  run_cmd
      ->add_option("--trace-wait", wait_s,
                   "Seconds a span waits for late evidence before its trace leaves")
      ->check(number_of("seconds", true, 3600))
      ->type_name("SECONDS")
      ->capture_default_str();
  run_cmd
      ->add_option("--keep-slower-than", slow_ms,
                   "Always keep traces with a span at least this many milliseconds long "
                   "(0: off)")
      ->check(kMilliseconds)
      ->type_name("MS");
  run_cmd->add_flag("--no-keep-errors", no_keep_errors,
                    "Let the sampler drop traces with errors too");
  auto* max_traces_opt =
      run_cmd
          ->add_option("--max-traces-per-second", max_traces_per_second,
                       "Lower the root sampling ratio while more traces than this start per "
                       "second; errors, slow traces and sampled parents are still kept "
                       "(0: no limit; env WEFT_MAX_TRACES_PER_SECOND)")
          ->check(number_of("traces per second", true, 1e9))
          ->type_name("N");
  run_cmd->add_flag("--query-values", run.spans.query_values,
                    "Export url.query values (redacted by default)");
  run_cmd->add_flag("--statement-values", run.spans.statement_values,
                    "Export the literal arguments of database statements in db.query.text (each "
                    "is \"?\" by default; credentials are never exported)");
  run_cmd->add_flag("--command-line", run.spans.command_line,
                    "Export process.command_line in resources");
  add_capture_options(*run_cmd, run.capture);

  weft::cli::ExchangesOptions exchanges;
  uint32_t ex_pid = 0;
  uint16_t ex_port = 0;
  TrackerFlags exchanges_tracker;
  auto* exchanges_cmd = app.add_subcommand("exchanges",
                                           "Show protocol exchanges: requests and their responses, "
                                           "in every protocol weft parses (docs/protocols.md)");
  exchanges_cmd->add_flag("--json", exchanges.json, "One JSON object per line");
  exchanges_cmd
      ->add_option("--duration", exchanges.duration_s, "Stop after this many seconds (0: never)")
      ->check(kSeconds)
      ->type_name("SECONDS");
  auto* ex_pid_opt = exchanges_cmd->add_option("--pid", ex_pid, "Only this process");
  auto* ex_port_opt = exchanges_cmd->add_option("--port", ex_port,
                                                "Only connections with this local or remote port");
  exchanges_cmd->add_option("--comm", exchanges.filter.comm,
                            "Only processes with this command name");
  exchanges_cmd->add_option("--replay", exchanges.replay_path,
                            "Read events from a `weft record` file");
  add_tracker_options(*exchanges_cmd, exchanges_tracker, exchanges.tracker);
  add_capture_options(*exchanges_cmd, exchanges.capture);

  weft::cli::NetOptions net;
  uint32_t net_pid = 0;
  uint16_t net_port = 0;
  auto* net_cmd = app.add_subcommand(
      "net",
      "Show TCP health per connection, live: RTT, retransmissions, resets, queue waits, "
      "connect time, bytes (docs/network.md)");
  net_cmd->add_flag("--json", net.json, "One JSON object per connection per round");
  net_cmd->add_option("--duration", net.duration_s, "Stop after this many seconds (0: never)")
      ->check(kSeconds)
      ->type_name("SECONDS");
  net_cmd->add_option("--interval", net.interval_s, "Seconds between rounds")
      ->check(number_of("seconds", false, 3600))
      ->type_name("SECONDS")
      ->capture_default_str();
  std::string sort_help = "Order rows by this field, largest first (names: alphabetical): ";
  for (std::string_view f : weft::net::sort_fields())
    sort_help += std::string(f) + (f == weft::net::sort_fields().back() ? "" : ", ");
  net_cmd->add_option("--sort", net.sort, sort_help)->type_name("FIELD")->capture_default_str();
  auto* net_pid_opt = net_cmd->add_option("--pid", net_pid, "Only this process");
  auto* net_port_opt =
      net_cmd->add_option("--port", net_port, "Only connections with this local or remote port");
  net_cmd->add_option("--comm", net.filter.comm, "Only processes with this command name");
  net_cmd->add_option("--replay", net.replay_path, "Read events from a `weft record` file");
  add_capture_options(*net_cmd, net.capture);

  weft::cli::RecordOptions record;
  auto* record_cmd = app.add_subcommand("record", "Record live events to a file for replay");
  record_cmd->add_option("-o,--output", record.output_path, "File to write")->required();
  record_cmd->add_option("--duration", record.duration_s, "Stop after this many seconds (0: never)")
      ->check(kSeconds)
      ->type_name("SECONDS");
  add_capture_options(*record_cmd, record.capture);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "weft: %s (see --help)\n", e.what());
    return weft::cli::kExitUsage;
  }

  if (*doctor) {
    if (std::string bad = weft::capture::validate(doctor_capture); !bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    weft::exporter::ExportConfig output;
    if (std::string bad = resolve_export(doctor_export, output); !bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    return weft::cli::run_doctor(doctor_capture, output);
  }
  if (*events_cmd) {
    if (*pid_opt) events.filter.pid = pid;
    if (*port_opt) events.filter.port = port;
    if (std::string bad = weft::capture::validate(events.capture); !bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    return weft::cli::run_events(events);
  }
  if (*net_cmd) {
    if (*net_pid_opt) net.filter.pid = net_pid;
    if (*net_port_opt) net.filter.port = net_port;
    std::string bad = weft::cli::validate(net);
    if (bad.empty()) bad = weft::capture::validate(net.capture);
    if (!bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    return weft::cli::run_net(net);
  }
  if (*run_cmd) {
    run.stitch.wait_ns = static_cast<uint64_t>(wait_s * 1e9);
    apply(run_tracker, run.tracker);
    run.stitch.sampler.keep_slower_than_ns = static_cast<uint64_t>(slow_ms * 1e6);
    run.stitch.sampler.keep_errors = !no_keep_errors;
    std::string bad = weft::trace::sampler_from_environment(run.stitch.sampler);
    if (*max_traces_opt) run.stitch.sampler.max_traces_per_second = max_traces_per_second;
    if (bad.empty()) bad = resolve_export(export_flags, run.output);
    run.spans.service_name = run.output.service_name;
    if (bad.empty()) bad = weft::cli::validate(run);
    if (!bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    return weft::cli::run_traces(run);
  }
  if (*exchanges_cmd) {
    if (*ex_pid_opt) exchanges.filter.pid = ex_pid;
    if (*ex_port_opt) exchanges.filter.port = ex_port;
    apply(exchanges_tracker, exchanges.tracker);
    if (std::string bad = weft::capture::validate(exchanges.capture); !bad.empty()) {
      std::fprintf(stderr, "weft: %s\n", bad.c_str());
      return weft::cli::kExitUsage;
    }
    return weft::cli::run_exchanges(exchanges);
  }
  if (std::string bad = weft::capture::validate(record.capture); !bad.empty()) {
    std::fprintf(stderr, "weft: %s\n", bad.c_str());
    return weft::cli::kExitUsage;
  }
  return weft::cli::run_record(record);
}
