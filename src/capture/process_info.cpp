#include "capture/process_info.h"

#include <unistd.h>

namespace weft::capture {

std::shared_ptr<const ProcessInfo> ProcessResolver::resolve(uint32_t pid, const std::string& comm) {
  auto it = cache_.find(pid);
  if (it != cache_.end() && it->second.comm == comm) return it->second.info;

  auto info = std::make_shared<ProcessInfo>();
  info->pid = pid;
  std::string link = proc_root_ + "/" + std::to_string(pid) + "/exe";
  char target[4096];
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n > 0) info->exe.assign(target, static_cast<size_t>(n));
  remember(info, comm);
  return info;
}

void ProcessResolver::remember(std::shared_ptr<const ProcessInfo> info, const std::string& comm) {
  if (cache_.size() >= kMaxEntries) cache_.clear();  // bounded; entries are cheap to rebuild
  uint32_t pid = info->pid;
  cache_[pid] = Entry{std::move(info), comm};
}

std::shared_ptr<const ProcessInfo> ProcessResolver::known(uint32_t pid) const {
  auto it = cache_.find(pid);
  return it == cache_.end() ? nullptr : it->second.info;
}

}  // namespace weft::capture
