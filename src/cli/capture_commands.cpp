// `weft events` and `weft record`: the capture stage's event stream, shown or saved.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "capture/event_stream.h"
#include "capture/record_file.h"
#include "cli/commands.h"
#include "cli/event_format.h"

namespace weft::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollInterval{50};  // bounds the reaction time to signals

struct Tally {
  uint64_t by_kind[6] = {};
  uint64_t bytes = 0;
  uint64_t captured = 0;
  void add(const Event& e) {
    ++by_kind[static_cast<int>(e.kind) % 6];
    if (e.kind == EventKind::Data && e.chunk_offset == 0) bytes += e.syscall_len;
    captured += e.data.size();
  }
};

void print_summary(const char* what, const Tally& t, const capture::SourceStats& source,
                   const capture::StreamStats& stream) {
  std::fprintf(stderr,
               "weft %s: %llu data, %llu connect, %llu accept, %llu close, %llu existing events; "
               "%llu bytes moved, %llu captured\n",
               what, (unsigned long long)t.by_kind[1], (unsigned long long)t.by_kind[2],
               (unsigned long long)t.by_kind[3], (unsigned long long)t.by_kind[4],
               (unsigned long long)t.by_kind[5], (unsigned long long)t.bytes,
               (unsigned long long)t.captured);
  std::string losses;
  for (int cause = 0; cause < WEFT_LOSS_COUNT; ++cause)
    losses += std::string(losses.empty() ? "" : " ") + capture::loss_name(cause) + "=" +
              std::to_string(source.kernel[cause]);
  std::fprintf(stderr,
               "weft %s: kernel losses: %s; stream gaps=%llu (%llu bytes) overlaps=%llu "
               "late=%llu malformed=%llu\n",
               what, losses.c_str(), (unsigned long long)stream.gaps, (unsigned long long)stream.gap_bytes,
               (unsigned long long)stream.overlaps, (unsigned long long)stream.late_events,
               (unsigned long long)source.malformed);
}

std::unique_ptr<capture::EventSource> open_live(const capture::CaptureConfig& config, int* exit_code) {
  std::string error;
  auto source = capture::KernelCapture::open(config, &error);
  if (!source) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    *exit_code = capture::validate(config).empty() ? kExitFailure : kExitUsage;
  }
  return source;
}

// Tells people (and scripts waiting for it) that the hooks are attached.
void announce_capturing(const char* what) {
  std::fprintf(stderr, "weft %s: capturing (Ctrl-C to stop)\n", what);
}

// Runs the stream until it ends, the duration passes or a signal arrives.
void pump(capture::EventStream& stream, double duration_s, const capture::EventSink& sink) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
  while (!stop_requested()) {
    if (duration_s > 0 && Clock::now() >= deadline) break;
    if (std::ferror(stdout)) break;  // the reader went away (e.g. `| head`): nothing to do
    if (!stream.next(kPollInterval, sink)) return;
    std::fflush(stdout);  // lines reach a pipe within one poll interval, not a buffer-full later
  }
  stream.drain(sink);
}

}  // namespace

bool EventFilter::matches(const Event& e) const {
  if (pid && e.pid != *pid) return false;
  if (port && e.local.port != *port && e.remote.port != *port) return false;
  if (!comm.empty() && e.comm != comm) return false;
  return true;
}

int run_events(const EventsOptions& options) {
  std::unique_ptr<capture::EventSource> source;
  capture::RecordReader* replay = nullptr;
  int exit_code = 0;
  if (!options.replay_path.empty()) {
    std::string error;
    auto reader = capture::RecordReader::open(options.replay_path, &error);
    if (!reader) {
      std::fprintf(stderr, "weft: %s\n", error.c_str());
      return kExitFailure;
    }
    replay = reader.get();
    source = std::move(reader);
  } else {
    source = open_live(options.capture, &exit_code);
    if (!source) return exit_code;
    announce_capturing("events");
  }
  install_stop_handlers();
  capture::EventStream stream(std::move(source));
  Tally tally;
  pump(stream, options.duration_s, [&](Event&& e) {
    if (!options.filter.matches(e)) return;
    tally.add(e);
    std::string line = options.json ? format_event_json(e) : format_event_text(e);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  });
  std::fflush(stdout);
  print_summary("events", tally, stream.source_stats(), stream.stream_stats());
  if (replay && !replay->error().empty()) {
    std::fprintf(stderr, "weft: %s\n", replay->error().c_str());
    return kExitFailure;
  }
  return 0;
}

int run_record(const RecordOptions& options) {
  int exit_code = 0;
  auto source = open_live(options.capture, &exit_code);
  if (!source) return exit_code;
  announce_capturing("record");
  std::string error;
  auto writer = capture::RecordWriter::create(options.output_path, source->wall_offset_ns(), &error);
  if (!writer) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    return kExitFailure;
  }
  install_stop_handlers();
  capture::EventStream stream(std::move(source));
  Tally tally;
  pump(stream, options.duration_s, [&](Event&& e) {
    tally.add(e);
    writer->write(e);
  });
  writer->write_losses(stream.source_stats());
  print_summary("record", tally, stream.source_stats(), stream.stream_stats());
  if (!writer->finish(&error)) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    return kExitFailure;
  }
  return 0;
}

}  // namespace weft::cli
