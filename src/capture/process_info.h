#pragma once

#include <memory>
#include <string>
#include <unordered_map>

#include "weft/event.h"

namespace weft::capture {

// Resolves the executable of the processes events come from, once per process image.
class ProcessResolver {
 public:
  explicit ProcessResolver(std::string proc_root = "/proc") : proc_root_(std::move(proc_root)) {}

  // The process behind pid, re-resolved when its comm changed (an exec since last time).
  std::shared_ptr<const ProcessInfo> resolve(uint32_t pid, const std::string& comm);
  // Records what a recording says about a process, so replay needs no /proc.
  void remember(std::shared_ptr<const ProcessInfo> info, const std::string& comm);
  // The info for pid if already known, without touching /proc.
  std::shared_ptr<const ProcessInfo> known(uint32_t pid) const;

 private:
  struct Entry {
    std::shared_ptr<const ProcessInfo> info;
    std::string comm;
  };
  static constexpr size_t kMaxEntries = 65536;
  std::string proc_root_;
  std::unordered_map<uint32_t, Entry> cache_;
};

}  // namespace weft::capture
