// What every streaming command shares: opening a source (kernel or recording), pumping the
// ordered event stream until it ends, a duration passes or a signal arrives, and the loss summary.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "capture/event_stream.h"
#include "capture/kernel_capture.h"
#include "capture/record_file.h"

namespace weft::cli {

struct OpenedSource {
  std::unique_ptr<capture::EventSource> source;
  capture::RecordReader* replay = nullptr;  // set when reading a recording
  int exit_code = 0;                        // when source is null
};

// A recording when replay_path is set, else the kernel. Prints one line on failure.
OpenedSource open_source(const std::string& replay_path, const capture::CaptureConfig& config,
                         const char* command);

// Runs until the source ends, `duration_s` passes (0: no limit) or SIGINT/SIGTERM. `tick` runs
// after every batch with the source's current time.
void pump(capture::EventStream& stream, double duration_s, const capture::EventSink& sink,
          const std::function<void(uint64_t now_mono_ns)>& tick = {});

// "weft <command>: kernel losses: ...; stream gaps=..." on stderr, then how many syscalls'
// payloads were cut at the capture limit (by design, so not among the losses).
void print_loss_summary(const char* command, const capture::SourceStats& source,
                        const capture::StreamStats& stream);

// Exit code for the end of a run: 1 when a recording turned out truncated or corrupt.
int finish_source(const OpenedSource& opened);

}  // namespace weft::cli
