// The proc stage's Go part: Go executables that use crypto/tls, what weft needs to read their
// TLS plaintext (function addresses, RET instructions, struct offsets from DWARF), and one
// uprobe set per executable file. Driven by TlsLibraries' process scan, on its thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "weft_events.h"

struct bpf_program;
struct bpf_link;

namespace weft::proc {

// The offsets (within the function) of every RET instruction in x86-64 machine code, found by
// disassembling it from its first byte (a 0xC3 byte inside another instruction is not a RET).
// Null when the code does not decode to its end.
std::optional<std::vector<uint64_t>> x86_return_offsets(std::span<const uint8_t> code);

// The Go version ("go1.23.5") a .go.buildinfo section records inline (Go >= 1.18); empty when
// it is not that format.
std::string go_buildinfo_version(std::span<const uint8_t> section);

// 1.17 from "go1.17.3"; nullopt when unreadable.
std::optional<std::pair<int, int>> go_version_number(std::string_view version);

// One crypto/tls function of an executable, where uprobes attach (file offsets).
struct GoTlsFunction {
  uint64_t address = 0;  // as linked
  uint64_t entry = 0;    // file offset of its first instruction
  std::vector<uint64_t> returns;
};

struct GoBinary {
  bool is_go = false;
  bool uses_tls = false;  // links crypto/tls.(*Conn).Read/Write
  std::string version;
  GoTlsFunction read, write;
  weft_go_tls_layout layout{};  // usable = 0 unless everything was found
  std::string problem;          // why its plaintext cannot be read; empty when it can
};

// Reads what weft needs from the Go executable at `path`. Not Go, or Go without crypto/tls:
// is_go/uses_tls say so and nothing else is filled.
GoBinary inspect_go_binary(const std::string& path);

struct GoTlsProbePrograms {
  bpf_program* enter = nullptr;
  bpf_program* ret = nullptr;
};

struct GoTlsBinaryStatus {
  std::string path;
  std::string version;
  bool hooked = false;
  std::string detail;  // why not hooked, or how many RET instructions carry probes
  size_t processes = 0;
};

class GoTlsBinaries {
 public:
  GoTlsBinaries(GoTlsProbePrograms programs, int layouts_map_fd)
      : programs_(programs), layouts_fd_(layouts_map_fd) {}
  ~GoTlsBinaries();
  GoTlsBinaries(const GoTlsBinaries&) = delete;
  GoTlsBinaries& operator=(const GoTlsBinaries&) = delete;

  // The process's executable, looked at once per file (dev, inode) and hooked if it is a Go
  // program using crypto/tls.
  void check_process(pid_t pid);
  void forget_process(pid_t pid);
  std::vector<GoTlsBinaryStatus> status() const;

 private:
  using FileKey = std::pair<dev_t, ino_t>;
  struct Binary {
    bool listed = false;  // a Go program using crypto/tls: shown by doctor
    GoTlsBinaryStatus status;
    std::vector<bpf_link*> links;
    std::set<pid_t> pids;
  };
  void attach(Binary& b, const std::string& path);
  bool attach_probes(Binary& b, const std::string& path, const GoBinary& go, uint32_t slot);

  GoTlsProbePrograms programs_;
  int layouts_fd_;
  mutable std::mutex mu_;
  std::map<FileKey, Binary> binaries_;
  std::map<pid_t, FileKey> by_pid_;
  uint32_t next_slot_ = 0;
};

}  // namespace weft::proc
