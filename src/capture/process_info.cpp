#include "capture/process_info.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "capture/executable_runtime.h"

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

// Field 22 of /proc/PID/stat, the start time in clock ticks after boot; 0 when unreadable.
// The comm (field 2) may hold spaces and parentheses, so fields are counted after its last ')'.
uint64_t start_time(const std::string& stat) {
  size_t at = stat.rfind(')');
  if (at == std::string::npos) return 0;
  for (int field = 2; field < 22; ++field) {
    at = stat.find(' ', at + 1);
    if (at == std::string::npos) return 0;
  }
  return std::strtoull(stat.c_str() + at + 1, nullptr, 10);
}

}  // namespace

ProcessResolver::Image ProcessResolver::read_image(uint32_t pid) const {
  Image image;
  std::string dir = proc_root_ + "/" + std::to_string(pid);
  char target[4096];
  ssize_t n = readlink((dir + "/exe").c_str(), target, sizeof(target) - 1);
  if (n > 0) image.exe.assign(target, static_cast<size_t>(n));
  // An executable replaced on disk (a package upgrade) is still the image the process runs.
  constexpr std::string_view kDeleted = " (deleted)";
  if (image.exe.ends_with(kDeleted)) image.exe.resize(image.exe.size() - kDeleted.size());
  image.start_time = start_time(read_proc_file(dir + "/stat", 1024));
  return image;
}

std::shared_ptr<const ProcessInfo> ProcessResolver::read_info(uint32_t pid,
                                                              const Image& image) const {
  auto info = std::make_shared<ProcessInfo>();
  info->pid = pid;
  info->exe = image.exe;
  std::string dir = proc_root_ + "/" + std::to_string(pid);
  info->service_name = service_name_from_environ(read_proc_file(dir + "/environ", 256 * 1024));
  // Through the magic link, so an executable inside a container's mount namespace is read.
  if (!image.exe.empty()) info->runtime = executable_runtime(dir + "/exe");
  info->command_line = read_proc_file(dir + "/cmdline", 4096);
  while (!info->command_line.empty() && info->command_line.back() == '\0')
    info->command_line.pop_back();
  std::replace(info->command_line.begin(), info->command_line.end(), '\0', ' ');
  return info;
}

std::shared_ptr<const ProcessInfo> ProcessResolver::resolve(uint32_t pid, const std::string& comm) {
  auto it = cache_.find(pid);
  // The hot path: a thread name already seen for this process. Thread names are per thread,
  // so a new one is usually just another thread of the same process; exec and pid reuse are
  // told apart by the executable and the start time, not by the name.
  if (it != cache_.end() && it->second.last_comm == comm) return it->second.info;  // no hashing
  if (it != cache_.end() && it->second.comms.contains(comm)) {
    it->second.last_comm = comm;
    return it->second.info;
  }
  Image image = read_image(pid);
  if (it != cache_.end()) {
    Entry& e = it->second;
    // A process gone before weft looked (nothing readable) keeps what weft knew of it.
    bool gone = image.exe.empty() && image.start_time == 0;
    if (gone || image == e.image) {
      if (e.comms.size() < kMaxCommsPerProcess) e.comms.insert(comm);
      e.last_comm = comm;
      return e.info;
    }
  }
  auto info = read_info(pid, image);
  if (cache_.size() >= kMaxEntries) cache_.clear();  // bounded; entries are cheap to rebuild
  cache_[pid] = Entry{info, image, {comm}, comm};
  return info;
}

void ProcessResolver::remember(std::shared_ptr<const ProcessInfo> info, const std::string& comm) {
  if (cache_.size() >= kMaxEntries) cache_.clear();
  uint32_t pid = info->pid;
  cache_[pid] = Entry{std::move(info), {}, {comm}, comm};
}

std::vector<uint32_t> ProcessResolver::forget_exited() {
  std::vector<uint32_t> exited;
  for (auto it = cache_.begin(); it != cache_.end();) {
    // Only ENOENT says the process is gone (a zombie still has its directory until reaped).
    std::string dir = proc_root_ + "/" + std::to_string(it->first);
    if (access(dir.c_str(), F_OK) != 0 && errno == ENOENT) {
      exited.push_back(it->first);
      it = cache_.erase(it);
    } else {
      ++it;
    }
  }
  return exited;
}

std::shared_ptr<const ProcessInfo> ProcessResolver::known(uint32_t pid) const {
  auto it = cache_.find(pid);
  return it == cache_.end() ? nullptr : it->second.info;
}

}  // namespace weft::capture
