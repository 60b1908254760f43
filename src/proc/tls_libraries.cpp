#include "proc/tls_libraries.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "proc/elf_symbols.h"
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
constexpr const char* kHostLibraryNames[] = {"libssl.so.3", "libssl.so.1.1", "libcrypto.so.3",
                                             "libcrypto.so.1.1", "libgnutls.so.30"};

struct Probe {
  const char* function;
  bpf_program* TlsProbePrograms::*program;
  bool retprobe;
  bool required;  // without it the library is not hooked at all
};

// SSL_read_ex/SSL_write_ex exist from OpenSSL 1.1.1 on; 1.1.0 has only the plain pair.
constexpr Probe kOpenSslProbes[] = {
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
    {"SSL_do_handshake", &TlsProbePrograms::handshake_enter, false, false},
    {"SSL_do_handshake", &TlsProbePrograms::exit, true, false},
};

// A shared libssl calls BIO_read/BIO_write in its libcrypto: hooked there, for the calls of
// memory-BIO users (node linking libssl.so.3, Python's asyncio), which make no socket syscall.
constexpr Probe kOpenSslCryptoProbes[] = {
    {"BIO_read", &TlsProbePrograms::bio_read_enter, false, true},
    {"BIO_read", &TlsProbePrograms::bio_read_exit, true, true},
    {"BIO_write", &TlsProbePrograms::bio_write_enter, false, true},
};

// GnuTLS's data calls take (session, buffer, size) like SSL_write/SSL_read: the same programs.
// gnutls_record_send2 (3.6.3 on) is what gnutls_record_send tail-calls; hooked as well for
// callers of send2 itself (the BPF side sees a wrapper and its inner function as one call).
// gnutls_record_recv_seq (DTLS, and gnutls-serv) is a sibling of gnutls_record_recv, not a
// wrapper. A session cannot serve a second connection: gnutls_deinit is its end.
constexpr Probe kGnuTlsProbes[] = {
    {"gnutls_record_send", &TlsProbePrograms::write_enter, false, true},
    {"gnutls_record_send", &TlsProbePrograms::exit, true, true},
    {"gnutls_record_recv", &TlsProbePrograms::read_enter, false, true},
    {"gnutls_record_recv", &TlsProbePrograms::exit, true, true},
    {"gnutls_record_send2", &TlsProbePrograms::write_enter, false, false},
    {"gnutls_record_send2", &TlsProbePrograms::exit, true, false},
    {"gnutls_record_recv_seq", &TlsProbePrograms::read_enter, false, false},
    {"gnutls_record_recv_seq", &TlsProbePrograms::exit, true, false},
    {"gnutls_deinit", &TlsProbePrograms::forget, false, true},
};

// What is looked up in files that are no TLS library by name: the OpenSSL set's functions.
constexpr const char* kOpenSslFunctions[] = {"SSL_write",   "SSL_read",     "SSL_write_ex",
                                             "SSL_read_ex", "SSL_shutdown", "SSL_free",
                                             "BIO_read",    "BIO_write",    "SSL_do_handshake"};

std::vector<Probe> probes_for(TlsLibraryKind kind) {
  if (kind == TlsLibraryKind::GnuTls) return {std::begin(kGnuTlsProbes), std::end(kGnuTlsProbes)};
  if (kind == TlsLibraryKind::OpenSslCrypto)
    return {std::begin(kOpenSslCryptoProbes), std::end(kOpenSslCryptoProbes)};
  std::vector<Probe> probes(std::begin(kOpenSslProbes), std::end(kOpenSslProbes));
  // OpenSSL linked into a file has its libcrypto part there too (node's executable): optional,
  // as a build may keep only what it calls.
  if (kind == TlsLibraryKind::OpenSslLinked)
    for (Probe p : kOpenSslCryptoProbes) {
      p.required = false;
      probes.push_back(p);
    }
  return probes;
}

std::string_view basename_of(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool all_digits_and_dots(std::string_view s) {
  return !s.empty() && s.front() != '.' && s.back() != '.' &&
         s.find_first_not_of("0123456789.") == std::string_view::npos;
}

// One probe of a set on the file at `path`; null (and why) when it cannot be attached.
bpf_link* attach_one(const TlsProbePrograms& programs, const Probe& p, const std::string& path,
                     const std::map<std::string, uint64_t>* offsets, std::string* why) {
  bpf_link* link = nullptr;
  if (programs.multi) {
    // uprobe_multi links take file offsets (read once per file, elf_symbols.h).
    auto at =
        offsets ? offsets->find(p.function) : std::map<std::string, uint64_t>::const_iterator();
    if (!offsets || at == offsets->end()) {
      *why = std::string(p.function) + ": not defined in the file";
      return nullptr;
    }
    unsigned long offset = at->second;
    LIBBPF_OPTS(bpf_uprobe_multi_opts, opts, .offsets = &offset, .cnt = 1, .retprobe = p.retprobe);
    link = bpf_program__attach_uprobe_multi(programs.*p.program, -1, path.c_str(), nullptr, &opts);
  } else if (!offsets) {
    // libbpf finds the function by name in the library's symbols.
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = p.retprobe, .func_name = p.function);
    // -1: every process that maps this file, now or later.
    link = bpf_program__attach_uprobe_opts(programs.*p.program, -1, path.c_str(), 0, &opts);
  } else if (auto at = offsets->find(p.function); at != offsets->end()) {
    // Offsets read once (elf_symbols.h): libbpf would read a large file's symbols per probe.
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = p.retprobe);
    link =
        bpf_program__attach_uprobe_opts(programs.*p.program, -1, path.c_str(), at->second, &opts);
  } else {
    *why = std::string(p.function) + ": not defined in the file";
    return nullptr;
  }
  if (!link)
    *why = std::string(p.function) + (p.retprobe ? " (return)" : "") + ": " + std::strerror(errno);
  return link;
}

// Removing a perf-event uprobe waits for the kernel (~55 ms each here, serialized by a
// kernel-wide lock, as strace shows): ten of them made weft take 0.8-1.1 s to exit (10 ms
// without TLS); released from several threads at once, 0.54-0.63 s. uprobe_multi links (used
// where the kernel has them) take no such lock, so their removals overlap fully.
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

// A trivial program of the uprobe_multi attach type loads only where the kernel knows it.
bool uprobe_multi_supported() {
  bpf_insn insns[2] = {};
  insns[0].code = BPF_ALU64 | BPF_MOV | BPF_K;  // r0 = 0
  insns[1].code = BPF_JMP | BPF_EXIT;
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_UPROBE_MULTI);
  int fd = bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", insns, 2, &opts);
  if (fd < 0) return false;
  close(fd);
  return true;
}

const char* to_string(TlsLibraryKind kind) {
  switch (kind) {
    case TlsLibraryKind::OpenSsl3:
      return "OpenSSL 3";
    case TlsLibraryKind::OpenSsl11:
      return "OpenSSL 1.1";
    case TlsLibraryKind::GnuTls:
      return "GnuTLS";
    case TlsLibraryKind::OpenSslLinked:
      return "OpenSSL (linked in)";
    case TlsLibraryKind::OpenSslCrypto:
      return "OpenSSL BIOs";
    case TlsLibraryKind::NoSymbols:
      return "unknown";
    case TlsLibraryKind::None:
      break;
  }
  return "none";
}

TlsLibraryKind tls_library_kind(std::string_view path) {
  std::string_view name = basename_of(path);
  if (name == "libssl.so.3") return TlsLibraryKind::OpenSsl3;
  if (name == "libssl.so.1.1") return TlsLibraryKind::OpenSsl11;
  if (name == "libcrypto.so.3" || name == "libcrypto.so.1.1") return TlsLibraryKind::OpenSslCrypto;
  constexpr std::string_view kGnuTls = "libgnutls.so.";
  if (name.starts_with(kGnuTls) && all_digits_and_dots(name.substr(kGnuTls.size())))
    return TlsLibraryKind::GnuTls;
  return TlsLibraryKind::None;
}

namespace {

// Calls `visit(fields, path)` for every line of /proc/PID/maps that maps a file still present:
// "address perms offset dev inode" and the path, which is what follows the first '/'.
template <typename Visit>
void for_each_mapped_file(std::string_view maps, Visit visit) {
  while (!maps.empty()) {
    size_t end = maps.find('\n');
    std::string_view line = maps.substr(0, end);
    maps = end == std::string_view::npos ? std::string_view() : maps.substr(end + 1);
    size_t slash = line.find('/');
    if (slash == std::string_view::npos) continue;
    std::string_view path = line.substr(slash);
    if (path.ends_with(" (deleted)")) continue;
    visit(line.substr(0, slash), path);
  }
}

}  // namespace

std::vector<std::string> tls_libraries_in_maps(std::string_view maps) {
  std::vector<std::string> out;
  for_each_mapped_file(maps, [&](std::string_view, std::string_view path) {
    if (tls_library_kind(path) == TlsLibraryKind::None) return;
    if (std::find(out.begin(), out.end(), path) == out.end()) out.emplace_back(path);
  });
  return out;
}

namespace {

// "addr perms offset dev inode" of a maps line: the fields before its path.
bool parse_maps_fields(std::string_view fields, MappedFile* out) {
  std::string_view f[5];
  for (std::string_view& field : f) {
    size_t start = fields.find_first_not_of(' ');
    if (start == std::string_view::npos) return false;
    fields = fields.substr(start);
    size_t end = fields.find(' ');
    field = fields.substr(0, end);
    fields = end == std::string_view::npos ? std::string_view() : fields.substr(end);
  }
  if (f[1].size() < 3 || f[1][2] != 'x') return false;
  unsigned major = 0, minor = 0;
  unsigned long long inode = 0;
  std::string dev(f[3]), ino(f[4]);
  if (std::sscanf(dev.c_str(), "%x:%x", &major, &minor) != 2) return false;
  if (std::sscanf(ino.c_str(), "%llu", &inode) != 1 || inode == 0) return false;
  out->dev = makedev(major, minor);
  out->inode = inode;
  return true;
}

}  // namespace

std::vector<MappedFile> executable_files_in_maps(std::string_view maps) {
  std::vector<MappedFile> out;
  for_each_mapped_file(maps, [&](std::string_view fields, std::string_view path) {
    if (tls_library_kind(path) != TlsLibraryKind::None) return;
    // GnuTLS's own files (its OpenSSL compatibility layer defines SSL_read over GnuTLS's
    // record calls, which are hooked already).
    if (basename_of(path).starts_with("libgnutls")) return;
    MappedFile file{std::string(path)};
    if (!parse_maps_fields(fields, &file)) return;
    bool seen = std::any_of(out.begin(), out.end(), [&](const MappedFile& f) {
      return f.dev == file.dev && f.inode == file.inode;
    });
    if (!seen) out.push_back(std::move(file));
  });
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
  std::string maps = read_file(proc + "/maps");
  check_linked(pid, proc + "/root", maps);
  std::vector<std::string> paths = tls_libraries_in_maps(maps);
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

void TlsLibraries::check_linked(pid_t pid, const std::string& root, std::string_view maps) {
  for (const MappedFile& file : executable_files_in_maps(maps)) {
    MapsKey seen{file.dev, file.inode};
    if (without_tls_.contains(seen)) continue;  // most files, after the first look at them
    auto known = linked_.find(seen);
    std::optional<FileKey> key;
    if (known != linked_.end())
      key = known->second;
    else if (Look look = look_into(root + file.path, &key); look == Look::WithoutTls)
      remember_without_tls(seen);
    else if (look == Look::Entry)
      linked_.emplace(seen, *key);
    if (!key) continue;
    std::lock_guard lock(mu_);
    auto lib = libraries_.find(*key);
    if (lib == libraries_.end()) continue;
    lib->second.pids.insert(pid);
    by_pid_[pid].insert(*key);
  }
}

void TlsLibraries::remember_without_tls(MapsKey file) {
  // Bounded: a host that runs ever new executables (a CI runner) would grow it forever; starting
  // over costs one more look (milliseconds) at each file still in use.
  if (without_tls_.size() >= kMaxRememberedFiles) without_tls_.clear();
  without_tls_.insert(file);
}

TlsLibraries::Look TlsLibraries::look_into(const std::string& path, std::optional<FileKey>* key) {
  // Read outside mu_: a large executable's symbol table takes milliseconds.
  ElfFunctions found = elf_functions(path, kOpenSslFunctions);
  using Outcome = ElfFunctions::Outcome;
  if (found.outcome == Outcome::Unreadable) return Look::Gone;
  bool links = found.offsets.contains("SSL_read") || found.offsets.contains("SSL_write");
  if (found.outcome == Outcome::NotElf || (found.outcome == Outcome::Scanned && !links))
    return Look::WithoutTls;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return Look::Gone;
  std::lock_guard lock(mu_);
  auto [it, fresh] = libraries_.try_emplace(FileKey{st.st_dev, st.st_ino});
  *key = it->first;
  if (!fresh) return Look::Entry;
  Library& lib = it->second;
  if (found.outcome == Outcome::NoSymbols) {
    lib.status.path = path;
    lib.status.kind = TlsLibraryKind::NoSymbols;
    lib.status.detail = "no symbol table: statically linked TLS cannot be found";
    return Look::Entry;
  }
  lib.status.kind = TlsLibraryKind::OpenSslLinked;
  attach(lib, path, &found.offsets);
  if (lib.status.hooked)
    lib.status.detail +=
        std::string(lib.status.detail.empty() ? "" : "; ") +
        (found.from_symtab ? "found in .symtab (not exported)" : "found in .dynsym (exported)");
  return Look::Entry;
}

TlsLibraries::Library* TlsLibraries::library_at(const std::string& path, FileKey* key) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return nullptr;  // the process exited meanwhile
  auto [it, fresh] = libraries_.try_emplace(FileKey{st.st_dev, st.st_ino});
  if (key) *key = it->first;
  if (!fresh) return &it->second;
  it->second.status.kind = tls_library_kind(path);
  attach(it->second, path);
  return &it->second;
}

void TlsLibraries::attach(Library& lib, const std::string& path,
                          const std::map<std::string, uint64_t>* offsets) {
  lib.status.path = path;
  if (lib.status.kind == TlsLibraryKind::OpenSslCrypto && !programs_.shared_libcrypto_bios) {
    lib.status.hooked = false;
    lib.status.detail =
        "not hooked: memory-BIO calls of node linking libssl.so.3 and Python's asyncio need "
        "--tls-memory-bio (its BIO_read/BIO_write uprobes would trap in every OpenSSL user)";
    return;
  }
  // uprobe_multi links are placed at file offsets: a library found by name has them read here.
  ElfFunctions found;
  if (programs_.multi && !offsets) {
    std::vector<const char*> names;
    for (const Probe& p : probes_for(lib.status.kind)) names.push_back(p.function);
    found = elf_functions(path, names);
    offsets = &found.offsets;
  }
  std::string missing;
  for (const Probe& p : probes_for(lib.status.kind)) {
    std::string why;
    bpf_link* link = attach_one(programs_, p, path, offsets, &why);
    if (link) {
      lib.links.push_back(link);
      continue;
    }
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
    if (ring_) {
      // Exits are written without a wakeup: a poll that timed out still reads them.
      if (ring_buffer__poll(ring_, timeout_ms) >= 0) ring_buffer__consume(ring_);
    } else
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
