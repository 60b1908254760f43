// Spans -> traces. Parent links come from evidence, strongest first:
//  1. same node: a client span of one process and the server span of another for the same
//     bytes (reversed 4-tuple, same TCP sequence number of the request's first byte): the
//     server span is the client span's child;
//  2. the wire: a server span whose request carried trace context joins that trace under the
//     span the header names;
//  3. inference: a client call started on the thread serving a request, inside that request's
//     lifetime, is that server span's child (thread-per-request servers), unless what weft has
//     seen of the thread or process breaks that premise (inference_evidence.h) or several
//     server spans on the thread could hold it: then the link is left out and counted by reason.
// Spans wait `wait_ns` for late evidence; a trace leaves when all its spans have waited, or at
// once when both ends of its root call were seen here and nothing else can join it.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <queue>
#include <random>
#include <unordered_map>
#include <vector>

#include "trace/inference_evidence.h"
#include "trace/sampler.h"
#include "trace/span.h"

namespace weft::trace {

struct StitchConfig {
  uint64_t wait_ns = 2'000'000'000;
  // A client call made while a request it may belong to is still being served waits for that
  // request's span this long at most (it normally completes long before).
  uint64_t max_parent_wait_ns = 60'000'000'000;
  size_t max_pending_spans = 200'000;  // beyond this the oldest spans are resolved early
  // The feed calls request_started() for every request head it parses, in event order (as
  // TraceFeed does): a call made while no request is open on its thread then can never get an
  // inferred parent, so a settled trace may leave before its wait (settled_early).
  bool requests_announced = true;
  SamplerConfig sampler;
};

struct StitchCounters {
  uint64_t spans = 0;
  uint64_t traces_exported = 0;
  uint64_t traces_sampled_out = 0;
  uint64_t spans_sampled_out = 0;
  uint64_t linked_same_node = 0;
  uint64_t linked_wire = 0;
  uint64_t linked_inferred = 0;
  // Calls a server span on their thread could have held, left without a parent, by reason:
  uint64_t ambiguous_inference = 0;  // several server spans on the thread could hold the call
  uint64_t not_inferred_concurrent_requests =
      0;  // the process serves requests concurrently on one thread
  uint64_t not_inferred_thread_hopping = 0;  // its runtime moves work between threads (Go, async)
  uint64_t not_inferred_opaque_server_traffic =
      0;  // the thread serves connections weft cannot parse
  uint64_t not_inferred_calls_outside_requests = 0;  // the thread makes calls outside any request
  uint64_t not_inferred_event_loop_runtime =
      0;                                // the executable runs an event loop (Node.js, nginx)
  uint64_t start_bounded_by_child = 0;  // client spans whose start was moved to their child's start
  uint64_t client_spans_deferred =
      0;                      // the request carried context: the caller's span stands for it
  uint64_t conflicts = 0;     // wire context disagreeing with stronger evidence
  uint64_t forced_early = 0;  // resolved before their wait to stay within max_pending_spans
  // Traces that left before their wait: both ends of a call seen here and nothing left that
  // could join them (Stitcher::settled_early).
  uint64_t traces_settled_early = 0;
  uint64_t waited_for_parent = 0;    // client calls held past their wait for a request still open
  uint64_t traces_rate_limited = 0;  // roots the ratio kept but --max-traces-per-second refused
  // The ratio root traces are kept at now (the configured one, or what the rate limit allows).
  double sampling_ratio = 1.0;
};

struct Trace {
  std::vector<Span> spans;  // root first, then depth-first
};

using TraceSink = std::function<void(Trace&&)>;
// Completes a span of a kept trace before it leaves (SpanBuilder::describe: name, attributes):
// spans of traces sampled out are never described.
using SpanDescriber = std::function<void(Span&)>;

class Stitcher {
 public:
  Stitcher(StitchConfig config, TraceSink sink, SpanDescriber describe = {});

  // `now_ns`: the pipeline's current wall time (kernel time converted), not the span's.
  void add(Span&& span, uint64_t now_ns);
  // A request began arriving at `start_ns` (wall) on this thread of this process over
  // connection `cookie`: a server span will follow, and calls made on the thread meanwhile may
  // be its children.
  void request_started(uint32_t pid, uint32_t tid, uint64_t cookie, uint64_t start_ns);
  // The thread moved bytes on an accepted connection weft cannot parse.
  void opaque_server_io(uint32_t pid, uint32_t tid) { evidence_.opaque_server_io(pid, tid); }
  // The connection is gone (closed, idle, evicted): its unanswered requests are not in flight.
  void connection_finished(uint64_t cookie) { evidence_.connection_finished(cookie); }
  // These processes have exited: what inference knows of them is forgotten once none of their
  // spans can still be waiting (after wait_ns + max_parent_wait_ns).
  void processes_exited(const std::vector<uint32_t>& pids, uint64_t now_ns);
  // Resolves spans that have waited long enough and sends out complete traces.
  void flush_ready(uint64_t now_ns);
  // Resolves and sends everything (shutdown, end of a recording).
  void flush_all();

  const StitchCounters& counters() const { return counters_; }
  size_t pending() const { return live_; }

  // The same request bytes seen from either end: client endpoint, server endpoint, TCP
  // sequence number of the request's first byte.
  struct BytesKey {
    std::array<uint8_t, 16> client_addr;
    std::array<uint8_t, 16> server_addr;
    uint16_t client_port;
    uint16_t server_port;
    uint32_t seq;
    bool operator==(const BytesKey&) const = default;
  };
  struct BytesKeyHash {
    size_t operator()(const BytesKey& k) const;
  };

 private:
  struct Node {
    uint64_t id = 0;  // 0: a free slot
    Span span;
    uint64_t ready_at = 0;
    uint64_t arrived_at = 0;
    bool resolved = false;
    uint64_t parent = 0;  // node id, 0: none inside weft
    std::vector<uint64_t> children;
    BytesKey same_node_key{};
    uint64_t thread_key = 0;  // pid << 32 | tid: the serving thread (thread-per-request server
                              // spans) or the calling thread (client spans)
  };

  // Nodes live in reused slots: an id is the slot (low 32 bits, plus one) and a sequence
  // number (high 32 bits), so an id left behind in a queue never names the slot's next node.
  Node* find(uint64_t id);
  const Node* find(uint64_t id) const;
  Node& at(uint64_t id) { return *find(id); }
  uint64_t allocate();

  void link(uint64_t child, uint64_t parent);
  void link_same_node(uint64_t server, uint64_t client);
  void count_refusal(Distrust reason);
  bool parent_still_open(const Node& client, uint64_t now_ns);
  void resolve(uint64_t id);
  void infer_parent(uint64_t id, Node& client);
  bool server_on_thread_holds(uint64_t thread_key, uint64_t mono_ns);
  void try_flush_from(uint64_t id);
  std::vector<uint64_t> unresolved_calls(const Node& server) const;
  bool settled_early(const Node& client, uint64_t now_ns);
  void leave_if_settled(uint64_t client, uint64_t now_ns);
  bool subtree_resolved(uint64_t id) const;
  void emit(uint64_t root);
  void forget(uint64_t id);
  using ThreadQueues = std::unordered_map<uint64_t, std::deque<uint64_t>>;
  void sweep_idle_threads(ThreadQueues& by_thread);
  TraceId new_trace_id();
  SpanId new_span_id();

  StitchConfig config_;
  TraceSink sink_;
  SpanDescriber describe_;
  Sampler sampler_;
  uint64_t clock_ns_ = 0;  // the pipeline's latest wall time: the sampler's clock
  std::mt19937_64 rng_;
  uint32_t next_sequence_ = 1;
  std::vector<Node> slots_;
  // Free slots, lowest first: nodes gather at the front, so the slots a burst added are freed
  // from the back once it has passed (see forget) instead of being kept for good.
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> free_slots_;
  size_t live_ = 0;
  std::vector<uint64_t> order_;  // emit's scratch space, kept to avoid allocating per trace
  std::vector<uint64_t> stack_;
  std::deque<uint64_t> by_arrival_;
  std::unordered_map<BytesKey, uint64_t, BytesKeyHash> clients_by_bytes_;
  std::unordered_map<BytesKey, uint64_t, BytesKeyHash> servers_by_bytes_;
  // Server spans per serving thread, oldest first. Bounded: an event-loop thread serving
  // thousands of requests a second would otherwise make every inference a long scan.
  ThreadQueues servers_by_thread_;
  ThreadQueues clients_by_thread_;  // by the calling thread
  size_t sweep_servers_at_ = 4096;  // see sweep_idle_threads
  size_t sweep_clients_at_ = 4096;
  InferenceEvidence evidence_;
  struct Exited {
    uint64_t at_ns;
    std::vector<uint32_t> pids;
  };
  std::deque<Exited> exited_;  // oldest first
  StitchCounters counters_;
};

}  // namespace weft::trace
