// `weft events` and `weft record`: the capture stage's event stream, shown or saved.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "capture/event_stream.h"
#include "capture/record_file.h"
#include "cli/commands.h"
#include "cli/event_format.h"
#include "cli/pipeline.h"

namespace weft::cli {
namespace {

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
  print_loss_summary(what, source, stream);
}

}  // namespace

bool EventFilter::matches(uint32_t p, const std::string& c, const Endpoint& local, const Endpoint& remote) const {
  if (pid && p != *pid) return false;
  if (port && local.port != *port && remote.port != *port) return false;
  if (!comm.empty() && c != comm) return false;
  return true;
}

int run_events(const EventsOptions& options) {
  OpenedSource opened = open_source(options.replay_path, options.capture, "events");
  if (!opened.source) return opened.exit_code;
  capture::EventStream stream(std::move(opened.source));
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
  return finish_source(opened);
}

int run_record(const RecordOptions& options) {
  OpenedSource opened = open_source("", options.capture, "record");
  if (!opened.source) return opened.exit_code;
  std::string error;
  auto writer = capture::RecordWriter::create(options.output_path, opened.source->wall_offset_ns(), &error);
  if (!writer) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    return kExitFailure;
  }
  capture::EventStream stream(std::move(opened.source));
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
