#include "capture/tracefs.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::capture {

std::string tracefs_root() { return "/sys/kernel/tracing"; }

bool ensure_tracefs(std::string* error) {
  std::string root = tracefs_root();
  if (access((root + "/events").c_str(), F_OK) == 0) return true;
  if (mount("nodev", root.c_str(), "tracefs", 0, nullptr) != 0) {
    *error = "tracefs is not mounted at " + root + " and mounting it failed: " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace weft::capture
