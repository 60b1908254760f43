// Connections that were open before weft started: found through sock_diag (tuple, cookie,
// inode) and /proc/<pid>/fd (which process holds them).
#pragma once

#include <string>
#include <vector>

#include "weft/event.h"

namespace weft::capture {

// One Existing event per established TCP connection held by a process other than
// `exclude_pid`. Role is server when a listener owns the local port, else client.
std::vector<Event> scan_existing_connections(uint32_t exclude_pid, uint64_t now_mono_ns,
                                             std::string* error);

}  // namespace weft::capture
