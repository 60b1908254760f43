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

enum class TlsLibraryKind { None, OpenSsl3, OpenSsl11 };
const char* to_string(TlsLibraryKind kind);

// Which TLS library a file is, by its name: libssl.so.3 (OpenSSL 3) or libssl.so.1.1. NSS's
// libssl3.so is not OpenSSL.
TlsLibraryKind tls_library_kind(std::string_view path);

// The TLS library files in the text of /proc/PID/maps, each once, in order of appearance.
// Files replaced since they were mapped (" (deleted)") are left out: they cannot be opened by
// that name any more.
std::vector<std::string> tls_libraries_in_maps(std::string_view maps);

// The BPF programs of one uprobe set (bpf/tls_programs.h).
struct TlsProbePrograms {
  bpf_program* write_enter = nullptr;
  bpf_program* write_ex_enter = nullptr;
  bpf_program* read_enter = nullptr;
  bpf_program* read_ex_enter = nullptr;
  bpf_program* exit = nullptr;
  bpf_program* forget = nullptr;
};

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
  void attach(Library& lib, const std::string& path);
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
  std::vector<Check> checks_;  // min-heap by due time (only the proc thread touches it)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace weft::proc
