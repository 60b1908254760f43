#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "weft/event.h"

namespace weft::capture {

// Resolves the executable of the processes events come from, once per process image: every
// event of one process shares one ProcessInfo (and so one resource) until the process execs
// or its pid is reused.
class ProcessResolver {
 public:
  explicit ProcessResolver(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}

  // The process behind pid. `comm` is the calling thread's name: a name not seen before for
  // this pid may mean an exec (or a new process with a reused pid), so only then does weft
  // look at /proc, and it re-resolves only when the executable or the start time changed.
  std::shared_ptr<const ProcessInfo> resolve(uint32_t pid, const std::string& comm);
  // Records what a recording says about a process, so replay needs no /proc.
  void remember(std::shared_ptr<const ProcessInfo> info, const std::string& comm);
  // The info for pid if already known, without touching /proc.
  std::shared_ptr<const ProcessInfo> known(uint32_t pid) const;
  // Processes known here that have exited (their pid is gone): forgotten, and returned so the
  // stages that keep state per process can forget them too. One access() per process.
  std::vector<uint32_t> forget_exited();

 private:
  // What tells one process image from the next under the same pid.
  struct Image {
    std::string exe;          // /proc/PID/exe's target: changes on exec
    uint64_t start_time = 0;  // /proc/PID/stat's starttime: changes when the pid is reused
    bool operator==(const Image&) const = default;
  };
  struct Entry {
    std::shared_ptr<const ProcessInfo> info;
    Image image;
    std::unordered_set<std::string> comms;  // thread names seen under this image
    std::string last_comm;                  // the last one asked for: the per-event fast path
  };
  Image read_image(uint32_t pid) const;
  std::shared_ptr<const ProcessInfo> read_info(uint32_t pid, const Image& image) const;

  static constexpr size_t kMaxEntries = 65536;
  // A process with more thread names than this (thread pools naming each worker) stops
  // adding them: unknown names then cost a readlink and a small read each, still no flip.
  static constexpr size_t kMaxCommsPerProcess = 4096;
  std::string proc_root_;
  std::unordered_map<uint32_t, Entry> cache_;
};

}  // namespace weft::capture
