#include "capture/process_info.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

namespace weft::capture {
namespace {

// NUL-separated /proc file (environ, cmdline), at most `limit` bytes.
std::string read_proc_file(const std::string& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  std::string data;
  data.resize(limit);
  in.read(data.data(), static_cast<std::streamsize>(limit));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

// Only this one variable is read out of the environment: it may hold secrets otherwise.
std::string service_name_from_environ(const std::string& environ) {
  constexpr std::string_view kKey = "OTEL_SERVICE_NAME=";
  for (size_t at = 0; at < environ.size();) {
    size_t end = environ.find('\0', at);
    if (end == std::string::npos) end = environ.size();
    std::string_view entry(environ.data() + at, end - at);
    if (entry.starts_with(kKey)) return std::string(entry.substr(kKey.size()));
    at = end + 1;
  }
  return {};
}

}  // namespace

std::shared_ptr<const ProcessInfo> ProcessResolver::resolve(uint32_t pid, const std::string& comm) {
  auto it = cache_.find(pid);
  if (it != cache_.end() && it->second.comm == comm) return it->second.info;

  auto info = std::make_shared<ProcessInfo>();
  info->pid = pid;
  std::string link = proc_root_ + "/" + std::to_string(pid) + "/exe";
  char target[4096];
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n > 0) info->exe.assign(target, static_cast<size_t>(n));
  std::string dir = proc_root_ + "/" + std::to_string(pid);
  info->service_name = service_name_from_environ(read_proc_file(dir + "/environ", 256 * 1024));
  info->command_line = read_proc_file(dir + "/cmdline", 4096);
  while (!info->command_line.empty() && info->command_line.back() == '\0') info->command_line.pop_back();
  std::replace(info->command_line.begin(), info->command_line.end(), '\0', ' ');
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
