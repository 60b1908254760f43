// What weft has seen of each process and thread that decides whether "a call made on this
// thread while it served this request" is evidence that the request caused the call.
//
// The premise of thread inference is thread-per-request: while a thread serves a request it
// does nothing else. weft cannot prove the premise, but it can see it broken, and once it has,
// it never infers on that thread (or process) again:
//  - concurrent requests: one thread of the process had requests of two connections in flight
//    at once, so the process is an event loop and a call may belong to any of them or to
//    none (the process-wide verdict: event loops run every thread the same way);
//  - thread hopping: a request was read on one thread and answered on another, or a call sent
//    on one thread and its response read on another, or the executable is a Go program; the
//    runtime moves work between threads, so the thread says nothing about the request;
//  - opaque server traffic: the thread read or wrote connections it accepted whose protocol
//    weft cannot parse (TLS ciphertext, unknown protocols): requests weft cannot see;
//  - calls outside requests: the thread made a call while it served no visible request
//    (timers, queue consumers): it has triggers weft cannot see;
//  - event-loop runtime: the executable runs an event loop (Node.js's libuv, nginx, libevent,
//    libev), which runs timers and other connections' work on the thread serving a request.
//    A timer whose calls always land inside some request looks, syscall by syscall, exactly
//    like a handler making those calls, so only the runtime tells them apart.
// Verdicts only accumulate; pids and tids are not reused for a long time.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "weft/exchange.h"

namespace weft::trace {

enum class Distrust : uint8_t {
  None = 0,
  ConcurrentRequests,
  ThreadHopping,
  OpaqueServerTraffic,
  CallsOutsideRequests,
  EventLoopRuntime,
};

const char* to_string(Distrust reason);

class InferenceEvidence {
 public:
  // A request head arrived on (pid, tid) over connection `cookie` at `start_ns` (wall).
  void request_started(uint32_t pid, uint32_t tid, uint64_t cookie, uint64_t start_ns);
  // A finished server exchange (its times converted to wall time by the caller).
  void server_exchange(const Exchange& ex, uint64_t start_ns, uint64_t end_ns);
  // A finished client exchange.
  void client_exchange(const Exchange& ex);
  // The thread made a call that no request it served (finished or still open) held.
  void call_outside_requests(uint32_t pid, uint32_t tid);
  // The connection is gone: its requests still open will never be answered.
  void connection_finished(uint64_t cookie);
  // The thread moved bytes on an accepted connection weft cannot parse.
  void opaque_server_io(uint32_t pid, uint32_t tid);

  // Why a call made on (pid, tid) may not be inferred to belong to a request on that thread.
  Distrust judge(uint32_t pid, uint32_t tid, const ProcessInfo* process) const;
  // A request read on (pid, tid) that is open or among the last finished held `at` (wall).
  bool held_by_request(uint32_t pid, uint32_t tid, uint64_t at) const;
  // A request read on (pid, tid) that began at or before `t` (wall) is still being served.
  bool open_request_before(uint32_t pid, uint32_t tid, uint64_t t) const;

  // These processes have exited and none of their spans is still waiting: their threads'
  // state and verdicts go (a verdict kept for a dead pid would only misjudge its next owner).
  void forget_processes(const std::vector<uint32_t>& pids);

  size_t threads() const { return threads_.size(); }
  size_t processes() const { return processes_.size(); }

 private:
  struct Window {
    uint64_t cookie = 0;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;  // UINT64_MAX while open
  };
  struct ThreadState {
    Distrust distrust = Distrust::None;
    // Vectors, not deques: a new thread (one per connection in Python's threading servers)
    // must cost no allocation until it serves something, and both stay a few entries long.
    std::vector<Window> open;    // requests being served, oldest first
    std::vector<Window> recent;  // the last finished ones, oldest first
  };

  ThreadState& thread(uint32_t pid, uint32_t tid);
  void distrust_thread(uint32_t pid, uint32_t tid, Distrust reason);
  void distrust_process(uint32_t pid, Distrust reason);
  bool overlaps_other_connection(const ThreadState& t, const Window& w) const;

  std::unordered_map<uint64_t, ThreadState> threads_;  // pid << 32 | tid
  size_t thread_limit_ = 1u << 18;                     // beyond it, threads without verdict go
  std::unordered_map<uint32_t, Distrust> processes_;
  // The threads that read request heads of each live connection, until it is finished.
  std::unordered_map<uint64_t, std::vector<uint64_t>> open_threads_;
};

}  // namespace weft::trace
