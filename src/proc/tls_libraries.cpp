#include "proc/tls_libraries.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "weft_events.h"

namespace weft::proc {
namespace {

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Where the host's (weft's own) dynamic libraries live: hooked at start, so that a process
// started later is traced from its first call even before weft has looked at it.
constexpr const char* kHostLibraryDirs[] = {"/lib/x86_64-linux-gnu",
                                            "/usr/lib/x86_64-linux-gnu",
                                            "/lib64",
                                            "/usr/lib64",
                                            "/lib",
                                            "/usr/lib",
                                            "/usr/local/lib"};
constexpr const char* kHostLibraryNames[] = {"libssl.so.3", "libssl.so.1.1"};

struct Probe {
  const char* function;
  bpf_program* TlsProbePrograms::*program;
  bool retprobe;
  bool required;  // without it the library is not hooked at all
};

// SSL_read_ex/SSL_write_ex exist from OpenSSL 1.1.1 on; 1.1.0 has only the plain pair.
constexpr Probe kProbes[] = {
    {"SSL_write", &TlsProbePrograms::write_enter, false, true},
    {"SSL_write", &TlsProbePrograms::exit, true, true},
    {"SSL_read", &TlsProbePrograms::read_enter, false, true},
    {"SSL_read", &TlsProbePrograms::exit, true, true},
    {"SSL_write_ex", &TlsProbePrograms::write_ex_enter, false, false},
    {"SSL_write_ex", &TlsProbePrograms::exit, true, false},
    {"SSL_read_ex", &TlsProbePrograms::read_ex_enter, false, false},
    {"SSL_read_ex", &TlsProbePrograms::exit, true, false},
    {"SSL_shutdown", &TlsProbePrograms::forget, false, false},
    {"SSL_free", &TlsProbePrograms::forget, false, true},
};

// Removing a uprobe waits for the kernel (~55 ms each here, serialized by a kernel-wide lock, as
// strace shows): ten of them made weft take 0.8-1.1 s to exit (10 ms without TLS). Released
// from several threads at once, the part that can overlap does: 0.54-0.63 s.
void destroy_in_parallel(const std::vector<bpf_link*>& links) {
  constexpr size_t kMaxThreads = 16;
  size_t n = std::min(kMaxThreads, links.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n; ++t)
    threads.emplace_back([&links, t, n] {
      for (size_t i = t; i < links.size(); i += n) bpf_link__destroy(links[i]);
    });
  for (std::thread& t : threads) t.join();
}

}  // namespace

const char* to_string(TlsLibraryKind kind) {
  switch (kind) {
    case TlsLibraryKind::OpenSsl3:
      return "OpenSSL 3";
    case TlsLibraryKind::OpenSsl11:
      return "OpenSSL 1.1";
    case TlsLibraryKind::None:
      break;
  }
  return "none";
}

TlsLibraryKind tls_library_kind(std::string_view path) {
  size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  if (name == "libssl.so.3") return TlsLibraryKind::OpenSsl3;
  if (name == "libssl.so.1.1") return TlsLibraryKind::OpenSsl11;
  return TlsLibraryKind::None;
}

std::vector<std::string> tls_libraries_in_maps(std::string_view maps) {
  std::vector<std::string> out;
  while (!maps.empty()) {
    size_t end = maps.find('\n');
    std::string_view line = maps.substr(0, end);
    maps = end == std::string_view::npos ? std::string_view() : maps.substr(end + 1);
    // address perms offset dev inode path: the path is what follows the first '/'.
    size_t slash = line.find('/');
    if (slash == std::string_view::npos) continue;
    std::string_view path = line.substr(slash);
    if (path.ends_with(" (deleted)")) continue;
    if (tls_library_kind(path) == TlsLibraryKind::None) continue;
    if (std::find(out.begin(), out.end(), path) == out.end()) out.emplace_back(path);
  }
  return out;
}

TlsLibraries::TlsLibraries(TlsProbePrograms programs, int proc_ring_fd, pid_t self,
                           GoTlsBinaries* go)
    : programs_(programs), self_(self), go_(go) {
  if (proc_ring_fd >= 0)
    ring_ = ring_buffer__new(proc_ring_fd, &TlsLibraries::on_proc_event, this, nullptr);
  attach_host_libraries();
  scan_all();
  thread_ = std::thread([this] { run(); });
}

TlsLibraries::~TlsLibraries() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (ring_) ring_buffer__free(ring_);
  std::vector<bpf_link*> links;
  for (auto& [key, lib] : libraries_) links.insert(links.end(), lib.links.begin(), lib.links.end());
  destroy_in_parallel(links);
}

std::vector<TlsLibraryStatus> TlsLibraries::status() const {
  std::lock_guard lock(mu_);
  std::vector<TlsLibraryStatus> out;
  for (const auto& [key, lib] : libraries_) {
    out.push_back(lib.status);
    out.back().processes = lib.pids.size();
  }
  return out;
}

void TlsLibraries::attach_host_libraries() {
  std::lock_guard lock(mu_);
  for (const char* dir : kHostLibraryDirs)
    for (const char* name : kHostLibraryNames) {
      std::string path = std::string(dir) + "/" + name;
      if (access(path.c_str(), R_OK) == 0) library_at(path);
    }
}

void TlsLibraries::scan_all() {
  DIR* dir = opendir("/proc");
  if (!dir) return;
  std::set<pid_t> alive;
  while (dirent* d = readdir(dir)) {
    char* end = nullptr;
    long pid = std::strtol(d->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    alive.insert(static_cast<pid_t>(pid));
  }
  closedir(dir);
  for (pid_t pid : alive) check_process(pid);
  // Exits whose event was lost (or that happened with no event source): forgotten here.
  std::vector<pid_t> gone;
  {
    std::lock_guard lock(mu_);
    for (const auto& [pid, files] : by_pid_)
      if (!alive.contains(pid)) gone.push_back(pid);
  }
  for (pid_t pid : gone) forget_process(pid);
}

void TlsLibraries::check_process(pid_t pid) {
  if (pid == self_) return;
  if (go_) go_->check_process(pid);
  std::string proc = "/proc/" + std::to_string(pid);
  std::vector<std::string> paths = tls_libraries_in_maps(read_file(proc + "/maps"));
  if (paths.empty()) return;
  std::lock_guard lock(mu_);
  for (const std::string& path : paths) {
    // The path as the process sees it, resolved in its own root: a container's file.
    FileKey key;
    Library* lib = library_at(proc + "/root" + path, &key);
    if (!lib) continue;
    lib->pids.insert(pid);
    by_pid_[pid].insert(key);
  }
}

TlsLibraries::Library* TlsLibraries::library_at(const std::string& path, FileKey* key) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return nullptr;  // the process exited meanwhile
  auto [it, fresh] = libraries_.try_emplace(FileKey{st.st_dev, st.st_ino});
  if (key) *key = it->first;
  if (fresh) attach(it->second, path);
  return &it->second;
}

void TlsLibraries::attach(Library& lib, const std::string& path) {
  lib.status.path = path;
  lib.status.kind = tls_library_kind(path);
  std::string missing;
  for (const Probe& p : kProbes) {
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = p.retprobe, .func_name = p.function);
    // -1: every process that maps this file, now or later.
    bpf_link* link =
        bpf_program__attach_uprobe_opts(programs_.*p.program, -1, path.c_str(), 0, &opts);
    if (link) {
      lib.links.push_back(link);
      continue;
    }
    std::string why =
        std::string(p.function) + (p.retprobe ? " (return)" : "") + ": " + std::strerror(errno);
    if (p.required) {
      for (bpf_link* l : lib.links) bpf_link__destroy(l);
      lib.links.clear();
      lib.status.hooked = false;
      lib.status.detail = "not hooked: " + why;
      return;
    }
    if (missing.find(p.function) == std::string::npos)
      missing += (missing.empty() ? "" : ", ") + std::string(p.function);
  }
  lib.status.hooked = true;
  if (!missing.empty()) lib.status.detail = "without " + missing;
}

void TlsLibraries::forget_process(pid_t pid) {
  if (go_) go_->forget_process(pid);
  std::lock_guard lock(mu_);
  auto it = by_pid_.find(pid);
  if (it == by_pid_.end()) return;
  for (const FileKey& key : it->second) {
    auto lib = libraries_.find(key);
    if (lib != libraries_.end()) lib->second.pids.erase(pid);
  }
  by_pid_.erase(it);
}

int TlsLibraries::on_proc_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<TlsLibraries*>(ctx);
  if (size < sizeof(weft_proc_event)) return 0;
  weft_proc_event ev;
  std::memcpy(&ev, data, sizeof(ev));
  pid_t pid = static_cast<pid_t>(ev.pid);
  if (ev.kind == WEFT_PROC_EXIT) {
    self->forget_process(pid);
    self->checks_.erase(std::remove_if(self->checks_.begin(), self->checks_.end(),
                                       [pid](const Check& c) { return c.pid == pid; }),
                        self->checks_.end());
    std::make_heap(self->checks_.begin(), self->checks_.end(), std::greater<>{});
  } else if (ev.kind == WEFT_PROC_EXEC) {
    // A new executable: what it mapped before is gone, what it maps comes as its loader runs.
    self->forget_process(pid);
    self->checks_.push_back({now_ns() + kExecChecksNs[0], pid, 0});
    std::push_heap(self->checks_.begin(), self->checks_.end(), std::greater<>{});
  }
  return 0;
}

void TlsLibraries::run() {
  uint64_t next_rescan = now_ns() + kRescanNs;
  constexpr size_t kSteps = std::size(kExecChecksNs);
  while (!stop_) {
    int timeout_ms = 50;
    if (!checks_.empty()) {
      uint64_t now = now_ns();
      uint64_t due = checks_.front().due_ns;
      timeout_ms =
          due <= now ? 0 : static_cast<int>(std::min<uint64_t>(50, (due - now) / 1'000'000 + 1));
    }
    if (ring_)
      ring_buffer__poll(ring_, timeout_ms);
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    uint64_t now = now_ns();
    while (!checks_.empty() && checks_.front().due_ns <= now) {
      std::pop_heap(checks_.begin(), checks_.end(), std::greater<>{});
      Check c = checks_.back();
      checks_.pop_back();
      check_process(c.pid);
      if (c.step + 1 < kSteps) {
        uint64_t start = c.due_ns - kExecChecksNs[c.step];
        checks_.push_back({start + kExecChecksNs[c.step + 1], c.pid, c.step + 1});
        std::push_heap(checks_.begin(), checks_.end(), std::greater<>{});
      }
    }
    if (now >= next_rescan) {
      scan_all();
      next_rescan = now_ns() + kRescanNs;
    }
  }
}

}  // namespace weft::proc
