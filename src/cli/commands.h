// weft's subcommands. Each returns the process exit code.
#pragma once

#include <optional>
#include <string>

#include "capture/kernel_capture.h"
#include "conn/connection_tracker.h"
#include "export/export_config.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "weft/event.h"

namespace weft::cli {

// Exit codes: 0 fine, 1 runtime failure, 2 bad usage or configuration.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct EventFilter {
  std::optional<uint32_t> pid;
  std::optional<uint16_t> port;  // local or remote
  std::string comm;
  bool matches(uint32_t pid, const std::string& comm, const Endpoint& local,
               const Endpoint& remote) const;
  bool matches(const Event& e) const { return matches(e.pid, e.comm, e.local, e.remote); }
  bool matches(const ConnectionInfo& c) const { return matches(c.pid, c.comm, c.local, c.remote); }
};

struct EventsOptions {
  bool json = false;
  double duration_s = 0;  // 0: until interrupted
  EventFilter filter;
  std::string replay_path;
  capture::CaptureConfig capture;
};

struct RecordOptions {
  std::string output_path;
  double duration_s = 0;
  capture::CaptureConfig capture;
};

struct ExchangesOptions {
  bool json = false;
  double duration_s = 0;
  EventFilter filter;  // applied to the exchange's process and ports
  std::string replay_path;
  capture::CaptureConfig capture;
  conn::TrackerConfig tracker;
};

struct RunOptions {
  exporter::ExportConfig output;  // resolved from the environment, --config and flags
  double duration_s = 0;
  std::string replay_path;
  capture::CaptureConfig capture;
  conn::TrackerConfig tracker;
  trace::SpanOptions spans;
  trace::StitchConfig stitch;
};
std::string validate(const RunOptions& options);

// `weft net`: per-connection TCP health (src/cli/net_command.cpp).
struct NetOptions {
  bool json = false;
  double duration_s = 0;
  double interval_s = 1;  // between rounds
  std::string sort = "retrans";
  EventFilter filter;
  std::string replay_path;
  capture::CaptureConfig capture;
};
std::string validate(const NetOptions& options);

int run_events(const EventsOptions& options);
int run_net(const NetOptions& options);
int run_traces(const RunOptions& options);
int run_exchanges(const ExchangesOptions& options);
int run_record(const RecordOptions& options);
int run_doctor(const capture::CaptureConfig& capture, const exporter::ExportConfig& output);

// SIGINT/SIGTERM ask the running command to stop; it then flushes and exits 0.
void install_stop_handlers();
bool stop_requested();

}  // namespace weft::cli
