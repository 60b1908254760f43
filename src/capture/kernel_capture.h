// The live event source: loads the BPF programs, attaches the hook table and consumes the
// ring buffer.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "capture/event_source.h"
#include "capture/hooks.h"
#include "capture/process_info.h"

struct ring_buffer;
struct bpf_link;
struct weft_bpf;

namespace weft::capture {

struct CaptureConfig {
  uint32_t ringbuf_bytes = 8u << 20;       // power of two, at least one page
  uint32_t chunk_bytes = 4096;             // payload per data record
  uint32_t max_capture_bytes = 4096;       // payload per syscall, across its chunks
  uint32_t max_connections = 65536;        // kernel connection-state entries
  bool scan_existing = true;               // report connections open before start
  std::vector<std::string> disabled_hooks; // optional hooks not to attach (by program or attach name)
  // Attach the accept() syscall tracepoints for exact accept times. Off by default: any
  // syscall tracepoint sends every syscall on the machine through the slow path.
  bool exact_accept = false;
};

// One line describing what is wrong with a config, or empty when it is fine.
std::string validate(const CaptureConfig& config);

class KernelCapture : public EventSource {
 public:
  // Loads and attaches. Returns null with a one-line error when a required hook cannot be
  // attached or the programs do not load; optional hooks that fail are reported in hooks().
  static std::unique_ptr<KernelCapture> open(const CaptureConfig& config, std::string* error);
  ~KernelCapture() override;

  bool poll(std::chrono::milliseconds timeout, const EventSink& sink) override;
  uint64_t now_mono_ns() const override;
  SourceStats stats() const override;
  int64_t wall_offset_ns() const override { return wall_offset_ns_; }
  void exclude_peers_of(const Endpoint& local) override;

  const std::vector<HookStatus>& hooks() const { return hooks_; }

 private:
  KernelCapture() = default;
  bool load(const CaptureConfig& config, std::string* error);
  bool attach(std::string* error);
  void scan_existing();
  static int on_record(void* ctx, void* data, size_t size);

  weft_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<bpf_link*> links_;
  std::vector<HookStatus> hooks_;
  bool scan_existing_ = true;
  std::vector<Event> existing_;  // found at start, delivered by the first poll
  int64_t wall_offset_ns_ = 0;
  ProcessResolver processes_;
  SourceStats stats_;
  const EventSink* sink_ = nullptr;  // valid only inside poll()
};

}  // namespace weft::capture
