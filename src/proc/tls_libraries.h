// The proc stage's TLS part: which processes map which TLS library files, and one uprobe set
// per file (uprobes are per file, not per process: one attach covers every process, in any
// container, that maps the same file). Runs on its own thread, never on the pipeline's.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "proc/go_tls.h"

struct bpf_program;
struct bpf_link;
struct ring_buffer;

namespace weft::proc {

enum class TlsLibraryKind {
  None,
  OpenSsl3,
  OpenSsl11,
  GnuTls,
  OpenSslLinked,  // OpenSSL or BoringSSL linked into another file (node): found by its symbols
  OpenSslCrypto,  // libcrypto.so.3/.1.1: BIO_read/BIO_write, for memory-BIO users (node, asyncio)
  NoSymbols,      // a file with no symbol table at all: what it links cannot be found
};
const char* to_string(TlsLibraryKind kind);

// Which TLS library a file is, by its name: libssl.so.3 (OpenSSL 3), libssl.so.1.1, their
// libcrypto.so.3/.1.1 (whose BIO_read/BIO_write tie memory-BIO calls to sockets), or GnuTLS's
// libgnutls.so.30 (3.4 on; .so.28 before), as linked (libgnutls.so.30) or as /proc/PID/maps
// names the file the link resolves to (libgnutls.so.30.34.3). NSS's libssl3.so is not OpenSSL;
// libgnutls-openssl.so (GnuTLS's OpenSSL compatibility layer) and libgnutlsxx are not GnuTLS's
// record layer.
TlsLibraryKind tls_library_kind(std::string_view path);

// The TLS library files in the text of /proc/PID/maps, each once, in order of appearance.
// Files replaced since they were mapped (" (deleted)") are left out: they cannot be opened by
// that name any more.
std::vector<std::string> tls_libraries_in_maps(std::string_view maps);

// A file some process maps executable, by the (device, inode) /proc/PID/maps gives it: looked
// at once for OpenSSL linked into it.
struct MappedFile {
  std::string path;
  uint64_t dev = 0;  // as the kernel encodes it (makedev of the major:minor in maps)
  uint64_t inode = 0;
  bool operator==(const MappedFile&) const = default;
};

// The files mapped executable in the text of /proc/PID/maps, each once, in order of
// appearance, except the TLS libraries known by name (and GnuTLS's own files), replaced files
// (" (deleted)") and anonymous or special mappings.
std::vector<MappedFile> executable_files_in_maps(std::string_view maps);

// The BPF programs of one uprobe set (bpf/tls_programs.h).
struct TlsProbePrograms {
  bpf_program* write_enter = nullptr;
  bpf_program* write_ex_enter = nullptr;
  bpf_program* read_enter = nullptr;
  bpf_program* read_ex_enter = nullptr;
  bpf_program* exit = nullptr;
  bpf_program* forget = nullptr;
  bpf_program* handshake_enter = nullptr;  // SSL_do_handshake: marks memory-BIO threads early
  // BIO_read (entry and return) and BIO_write (entry): memory-BIO calls' ciphertext.
  bpf_program* bio_read_enter = nullptr;
  bpf_program* bio_read_exit = nullptr;
  bpf_program* bio_write_enter = nullptr;
  // BIO_read/BIO_write hooked in a shared libcrypto too (--tls-memory-bio): every process
  // using OpenSSL then takes their traps (~10 per HTTP request), not only the memory-BIO users
  // they are for (node linking libssl.so.3, Python's asyncio). OpenSSL linked into an
  // executable (node's own build) has them hooked either way: only that program pays.
  bool shared_libcrypto_bios = false;
  // Loaded as uprobe_multi programs (kernel 6.6+): attached as one uprobe_multi link each,
  // which the kernel removes in a fraction of the time a perf-event uprobe takes.
  bool multi = false;
};

// Whether the kernel knows uprobe_multi links (6.6+): set the TLS programs' expected attach
// type to BPF_TRACE_UPROBE_MULTI before loading them, and TlsProbePrograms::multi.
bool uprobe_multi_supported();

struct TlsLibraryStatus {
  std::string path;  // where weft opened it (a container's file: /proc/PID/root/...)
  TlsLibraryKind kind = TlsLibraryKind::None;
  bool hooked = false;
  std::string detail;    // why it is not hooked, or which optional functions are missing
  size_t processes = 0;  // live processes mapping it
};

class TlsLibraries {
 public:
  // Attaches to the host's own libraries and to those every running process maps (synchronously:
  // when this returns, running processes are covered), then follows process starts and exits
  // from `proc_ring_fd` (struct weft_proc_event) on its own thread. `proc_ring_fd` < 0: no
  // process events; new processes are then found by the periodic rescan only. `go` (if given)
  // is shown every process this stage looks at and forgets, for Go's crypto/tls.
  TlsLibraries(TlsProbePrograms programs, int proc_ring_fd, pid_t self,
               GoTlsBinaries* go = nullptr);
  ~TlsLibraries();
  TlsLibraries(const TlsLibraries&) = delete;
  TlsLibraries& operator=(const TlsLibraries&) = delete;

  std::vector<TlsLibraryStatus> status() const;

  // A full /proc rescan this often catches libraries loaded with dlopen() after a process
  // started, and processes whose start event was missed.
  static constexpr uint64_t kRescanNs = 10'000'000'000;
  // A new process is looked at this long after its exec, as its loader maps its libraries.
  // (A look costs ~80 µs: a rescan of 1 000 small processes took ~80 ms; docs/performance.md.)
  static constexpr uint64_t kExecChecksNs[] = {0,           20'000'000,  50'000'000,   100'000'000,
                                               200'000'000, 400'000'000, 1'000'000'000};

 private:
  using FileKey = std::pair<dev_t, ino_t>;
  using MapsKey = std::pair<uint64_t, uint64_t>;  // (dev, inode) as /proc/PID/maps gives them
  struct Library {
    TlsLibraryStatus status;
    std::vector<bpf_link*> links;
    std::set<pid_t> pids;
  };
  struct Check {
    uint64_t due_ns;
    pid_t pid;
    size_t step;
    bool operator>(const Check& o) const { return due_ns > o.due_ns; }
  };

  void attach_host_libraries();
  void scan_all();
  void check_process(pid_t pid);
  // The library at `path` (as weft can open it), attached if it is new; `key` (if given) says
  // which file it is. Null when the file is gone. Caller holds mu_.
  Library* library_at(const std::string& path, FileKey* key = nullptr);
  void attach(Library& lib, const std::string& path,
              const std::map<std::string, uint64_t>* offsets = nullptr);
  // The files `pid` maps that are no TLS library by name but may link one (OpenSSL linked
  // into an executable): each looked into once, hooked at the functions' offsets if it does.
  void check_linked(pid_t pid, const std::string& root, std::string_view maps);
  enum class Look {
    WithoutTls,  // no OpenSSL functions in it (remembered: not looked into again)
    Gone,        // it could not be read (its process exited): looked into at the next sight
    Entry        // it links OpenSSL (hooked, or why not), or has no symbols: `key` names it
  };
  Look look_into(const std::string& path, std::optional<FileKey>* key);
  void remember_without_tls(MapsKey file);
  static constexpr size_t kMaxRememberedFiles = 65536;
  void forget_process(pid_t pid);
  void run();
  static int on_proc_event(void* ctx, void* data, size_t size);

  TlsProbePrograms programs_;
  pid_t self_;
  GoTlsBinaries* go_;
  ring_buffer* ring_ = nullptr;
  mutable std::mutex mu_;  // guards libraries_ and by_pid_ (status() reads from other threads)
  std::map<FileKey, Library> libraries_;
  std::map<pid_t, std::set<FileKey>> by_pid_;
  // Files looked into for linked OpenSSL, by what maps says (no stat per file per look): those
  // without it, and those with it (or with no symbols) -> their entry in libraries_. Only the
  // proc thread touches them. The first is bounded (kMaxRememberedFiles); the second grows with
  // the files that link OpenSSL, like libraries_.
  std::set<MapsKey> without_tls_;
  std::map<MapsKey, FileKey> linked_;
  std::vector<Check> checks_;  // min-heap by due time (only the proc thread touches it)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace weft::proc
