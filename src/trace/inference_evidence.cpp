#include "trace/inference_evidence.h"

#include <algorithm>
#include <limits>
#include <unordered_set>

namespace weft::trace {
namespace {

constexpr uint64_t kOpen = std::numeric_limits<uint64_t>::max();
// A request head never followed by its response (the server died, weft lost the bytes) stays
// "open" this long at most, so it cannot make a thread-per-request thread look concurrent
// forever.
constexpr uint64_t kMaxOpenAgeNs = 60'000'000'000;
constexpr size_t kMaxOpenPerThread = 64;
constexpr size_t kRecentPerThread = 8;

uint64_t thread_key(uint32_t pid, uint32_t tid) {
  return static_cast<uint64_t>(pid) << 32 | tid;
}

// Both tids known and different.
bool moved(uint32_t a, uint32_t b) {
  return a != 0 && b != 0 && a != b;
}

}  // namespace

const char* to_string(Distrust reason) {
  switch (reason) {
    case Distrust::None:
      return "none";
    case Distrust::ConcurrentRequests:
      return "concurrent-requests";
    case Distrust::ThreadHopping:
      return "thread-hopping";
    case Distrust::OpaqueServerTraffic:
      return "opaque-server-traffic";
    case Distrust::CallsOutsideRequests:
      return "calls-outside-requests";
    case Distrust::EventLoopRuntime:
      return "event-loop-runtime";
  }
  return "?";
}

InferenceEvidence::ThreadState& InferenceEvidence::thread(uint32_t pid, uint32_t tid) {
  if (threads_.size() >= thread_limit_) {
    // Forget threads with nothing to remember; a verdict is never dropped to make room.
    for (auto it = threads_.begin();
         it != threads_.end() && threads_.size() >= thread_limit_ / 2;) {
      if (it->second.distrust == Distrust::None && it->second.open.empty())
        it = threads_.erase(it);
      else
        ++it;
    }
    // Mostly verdicts: let the table grow rather than rescan it on every new thread.
    if (threads_.size() >= thread_limit_ / 2) thread_limit_ *= 2;
  }
  return threads_[thread_key(pid, tid)];
}

void InferenceEvidence::distrust_thread(uint32_t pid, uint32_t tid, Distrust reason) {
  ThreadState& t = thread(pid, tid);
  if (t.distrust == Distrust::None) t.distrust = reason;
}

void InferenceEvidence::distrust_process(uint32_t pid, Distrust reason) {
  processes_.try_emplace(pid, reason);
}

bool InferenceEvidence::overlaps_other_connection(const ThreadState& t, const Window& w) const {
  auto overlaps = [&](const Window& o) {
    return o.cookie != w.cookie && o.start_ns < w.end_ns && w.start_ns < o.end_ns;
  };
  return std::any_of(t.open.begin(), t.open.end(), overlaps) ||
         std::any_of(t.recent.begin(), t.recent.end(), overlaps);
}

void InferenceEvidence::request_started(uint32_t pid, uint32_t tid, uint64_t cookie,
                                        uint64_t start_ns) {
  if (tid == 0) return;
  ThreadState& t = thread(pid, tid);
  std::erase_if(t.open,
                [start_ns](const Window& o) { return o.start_ns + kMaxOpenAgeNs < start_ns; });
  Window w{cookie, start_ns, kOpen};
  if (overlaps_other_connection(t, w)) distrust_process(pid, Distrust::ConcurrentRequests);
  if (t.open.size() >= kMaxOpenPerThread) t.open.erase(t.open.begin());
  t.open.push_back(w);
  auto& threads = open_threads_[cookie];
  uint64_t key = thread_key(pid, tid);
  if (std::find(threads.begin(), threads.end(), key) == threads.end()) threads.push_back(key);
}

void InferenceEvidence::connection_finished(uint64_t cookie) {
  auto it = open_threads_.find(cookie);
  if (it == open_threads_.end()) return;
  for (uint64_t key : it->second)
    if (auto t = threads_.find(key); t != threads_.end())
      std::erase_if(t->second.open, [cookie](const Window& o) { return o.cookie == cookie; });
  open_threads_.erase(it);
}

void InferenceEvidence::server_exchange(const Exchange& ex, uint64_t start_ns, uint64_t end_ns) {
  uint32_t pid = ex.connection->pid;
  if (moved(ex.request.start_tid, ex.request.end_tid) ||
      moved(ex.request.end_tid, ex.response.start_tid))
    distrust_process(pid, Distrust::ThreadHopping);
  if (ex.request.start_tid == 0) return;
  ThreadState& t = thread(pid, ex.request.start_tid);
  uint64_t cookie = ex.connection->cookie;
  // No longer open: its own head, and any earlier head of its connection (answers come in
  // order, so an earlier one still open lost its response to a gap), else the oldest of its
  // connection.
  size_t before = t.open.size();
  std::erase_if(t.open,
                [&](const Window& o) { return o.cookie == cookie && o.start_ns <= start_ns; });
  if (t.open.size() == before) {
    auto oldest = std::find_if(t.open.begin(), t.open.end(),
                               [&](const Window& o) { return o.cookie == cookie; });
    if (oldest != t.open.end()) t.open.erase(oldest);
  }
  Window w{cookie, start_ns, std::max(start_ns, end_ns)};
  if (overlaps_other_connection(t, w)) distrust_process(pid, Distrust::ConcurrentRequests);
  if (t.recent.size() >= kRecentPerThread) t.recent.erase(t.recent.begin());
  t.recent.push_back(w);
}

void InferenceEvidence::client_exchange(const Exchange& ex) {
  if (moved(ex.request.start_tid, ex.request.end_tid) ||
      moved(ex.request.end_tid, ex.response.start_tid))
    distrust_process(ex.connection->pid, Distrust::ThreadHopping);
}

void InferenceEvidence::call_outside_requests(uint32_t pid, uint32_t tid) {
  if (tid != 0) distrust_thread(pid, tid, Distrust::CallsOutsideRequests);
}

void InferenceEvidence::opaque_server_io(uint32_t pid, uint32_t tid) {
  if (tid != 0) distrust_thread(pid, tid, Distrust::OpaqueServerTraffic);
}

Distrust InferenceEvidence::judge(uint32_t pid, uint32_t tid, const ProcessInfo* process) const {
  if (process && !process->runtime.empty())
    return process->runtime == "go" ? Distrust::ThreadHopping : Distrust::EventLoopRuntime;
  if (auto p = processes_.find(pid); p != processes_.end()) return p->second;
  if (auto t = threads_.find(thread_key(pid, tid)); t != threads_.end()) return t->second.distrust;
  return Distrust::None;
}

bool InferenceEvidence::held_by_request(uint32_t pid, uint32_t tid, uint64_t at) const {
  auto it = threads_.find(thread_key(pid, tid));
  if (it == threads_.end()) return false;
  auto holds = [at](const Window& w) { return w.start_ns <= at && at <= w.end_ns; };
  const ThreadState& t = it->second;
  return std::any_of(t.open.begin(), t.open.end(), holds) ||
         std::any_of(t.recent.begin(), t.recent.end(), holds);
}

void InferenceEvidence::forget_processes(const std::vector<uint32_t>& pids) {
  if (pids.empty()) return;
  std::unordered_set<uint32_t> gone(pids.begin(), pids.end());
  for (uint32_t pid : pids) processes_.erase(pid);
  std::erase_if(threads_, [&](const auto& entry) {
    return gone.contains(static_cast<uint32_t>(entry.first >> 32));
  });
}

bool InferenceEvidence::open_request_before(uint32_t pid, uint32_t tid, uint64_t at) const {
  auto it = threads_.find(thread_key(pid, tid));
  if (it == threads_.end()) return false;
  const auto& open = it->second.open;
  return std::any_of(open.begin(), open.end(), [at](const Window& w) {
    return w.start_ns <= at && at < w.start_ns + kMaxOpenAgeNs;
  });
}

}  // namespace weft::trace
