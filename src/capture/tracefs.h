#pragma once

#include <string>

namespace weft::capture {

// Where tracefs is (or will be) mounted.
std::string tracefs_root();
// Mounts tracefs when nothing is mounted there (libbpf needs it to attach tracepoints).
// Returns false and explains when it is missing and cannot be mounted.
bool ensure_tracefs(std::string* error);

}  // namespace weft::capture
