#include "cli/pipeline.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>

#include "cli/commands.h"

namespace weft::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPollInterval{50};  // bounds the reaction time to signals
constexpr std::chrono::seconds kHeapCheckPeriod{1};
constexpr size_t kReturnFreeHeapBytes = 16u << 20;

// glibc keeps freed memory for reuse, and a burst (10 000 connections opening at once: their
// events, exchanges and spans in flight) leaves the heap at its high-water mark: 27 MB of it
// stayed resident after the connections had closed. Once the heap holds at least 16 MiB free
// and more free than in use, the free pages go back to the system. Whoever freed them (the
// tracker, the stitcher, the export queue): the allocator's own count decides, once a second
// (mallinfo2 walks the free lists). Under steady load the free part stays small and nothing
// is trimmed: freed memory is reused at once.
void return_free_heap() {
  struct mallinfo2 heap = mallinfo2();
  if (heap.fordblks >= kReturnFreeHeapBytes && heap.fordblks > heap.uordblks) malloc_trim(0);
}

}  // namespace

OpenedSource open_source(const std::string& replay_path, const capture::CaptureConfig& config,
                         const char* command) {
  // Before anything can announce itself: a signal right after "capturing" must stop cleanly.
  install_stop_handlers();
  OpenedSource opened;
  std::string error;
  if (!replay_path.empty()) {
    auto reader = capture::RecordReader::open(replay_path, &error);
    if (!reader) {
      std::fprintf(stderr, "weft: %s\n", error.c_str());
      opened.exit_code = kExitFailure;
      return opened;
    }
    opened.replay = reader.get();
    opened.source = std::move(reader);
    return opened;
  }
  auto live = capture::KernelCapture::open(config, &error);
  if (!live) {
    std::fprintf(stderr, "weft: %s\n", error.c_str());
    opened.exit_code = capture::validate(config).empty() ? kExitFailure : kExitUsage;
    return opened;
  }
  // Tells people (and scripts waiting for it) that the hooks are attached.
  std::fprintf(stderr, "weft %s: capturing (Ctrl-C to stop)\n", command);
  opened.source = std::move(live);
  return opened;
}

void pump(capture::EventStream& stream, double duration_s, const capture::EventSink& sink,
          const std::function<void(uint64_t)>& tick) {
  auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(duration_s));
  auto heap_checked = Clock::now();
  while (!stop_requested()) {
    auto now = Clock::now();
    if (duration_s > 0 && now >= deadline) break;
    if (now - heap_checked >= kHeapCheckPeriod) {
      return_free_heap();
      heap_checked = now;
    }
    if (std::ferror(stdout)) break;  // the reader went away (e.g. `| head`): nothing to do
    bool more = stream.next(kPollInterval, sink);
    if (tick) tick(stream.source().now_mono_ns());
    std::fflush(stdout);  // lines reach a pipe within one poll interval, not a buffer-full later
    if (!more) return;
  }
  stream.drain(sink);
}

void print_loss_summary(const char* command, const capture::SourceStats& source,
                        const capture::StreamStats& stream) {
  std::string losses;
  for (int cause = 0; cause < WEFT_LOSS_COUNT; ++cause) {
    if (cause == WEFT_LOSS_TRUNCATED) continue;  // not a loss: its own line below
    losses += std::string(losses.empty() ? "" : " ") + capture::loss_name(cause) + "=" +
              std::to_string(source.kernel[cause]);
  }
  std::fprintf(stderr,
               "weft %s: kernel losses: %s; stream gaps=%llu (%llu bytes) overlaps=%llu "
               "late=%llu malformed=%llu; order window %.0f ms\n",
               command, losses.c_str(), (unsigned long long)stream.gaps,
               (unsigned long long)stream.gap_bytes, (unsigned long long)stream.overlaps,
               (unsigned long long)stream.late_events, (unsigned long long)source.malformed,
               static_cast<double>(stream.window_ns) / 1e6);
  // Payload beyond --capture-bytes is left out on purpose; the byte counts and stream
  // positions still cover it, so nothing is missing from what weft reports.
  std::fprintf(stderr,
               "weft %s: capture limit: %llu syscalls' payloads cut at --capture-bytes (by design, "
               "not a loss: byte counts and stream positions stay exact)\n",
               command, (unsigned long long)source.kernel[WEFT_LOSS_TRUNCATED]);
  std::string tls;
  for (int what = 0; what < WEFT_TLS_COUNT_MAX; ++what)
    tls += std::string(tls.empty() ? "" : " ") + capture::tls_count_name(what) + "=" +
           std::to_string(source.tls[what]);
  std::fprintf(stderr, "weft %s: tls library calls: %s\n", command, tls.c_str());
}

int finish_source(const OpenedSource& opened) {
  if (opened.replay && !opened.replay->error().empty()) {
    std::fprintf(stderr, "weft: %s\n", opened.replay->error().c_str());
    return kExitFailure;
  }
  return 0;
}

}  // namespace weft::cli
