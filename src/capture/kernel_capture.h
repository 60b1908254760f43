// The live event source: loads the BPF programs, attaches the hook table and consumes the
// ring buffer.
#pragma once

#include <array>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "capture/event_source.h"
#include "capture/hooks.h"
#include "capture/process_info.h"
#include "proc/tls_libraries.h"

struct ring_buffer;
struct bpf_link;
struct weft_bpf;

namespace weft::capture {

struct CaptureConfig {
  uint32_t ringbuf_bytes = 8u << 20;  // power of two, at least one page
  uint32_t chunk_bytes = 4096;        // payload per data record
  uint32_t max_capture_bytes = 4096;  // payload per syscall, across its chunks
  uint32_t max_connections = 65536;   // kernel connection-state entries
  bool scan_existing = true;          // report connections open before start
  std::vector<std::string>
      disabled_hooks;  // optional hooks not to attach (by program or attach name)
  // Attach the accept() syscall tracepoints for exact accept times. Off by default: any
  // syscall tracepoint sends every syscall on the machine through the slow path.
  bool exact_accept = false;
  // Attach sk_data_ready for the receive-queue wait of server spans. Off by default: it runs
  // for every arriving segment of every socket (docs/performance.md, "Kernel TCP facts").
  bool receive_queue_wait = false;
  // Attach tcp_probe for the time from a server's response to its last byte's ACK. Off by
  // default for the same reason.
  bool ack_wait = false;
  // Uprobes on the TLS libraries processes map (OpenSSL 3 and 1.1): their plaintext replaces
  // the ciphertext of the connection.
  bool tls = true;
  // BIO_read/BIO_write uprobes in shared libcrypto, for memory-BIO users of libssl.so (node
  // linking it, Python's asyncio): off by default, as every OpenSSL user would take the traps.
  bool tls_memory_bio = false;
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
  void set_verdict(uint64_t cookie, const CaptureVerdict& verdict) override;
  std::vector<uint32_t> exited_processes() override { return processes_.forget_exited(); }
  // Consumes the ring buffer up to where it was filled when called (at most about a second).
  size_t drain(const EventSink& sink) override;

  const std::vector<HookStatus>& hooks() const { return hooks_; }
  // TLS library files found and whether they are hooked; empty with TLS off.
  std::vector<proc::TlsLibraryStatus> tls_libraries() const;
  // Go executables using crypto/tls and whether they are hooked; empty with TLS off.
  std::vector<proc::GoTlsBinaryStatus> go_tls_binaries() const;

  // Time the kernel spent in each loaded program and how often it ran (both stay 0 unless
  // kernel.bpf_stats_enabled=1): what a BPF change costs per event.
  struct ProgramStats {
    std::string name;
    uint64_t run_time_ns = 0;
    uint64_t run_cnt = 0;
  };
  std::vector<ProgramStats> program_stats() const;

 private:
  using EndpointKey = std::pair<std::array<uint8_t, 16>, uint16_t>;

  KernelCapture() = default;
  bool load(const CaptureConfig& config, std::string* error);
  bool learn_self_tgid(std::string* error);
  bool attach(std::string* error);
  void scan_existing();
  void start_tls();
  void register_self_endpoint(const EndpointKey& key, bool add);
  // Listeners on every address stand for each address of weft's network namespace: those are
  // listed again now and then, as interfaces come and go.
  void refresh_listener_addresses();
  static int on_record(void* ctx, void* data, size_t size);

  weft_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<bpf_link*> links_;
  std::unique_ptr<proc::GoTlsBinaries> go_tls_;  // driven by tls_'s thread: outlives it
  std::unique_ptr<proc::TlsLibraries> tls_;      // its uprobe links go before the programs do
  bool tls_enabled_ = true;
  bool tls_memory_bio_ = false;    // BIO uprobes in shared libcrypto too (--tls-memory-bio)
  bool tls_multi_ = false;         // the TLS programs were loaded for uprobe_multi links
  bool go_tls_supported_ = false;  // uprobe_multi (Linux 6.6+) and TLS on
  std::vector<HookStatus> hooks_;
  bool scan_existing_ = true;
  std::vector<Event> existing_;              // found at start, delivered by the first poll
  uint32_t netns_ = 0;                       // inode of weft's network namespace
  std::vector<uint16_t> any_address_ports_;  // weft's listeners on 0.0.0.0 / ::
  std::set<EndpointKey> any_address_keys_;   // what those are registered as now
  uint64_t next_address_refresh_ns_ = 0;
  int64_t wall_offset_ns_ = 0;
  ProcessResolver processes_;
  SourceStats stats_;
  const EventSink* sink_ = nullptr;  // valid only inside poll()
  Event decoded_;                    // each record is decoded here (its buffers reused)
};

}  // namespace weft::capture
