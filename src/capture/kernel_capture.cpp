#include "capture/kernel_capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "capture/clock.h"
#include "capture/event_codec.h"
#include "capture/existing_connections.h"
#include "capture/tracefs.h"
#include "weft.skel.h"
#include "weft_events.h"

namespace weft::capture {
namespace {

bool segment_hook_wanted(SegmentHook hook, const CaptureConfig& config) {
  switch (hook) {
    case SegmentHook::No:
      return true;
    case SegmentHook::ReceiveQueueWait:
      return config.receive_queue_wait;
    case SegmentHook::AckWait:
      return config.ack_wait;
  }
  return false;
}

bool is_power_of_two(uint32_t v) {
  return v && !(v & (v - 1));
}

std::string errno_text(int err) {
  return std::strerror(err < 0 ? -err : err);
}

static_assert(static_cast<int>(CaptureMode::Payload) == WEFT_CAPTURE_PAYLOAD);
static_assert(static_cast<int>(CaptureMode::CountsOnly) == WEFT_CAPTURE_COUNTS);
static_assert(static_cast<int>(CaptureMode::Ignore) == WEFT_CAPTURE_IGNORE);
static_assert(static_cast<int>(Direction::Send) == WEFT_DIR_SEND);
static_assert(static_cast<int>(Direction::Recv) == WEFT_DIR_RECV);

constexpr uint64_t kAddressRefreshNs = 5'000'000'000;  // listener addresses re-listed this often
constexpr uint64_t kDrainBudgetNs = 1'000'000'000;     // shutdown reads the ring at most this long

uint32_t own_netns_inode() {
  struct stat st {};
  return stat("/proc/self/ns/net", &st) == 0 ? static_cast<uint32_t>(st.st_ino) : 0;
}

// Every IPv4 and IPv6 address of this network namespace, IPv4 as v4-mapped IPv6.
std::vector<std::array<uint8_t, 16>> local_addresses() {
  std::vector<std::array<uint8_t, 16>> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    std::array<uint8_t, 16> a{};
    if (i->ifa_addr->sa_family == AF_INET) {
      a[10] = a[11] = 0xff;
      std::memcpy(a.data() + 12, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      std::memcpy(a.data(), &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, 16);
    } else {
      continue;
    }
    out.push_back(a);
  }
  freeifaddrs(list);
  return out;
}

}  // namespace

std::string validate(const CaptureConfig& c) {
  long page = sysconf(_SC_PAGESIZE);
  if (!is_power_of_two(c.ringbuf_bytes) || c.ringbuf_bytes < static_cast<uint32_t>(page))
    return "ring buffer size must be a power of two of at least " + std::to_string(page) +
           " bytes, got " + std::to_string(c.ringbuf_bytes);
  if (c.chunk_bytes < 1 || c.chunk_bytes > WEFT_MAX_CHUNK_BYTES)
    return "chunk size must be between 1 and " + std::to_string(WEFT_MAX_CHUNK_BYTES) +
           " bytes, got " + std::to_string(c.chunk_bytes);
  if (c.max_capture_bytes > 64u * WEFT_MAX_CHUNK_BYTES)
    return "capture limit per syscall must be at most " +
           std::to_string(64u * WEFT_MAX_CHUNK_BYTES) + " bytes, got " +
           std::to_string(c.max_capture_bytes);
  if (c.max_connections < 16) return "max connections must be at least 16";
  for (const std::string& name : c.disabled_hooks) {
    const HookSpec* spec = find_hook(name);
    if (!spec) return "unknown hook '" + name + "' (see `weft doctor` for the list)";
    if (spec->required) return "hook '" + name + "' is required and cannot be disabled";
  }
  return {};
}

std::unique_ptr<KernelCapture> KernelCapture::open(const CaptureConfig& config,
                                                   std::string* error) {
  if (std::string bad = validate(config); !bad.empty()) {
    *error = bad;
    return nullptr;
  }
  std::unique_ptr<KernelCapture> capture(new KernelCapture());
  capture->scan_existing_ = config.scan_existing;
  capture->tls_enabled_ = config.tls;
  capture->tls_memory_bio_ = config.tls_memory_bio;
  if (!capture->load(config, error) || !capture->attach(error)) return nullptr;
  // After the socket hooks: a TLS call made from now on finds them ready to name its socket.
  capture->start_tls();
  // Scanned once the hooks are attached, so no connection falls between the scan and the
  // probes, and before open() returns, so "capturing" means they are already known.
  capture->scan_existing();
  return capture;
}

KernelCapture::~KernelCapture() {
  tls_.reset();
  go_tls_.reset();
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
  netns_ = own_netns_inode();
  skel_->rodata->cfg_self_netns = netns_;
  // Right outside a pid namespace; learn_self_tgid() replaces it with the kernel's own number.
  skel_->bss->self_tgid = static_cast<uint32_t>(getpid());
  skel_->rodata->cfg_chunk_bytes = config.chunk_bytes;
  skel_->rodata->cfg_max_capture_bytes = config.max_capture_bytes;
  skel_->rodata->cfg_wakeup_bytes = config.ringbuf_bytes / 8;
  bpf_map__set_max_entries(skel_->maps.weft_events, config.ringbuf_bytes);
  bpf_map__set_max_entries(skel_->maps.weft_conns, config.max_connections);
  bpf_map__set_max_entries(skel_->maps.weft_verdicts, config.max_connections);
  bpf_map__set_max_entries(skel_->maps.weft_tls_sessions, config.max_connections);

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
      hooks_.push_back(
          {&spec, HookState::Skipped, "off by default: it slows every syscall; --exact-accept"});
    }
    if (!segment_hook_wanted(spec.costs_every_segment, config) && !listed) {
      bpf_program__set_autoload(spec.find(skel_), false);
      hooks_.push_back({&spec, HookState::Skipped,
                        spec.costs_every_segment == SegmentHook::AckWait
                            ? "off by default: it runs for every arriving segment; --ack-wait"
                            : "off by default: it runs for every arriving segment; "
                              "--receive-queue-wait"});
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
  // Where the kernel has uprobe_multi links (6.6+), the TLS programs are loaded for them:
  // removing them at exit then takes milliseconds instead of ~55 ms per uprobe, serialized.
  // Go crypto/tls's probes exist only as such (one link per executable instead of one per RET
  // instruction).
  tls_multi_ = proc::uprobe_multi_supported();
  if (tls_multi_)
    for (bpf_program* p : {skel_->progs.tls__write_enter, skel_->progs.tls__write_ex_enter,
                           skel_->progs.tls__read_enter, skel_->progs.tls__read_ex_enter,
                           skel_->progs.tls__exit, skel_->progs.tls__forget,
                           skel_->progs.tls__bio_read_enter, skel_->progs.tls__bio_read_exit,
                           skel_->progs.tls__bio_write_enter, skel_->progs.tls__handshake_enter})
      bpf_program__set_expected_attach_type(p, BPF_TRACE_UPROBE_MULTI);
  go_tls_supported_ = config.tls && tls_multi_;
  if (!go_tls_supported_) {
    bpf_program__set_autoload(skel_->progs.go_tls__enter, false);
    bpf_program__set_autoload(skel_->progs.go_tls__return, false);
  }
  if (int err = weft_bpf__load(skel_); err) {
    *error = "loading the BPF programs failed: " + errno_text(err) +
             " (run `weft doctor`; libbpf's log above names the program)";
    return false;
  }
  return learn_self_tgid(error);
}

// getpid() is weft's pid in its own pid namespace; the kernel hooks see the root namespace's
// number. self__learn, run here in weft's own context, stores the latter where the hooks read it.
bool KernelCapture::learn_self_tgid(std::string* error) {
  uint64_t args[1] = {0};
  LIBBPF_OPTS(bpf_test_run_opts, run, .ctx_in = args, .ctx_size_in = sizeof(args));
  if (int err = bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.self__learn), &run); err) {
    *error = "cannot learn weft's own pid as the kernel sees it (running self__learn failed: " +
             errno_text(err) + "); weft would trace itself";
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
  std::sort(hooks_.begin(), hooks_.end(),
            [](const HookStatus& a, const HookStatus& b) { return a.spec < b.spec; });
  ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.weft_events), &KernelCapture::on_record, this,
                           nullptr);
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
  // Decoded into the same Event every time: the sink swaps it with one it released, so the
  // payload buffer is reused and nothing is allocated per record.
  Event& event = self->decoded_;
  if (!decode_event_into({static_cast<const uint8_t*>(data), size}, event, nullptr)) {
    ++self->stats_.malformed;
    return 0;
  }
  ++self->stats_.records;
  event.wall_ns = event.mono_ns + static_cast<uint64_t>(self->wall_offset_ns_);
  event.process = self->processes_.resolve(event.pid, event.comm);
  (*self->sink_)(std::move(event));
  return 0;
}

// Connections open before weft started are reported once (delivered by the first poll), and
// their owner and role are written into the kernel's connection map so later data records
// carry the role.
void KernelCapture::scan_existing() {
  if (!scan_existing_) return;
  ScanResult scan = scan_existing_connections(static_cast<uint32_t>(getpid()), monotonic_now_ns());
  stats_.scan_errors += report_scan_errors(scan.errors, stderr);
  int map_fd = bpf_map__fd(skel_->maps.weft_conns);
  for (Event& e : scan.events) {
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
  if (!any_address_ports_.empty() && monotonic_now_ns() >= next_address_refresh_ns_)
    refresh_listener_addresses();
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

size_t KernelCapture::drain(const EventSink& sink) {
  uint64_t before = stats_.records;
  for (Event& e : existing_) {
    ++stats_.records;
    sink(std::move(e));
  }
  existing_.clear();
  sink_ = &sink;
  // A poll cut short by the stop signal consumed nothing; records written without a wakeup
  // since the last poll are still queued. Read up to where the producer stood now (not what
  // keeps arriving), bounded in time under a flood.
  ring* r = ring_buffer__ring(ring_, 0);
  unsigned long target = r ? ring__producer_pos(r) : 0;
  uint64_t deadline = monotonic_now_ns() + kDrainBudgetNs;
  while (r && ring__consumer_pos(r) < target && monotonic_now_ns() < deadline) {
    if (ring__consume(r) <= 0) break;
  }
  sink_ = nullptr;
  return stats_.records - before;
}

uint64_t KernelCapture::now_mono_ns() const {
  return monotonic_now_ns();
}

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
  fd = bpf_map__fd(skel_->maps.weft_tls_counts);
  for (uint32_t what = 0; what < WEFT_TLS_COUNT_MAX; ++what) {
    if (bpf_map_lookup_elem(fd, &what, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) out.tls[what] += v;
  }
  return out;
}

const char* tls_count_name(int what) {
  static const char* const kNames[WEFT_TLS_COUNT_MAX] = {
      "calls",        "unmapped",         "nested",         "no_thread_state",
      "read_failed",  "proc_events_lost", "go_untraceable", "go_not_tcp",
      "go_no_socket", "go_mid_stream"};
  return what >= 0 && what < WEFT_TLS_COUNT_MAX ? kNames[what] : "unknown";
}

const char* loss_name(int cause) {
  static const char* const kNames[WEFT_LOSS_COUNT] = {"ringbuf_full", "truncated", "map_full",
                                                      "read_failed", "no_cookie"};
  return cause >= 0 && cause < WEFT_LOSS_COUNT ? kNames[cause] : "unknown";
}

}  // namespace weft::capture

namespace weft::capture {

void KernelCapture::register_self_endpoint(const EndpointKey& key, bool add) {
  weft_endpoint e{};
  std::memcpy(e.addr, key.first.data(), sizeof(e.addr));
  e.port = key.second;
  e.netns = netns_;
  int fd = bpf_map__fd(skel_->maps.weft_self_endpoints);
  uint8_t kind = WEFT_SELF_LISTENER;
  if (add)
    bpf_map_update_elem(fd, &e, &kind, BPF_ANY);
  else
    bpf_map_delete_elem(fd, &e);
}

void KernelCapture::exclude_peers_of(const Endpoint& local) {
  if (local.addr != std::array<uint8_t, 16>{}) {
    register_self_endpoint({local.addr, local.port}, true);
    return;
  }
  // Not a zero-address entry: that would hide every connection to this port on any host.
  any_address_ports_.push_back(local.port);
  refresh_listener_addresses();
}

void KernelCapture::refresh_listener_addresses() {
  next_address_refresh_ns_ = monotonic_now_ns() + kAddressRefreshNs;
  std::set<EndpointKey> now;
  for (const auto& addr : local_addresses())
    for (uint16_t port : any_address_ports_) now.insert({addr, port});
  for (const EndpointKey& key : any_address_keys_)
    if (!now.contains(key)) register_self_endpoint(key, false);
  for (const EndpointKey& key : now)
    if (!any_address_keys_.contains(key)) register_self_endpoint(key, true);
  any_address_keys_ = std::move(now);
}

std::vector<KernelCapture::ProgramStats> KernelCapture::program_stats() const {
  std::vector<ProgramStats> out;
  bpf_program* prog = nullptr;
  bpf_object__for_each_program(prog, skel_->obj) {
    int fd = bpf_program__fd(prog);
    if (fd < 0) continue;  // not loaded (a hook left out)
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_prog_get_info_by_fd(fd, &info, &len) != 0) continue;
    out.push_back({bpf_program__name(prog), info.run_time_ns, info.run_cnt});
  }
  return out;
}

void KernelCapture::start_tls() {
  if (!tls_enabled_) return;
  proc::TlsProbePrograms programs{
      .write_enter = skel_->progs.tls__write_enter,
      .write_ex_enter = skel_->progs.tls__write_ex_enter,
      .read_enter = skel_->progs.tls__read_enter,
      .read_ex_enter = skel_->progs.tls__read_ex_enter,
      .exit = skel_->progs.tls__exit,
      .forget = skel_->progs.tls__forget,
      .handshake_enter = skel_->progs.tls__handshake_enter,
      .bio_read_enter = skel_->progs.tls__bio_read_enter,
      .bio_read_exit = skel_->progs.tls__bio_read_exit,
      .bio_write_enter = skel_->progs.tls__bio_write_enter,
      .shared_libcrypto_bios = tls_memory_bio_,
      .multi = tls_multi_,
  };
  bool follows = false;
  for (const HookStatus& h : hooks_)
    follows |= h.spec->program == "proc__exec" && h.state == HookState::Attached;
  if (go_tls_supported_)
    go_tls_ = std::make_unique<proc::GoTlsBinaries>(
        proc::GoTlsProbePrograms{.enter = skel_->progs.go_tls__enter,
                                 .ret = skel_->progs.go_tls__return},
        bpf_map__fd(skel_->maps.weft_go_tls_layouts));
  tls_ = std::make_unique<proc::TlsLibraries>(
      programs, follows ? bpf_map__fd(skel_->maps.weft_proc_events) : -1, getpid(), go_tls_.get());
}

std::vector<proc::GoTlsBinaryStatus> KernelCapture::go_tls_binaries() const {
  return go_tls_ ? go_tls_->status() : std::vector<proc::GoTlsBinaryStatus>{};
}

std::vector<proc::TlsLibraryStatus> KernelCapture::tls_libraries() const {
  return tls_ ? tls_->status() : std::vector<proc::TlsLibraryStatus>{};
}

void KernelCapture::set_verdict(uint64_t cookie, const CaptureVerdict& verdict) {
  int fd = bpf_map__fd(skel_->maps.weft_verdicts);
  if (verdict.is_default()) {
    // No entry means payload; a connection that never had a verdict is fine as it is.
    if (bpf_map_delete_elem(fd, &cookie) != 0 && errno != ENOENT) ++stats_.verdict_failures;
    return;
  }
  weft_verdict value{};
  value.mode = static_cast<uint8_t>(verdict.mode);
  value.skip_until[WEFT_DIR_SEND] = verdict.skip_until[static_cast<int>(Direction::Send)];
  value.skip_until[WEFT_DIR_RECV] = verdict.skip_until[static_cast<int>(Direction::Recv)];
  if (bpf_map_update_elem(fd, &cookie, &value, BPF_ANY) != 0) ++stats_.verdict_failures;
}

}  // namespace weft::capture
