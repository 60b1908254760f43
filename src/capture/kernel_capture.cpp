#include "capture/kernel_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "capture/clock.h"
#include "capture/existing_connections.h"
#include "capture/tracefs.h"
#include "weft_events.h"
#include "weft.skel.h"

namespace weft::capture {
namespace {

bool is_power_of_two(uint32_t v) { return v && !(v & (v - 1)); }

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

}  // namespace

std::string validate(const CaptureConfig& c) {
  long page = sysconf(_SC_PAGESIZE);
  if (!is_power_of_two(c.ringbuf_bytes) || c.ringbuf_bytes < static_cast<uint32_t>(page))
    return "ring buffer size must be a power of two of at least " + std::to_string(page) + " bytes, got " +
           std::to_string(c.ringbuf_bytes);
  if (c.chunk_bytes < 1 || c.chunk_bytes > WEFT_MAX_CHUNK_BYTES)
    return "chunk size must be between 1 and " + std::to_string(WEFT_MAX_CHUNK_BYTES) + " bytes, got " +
           std::to_string(c.chunk_bytes);
  if (c.max_capture_bytes > 64u * WEFT_MAX_CHUNK_BYTES)
    return "capture limit per syscall must be at most " + std::to_string(64u * WEFT_MAX_CHUNK_BYTES) +
           " bytes, got " + std::to_string(c.max_capture_bytes);
  if (c.max_connections < 16) return "max connections must be at least 16";
  for (const std::string& name : c.disabled_hooks) {
    const HookSpec* spec = find_hook(name);
    if (!spec) return "unknown hook '" + name + "' (see `weft doctor` for the list)";
    if (spec->required) return "hook '" + name + "' is required and cannot be disabled";
  }
  return {};
}

std::unique_ptr<KernelCapture> KernelCapture::open(const CaptureConfig& config, std::string* error) {
  if (std::string bad = validate(config); !bad.empty()) {
    *error = bad;
    return nullptr;
  }
  std::unique_ptr<KernelCapture> capture(new KernelCapture());
  capture->scan_existing_ = config.scan_existing;
  if (!capture->load(config, error) || !capture->attach(error)) return nullptr;
  // Scanned once the hooks are attached, so no connection falls between the scan and the
  // probes, and before open() returns, so "capturing" means they are already known.
  capture->scan_existing();
  return capture;
}

KernelCapture::~KernelCapture() {
  if (ring_) ring_buffer__free(ring_);
  for (bpf_link* link : links_) bpf_link__destroy(link);
  if (skel_) weft_bpf__destroy(skel_);
}

bool KernelCapture::load(const CaptureConfig& config, std::string* error) {
  // Memory for BPF maps is charged to the cgroup on current kernels; libbpf's RLIMIT_MEMLOCK
  // bump is unnecessary and fails without CAP_SYS_RESOURCE.
  libbpf_set_strict_mode(LIBBPF_STRICT_AUTO_RLIMIT_MEMLOCK);
  std::string tracefs_error;
  bool have_tracefs = ensure_tracefs(&tracefs_error);

  skel_ = weft_bpf__open();
  if (!skel_) {
    *error = "cannot open the embedded BPF object: " + errno_text(errno);
    return false;
  }
  skel_->rodata->cfg_self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->cfg_chunk_bytes = config.chunk_bytes;
  skel_->rodata->cfg_max_capture_bytes = config.max_capture_bytes;
  skel_->rodata->cfg_wakeup_bytes = config.ringbuf_bytes / 8;
  bpf_map__set_max_entries(skel_->maps.weft_events, config.ringbuf_bytes);
  bpf_map__set_max_entries(skel_->maps.weft_conns, config.max_connections);

  for (const std::string& name : config.disabled_hooks) {
    const HookSpec* spec = find_hook(name);
    bpf_program__set_autoload(spec->find(skel_), false);
    hooks_.push_back({spec, HookState::Skipped, "disabled by --disable-hook"});
  }
  for (const HookSpec& spec : hook_table()) {
    bool listed = false;
    for (const auto& h : hooks_) listed |= h.spec == &spec;
    if (spec.costs_every_syscall && !config.exact_accept && !listed) {
      bpf_program__set_autoload(spec.find(skel_), false);
      hooks_.push_back({&spec, HookState::Skipped, "off by default: it slows every syscall; --exact-accept"});
    }
  }
  for (const HookSpec& spec : hook_table()) {
    bool disabled = false;
    for (const auto& h : hooks_) disabled |= h.spec == &spec;
    if (disabled) continue;
    std::string why;
    bool exists = (spec.attach.starts_with("tracepoint/") && !have_tracefs)
                      ? (why = tracefs_error, false)
                      : attach_point_exists(spec.attach, &why);
    if (!exists) {
      if (spec.required) {
        *error = "required hook " + std::string(spec.attach) + " is unavailable: " + why;
        return false;
      }
      bpf_program__set_autoload(spec.find(skel_), false);
      hooks_.push_back({&spec, HookState::Unavailable, why});
    }
  }
  if (int err = weft_bpf__load(skel_); err) {
    *error = "loading the BPF programs failed: " + errno_text(err) +
             " (run `weft doctor`; libbpf's log above names the program)";
    return false;
  }
  return true;
}

bool KernelCapture::attach(std::string* error) {
  for (const HookSpec& spec : hook_table()) {
    bool skipped = false;
    for (const auto& h : hooks_) skipped |= h.spec == &spec;
    if (skipped) continue;
    bpf_link* link = bpf_program__attach(spec.find(skel_));
    if (!link) {
      std::string why = errno_text(errno);
      if (spec.required) {
        *error = "required hook " + std::string(spec.attach) + " failed to attach: " + why;
        return false;
      }
      hooks_.push_back({&spec, HookState::Failed, why});
      continue;
    }
    links_.push_back(link);
    hooks_.push_back({&spec, HookState::Attached, ""});
  }
  // Table order, whatever order the states were found in.
  std::sort(hooks_.begin(), hooks_.end(), [](const HookStatus& a, const HookStatus& b) { return a.spec < b.spec; });
  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.weft_events), &KernelCapture::on_record, this, nullptr);
  if (!ring_) {
    *error = "cannot open the BPF ring buffer: " + errno_text(errno);
    return false;
  }
  // Measured after attaching: the offset drifts only with clock adjustments.
  wall_offset_ns_ = measure_wall_offset_ns();
  return true;
}

int KernelCapture::on_record(void* ctx, void* data, size_t size) {
  auto* self = static_cast<KernelCapture*>(ctx);
  std::string why;
  auto event = decode_event({static_cast<const uint8_t*>(data), size}, &why);
  if (!event) {
    ++self->stats_.malformed;
    return 0;
  }
  ++self->stats_.records;
  event->wall_ns = event->mono_ns + static_cast<uint64_t>(self->wall_offset_ns_);
  event->process = self->processes_.resolve(event->pid, event->comm);
  (*self->sink_)(std::move(*event));
  return 0;
}

// Connections open before weft started are reported once (delivered by the first poll), and
// their owner and role are written into the kernel's connection map so later data records
// carry the role.
void KernelCapture::scan_existing() {
  if (!scan_existing_) return;
  std::string error;
  auto events = scan_existing_connections(static_cast<uint32_t>(getpid()), monotonic_now_ns(), &error);
  int map_fd = bpf_map__fd(skel_->maps.weft_conns);
  for (Event& e : events) {
    weft_conn_state state{};
    state.pid = e.pid;
    state.tid = e.tid;
    state.fd = e.fd;
    state.role = static_cast<uint8_t>(e.role);
    std::strncpy(state.comm, e.comm.c_str(), sizeof(state.comm) - 1);
    // BPF_NOEXIST: if data already flowed, the kernel's positions are right and stay.
    if (bpf_map_update_elem(map_fd, &e.cookie, &state, BPF_NOEXIST) != 0 && errno == E2BIG)
      ++stats_.kernel[WEFT_LOSS_MAP_FULL];
    e.wall_ns = e.mono_ns + static_cast<uint64_t>(wall_offset_ns_);
    e.process = processes_.resolve(e.pid, e.comm);
    existing_.push_back(std::move(e));
  }
}

bool KernelCapture::poll(std::chrono::milliseconds timeout, const EventSink& sink) {
  for (Event& e : existing_) {
    ++stats_.records;
    sink(std::move(e));
  }
  existing_.clear();
  sink_ = &sink;
  int n = ring_buffer__poll(ring_, static_cast<int>(timeout.count()));
  if (n >= 0) ring_buffer__consume(ring_);  // records queued without a wakeup
  sink_ = nullptr;
  return true;
}

uint64_t KernelCapture::now_mono_ns() const { return monotonic_now_ns(); }

SourceStats KernelCapture::stats() const {
  SourceStats out = stats_;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return out;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(ncpu));
  int fd = bpf_map__fd(skel_->maps.weft_losses);
  for (uint32_t cause = 0; cause < WEFT_LOSS_COUNT; ++cause) {
    if (bpf_map_lookup_elem(fd, &cause, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) out.kernel[cause] += v;
  }
  return out;
}

const char* loss_name(int cause) {
  static const char* const kNames[WEFT_LOSS_COUNT] = {"ringbuf_full", "truncated", "map_full",
                                                      "read_failed", "no_cookie"};
  return cause >= 0 && cause < WEFT_LOSS_COUNT ? kNames[cause] : "unknown";
}

}  // namespace weft::capture

namespace weft::capture {

void KernelCapture::exclude_peers_of(const Endpoint& local) {
  weft_endpoint key{};
  std::memcpy(key.addr, local.addr.data(), sizeof(key.addr));
  key.port = local.port;
  uint8_t kind = WEFT_SELF_LISTENER;
  bpf_map_update_elem(bpf_map__fd(skel_->maps.weft_self_endpoints), &key, &kind, BPF_ANY);
}

}  // namespace weft::capture
