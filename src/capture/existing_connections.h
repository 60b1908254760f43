// Connections that were open before weft started: found through sock_diag (tuple, cookie,
// inode) and /proc/<pid>/fd (which process holds them).
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "weft/event.h"

namespace weft::capture {

// One TCP socket as sock_diag reports it.
struct DiagSocket {
  int family = 0;
  int state = 0;
  uint64_t cookie = 0;
  uint32_t inode = 0;
  Endpoint local;
  Endpoint remote;
};

// Where the scan reads from; tests replace them to inject failures.
struct ScanSources {
  // Appends the TCP sockets of `family` in `states` (a bit per TCP state); false and `error`
  // on failure. Empty: sock_diag.
  std::function<bool(int family, uint32_t states, std::vector<DiagSocket>& out, std::string* error)>
      dump;
  std::string proc_root = "/proc";  // where the holders of sockets are looked up
};

struct ScanResult {
  std::vector<Event> events;
  // What went wrong, one entry per failure (an address family sock_diag could not list, /proc
  // unreadable). Connections the failure hid are not traced until they close.
  std::vector<std::string> errors;
};

// One Existing event per established TCP connection held by a process other than
// `exclude_pid`. Role is server when a listener owns the local port, else client. A failure in
// one part (IPv6, say) keeps what the other parts found.
ScanResult scan_existing_connections(uint32_t exclude_pid, uint64_t now_mono_ns,
                                     const ScanSources& sources = {});

// Prints each error once on `out` with what it means for tracing; returns how many it printed.
size_t report_scan_errors(const std::vector<std::string>& errors, std::FILE* out);

}  // namespace weft::capture
