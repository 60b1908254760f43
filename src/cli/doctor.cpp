// `weft doctor`: what this machine gives weft, hook by hook, and what is lost without each.
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "capture/tracefs.h"
#include "cli/commands.h"
#include "export/delivery_report.h"
#include "export/otlp_transport.h"
#include "metrics/metrics_server.h"
// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

namespace weft::cli {
namespace {

bool has_capability(int cap) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  return data[cap / 32].effective & (1u << (cap % 32));
}

std::string read_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

void row(const char* name, const std::string& value) {
  std::printf("%-12s %s\n", name, value.c_str());
}

// Sends the backend an empty ExportTraceServiceRequest (valid OTLP, no data): whether it is
// reachable and accepts weft's requests (path, headers, certificate) before any span exists.
std::string probe_traces_endpoint(const exporter::ExportConfig& o) {
  exporter::OtlpSignal settings = o.traces;
  settings.timeout = std::min(settings.timeout, std::chrono::milliseconds(3000));
  std::string where = std::string(exporter::protocol_name(settings.protocol)) + " " +
                      exporter::redact_url(settings.endpoint);
  std::string error;
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Traces, settings, &error);
  if (!transport) return where + ": " + error;
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest empty;
  exporter::ExportResult r = transport->send(empty);
  switch (r.kind) {
    case exporter::ExportResult::Kind::Ok:
      return where + ": reachable (an empty request was accepted)";
    case exporter::ExportResult::Kind::Retryable:
      return where + ": UNREACHABLE: " + r.error;
    case exporter::ExportResult::Kind::Failed:
      return where + ": REFUSED: " + r.error + " (path, headers, API key?)";
  }
  return where;
}

// Binds the metrics address for a moment: whether `weft run` will get it.
std::string probe_metrics_address(const exporter::ExportConfig& o) {
  if (o.metrics_address == "off") return "off";
  metrics::MetricsRegistry registry;
  std::string error;
  auto server = metrics::MetricsServer::start(o.metrics_address, registry, &error);
  return server ? "Prometheus endpoint on " + o.metrics_address + " can be served"
                : "UNAVAILABLE: " + error;
}

void report_export(const exporter::ExportConfig& o) {
  std::printf("export:\n");
  if (o.exporter == "otlp")
    std::printf("  %-10s %s\n", "traces", probe_traces_endpoint(o).c_str());
  else if (o.exporter == "otlp-file")
    std::printf("  %-10s OTLP/JSON lines to %s\n", "traces", o.output_path.c_str());
  else
    std::printf("  %-10s console trees (no OTLP endpoint configured)\n", "traces");
  std::printf("  %-10s %s\n", "metrics", probe_metrics_address(o).c_str());
  if (o.otlp_metrics)
    std::printf(
        "  %-10s OTLP %s %s every %.0f s\n", "", exporter::protocol_name(o.metrics.protocol),
        exporter::redact_url(o.metrics.endpoint).c_str(), o.metrics_interval.count() / 1000.0);
}

// Per Go executable that links crypto/tls: hooked, or why its plaintext cannot be read.
void report_go_tls(const capture::KernelCapture& capture) {
  std::printf("go crypto/tls:\n");
  auto binaries = capture.go_tls_binaries();
  if (binaries.empty())
    std::printf(
        "  no running Go program uses crypto/tls (or the kernel lacks uprobe_multi, "
        "Linux 6.6)\n");
  for (const auto& b : binaries)
    std::printf("  %-11s %-11s %-60s %zu process(es)%s%s\n", b.hooked ? "hooked" : "NOT HOOKED",
                b.version.c_str(), b.path.c_str(), b.processes, b.detail.empty() ? "" : "; ",
                b.detail.c_str());
}

// Per library file: hooked or why not, and how many processes map it now. What is not
// supported at all is named, not left out.
void report_tls(const capture::KernelCapture& capture, bool enabled) {
  std::printf("tls libraries:\n");
  if (!enabled) {
    std::printf("  off (--no-tls): TLS connections are seen as ciphertext\n");
    return;
  }
  auto libraries = capture.tls_libraries();
  if (libraries.empty())
    std::printf(
        "  none found (no libssl.so.3, libssl.so.1.1 or libgnutls.so.30 on this host or in "
        "any process)\n");
  for (const auto& lib : libraries)
    std::printf("  %-11s %-19s %-60s %zu process(es)%s%s\n", lib.hooked ? "hooked" : "NOT HOOKED",
                proc::to_string(lib.kind), lib.path.c_str(), lib.processes,
                lib.detail.empty() ? "" : "; ", lib.detail.c_str());
  std::printf(
      "  not supported yet: memory-BIO users of other libraries than OpenSSL (Netty, Envoy's "
      "BoringSSL, .NET), OpenSSL linked into a stripped executable that does not export it, "
      "BoringSSL with prefixed symbols, GnuTLS's gnutls_record_recv_packet: their connections "
      "stay ciphertext\n");
  report_go_tls(capture);
}

}  // namespace

int run_doctor(const capture::CaptureConfig& config, const exporter::ExportConfig& output) {
  utsname uts{};
  uname(&uts);
  std::printf("weft %s doctor\n", WEFT_VERSION);
  row("kernel", std::string(uts.release) + " (" + uts.machine + ")");
  bool btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
  row("BTF", btf ? "/sys/kernel/btf/vmlinux present"
                 : "MISSING: /sys/kernel/btf/vmlinux (CO-RE cannot relocate)");
  std::string caps;
  for (auto [cap, name] : {std::pair{CAP_BPF, "CAP_BPF"},
                           {CAP_PERFMON, "CAP_PERFMON"},
                           {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"},
                           {CAP_NET_ADMIN, "CAP_NET_ADMIN"}})
    caps += std::string(" ") + name + (has_capability(cap) ? "=yes" : "=no");
  row("privileges", (geteuid() == 0 ? "root;" : "not root;") + caps);
  std::string tracefs_error;
  bool tracefs = capture::ensure_tracefs(&tracefs_error);
  row("tracefs", tracefs ? capture::tracefs_root() + " mounted" : tracefs_error);
  std::string lockdown = read_line("/sys/kernel/security/lockdown");
  if (!lockdown.empty()) row("lockdown", lockdown);
  std::string stats = read_line("/proc/sys/kernel/bpf_stats_enabled");
  row("bpf_stats", stats == "1"
                       ? "enabled (bpftool prog show reports run time)"
                       : "disabled (sysctl kernel.bpf_stats_enabled=1 to measure program cost)");

  std::string error;
  auto capture = capture::KernelCapture::open(config, &error);
  std::printf("hooks:\n");
  if (!capture) {
    for (const auto& spec : capture::hook_table())
      std::printf("  %-11s %-8s %-40s %s\n", "not loaded", spec.required ? "required" : "optional",
                  std::string(spec.attach).c_str(), std::string(spec.provides).c_str());
    std::printf("weft doctor: %s\n", error.c_str());
    return kExitFailure;
  }
  int degraded = 0;
  for (const auto& status : capture->hooks()) {
    const auto& spec = *status.spec;
    bool attached = status.state == capture::HookState::Attached;
    degraded += !attached;
    std::printf(
        "  %-11s %-8s %-40s %s\n", capture::to_string(status.state),
        spec.required ? "required" : "optional", std::string(spec.attach).c_str(),
        attached
            ? std::string(spec.provides).c_str()
            : ("LOST: " + std::string(spec.lost_without) + " (" + status.detail + ")").c_str());
  }
  report_tls(*capture, config.tls);
  report_export(output);
  if (degraded)
    std::printf("weft doctor: required hooks attached; %d optional hook(s) degraded\n", degraded);
  else
    std::printf("weft doctor: all hooks attached\n");
  return 0;
}

}  // namespace weft::cli
