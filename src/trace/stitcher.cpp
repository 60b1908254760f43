#include "trace/stitcher.h"

#include <algorithm>
#include <cstring>

namespace weft::trace {
namespace {

constexpr size_t kMaxServersPerThread = 1024;
constexpr size_t kMinThreadsBeforeSweep = 4096;

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

}  // namespace

size_t Stitcher::BytesKeyHash::operator()(const BytesKey& k) const {
  uint64_t h = mix(load64(k.client_addr.data()) ^ load64(k.client_addr.data() + 8) * 3);
  h = mix(h ^ load64(k.server_addr.data()) ^ load64(k.server_addr.data() + 8) * 5);
  return mix(h ^ (uint64_t{k.client_port} << 48 | uint64_t{k.server_port} << 32 | k.seq));
}

namespace {

// TLS plaintext a library returned from its buffer, with no syscall in the call, has no
// sequence number (0): its request cannot be matched to the other end's bytes.
bool same_node_evidence(const Exchange& ex) {
  return !ex.connection->tls || ex.request.tcp_seq != 0;
}

Stitcher::BytesKey bytes_key(const Endpoint& client, const Endpoint& server, uint32_t seq) {
  return {client.addr, server.addr, client.port, server.port, seq};
}

}  // namespace

Stitcher::Stitcher(StitchConfig config, TraceSink sink, SpanDescriber describe)
    : config_(std::move(config)),
      sink_(std::move(sink)),
      describe_(std::move(describe)),
      sampler_(config_.sampler),
      rng_(std::random_device{}()) {
  counters_.sampling_ratio = sampler_.effective_ratio();
}

Stitcher::Node* Stitcher::find(uint64_t id) {
  uint32_t slot = static_cast<uint32_t>(id) - 1;
  if (slot >= slots_.size() || slots_[slot].id != id || id == 0) return nullptr;
  return &slots_[slot];
}

const Stitcher::Node* Stitcher::find(uint64_t id) const {
  return const_cast<Stitcher*>(this)->find(id);
}

// Invalidates references to nodes when the slots grow: take them after this.
uint64_t Stitcher::allocate() {
  uint32_t slot;
  // Entries past the end were trimmed away with the slots they name.
  while (!free_slots_.empty() && free_slots_.top() >= slots_.size()) free_slots_.pop();
  if (!free_slots_.empty()) {
    slot = free_slots_.top();
    free_slots_.pop();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  uint32_t sequence = next_sequence_++;
  if (next_sequence_ == 0) next_sequence_ = 1;
  uint64_t id = uint64_t{sequence} << 32 | (slot + 1);
  slots_[slot].id = id;
  ++live_;
  return id;
}

TraceId Stitcher::new_trace_id() {
  TraceId id{};
  do {
    uint64_t a = rng_(), b = rng_();
    std::memcpy(id.data(), &a, 8);
    std::memcpy(id.data() + 8, &b, 8);
  } while (is_zero(id.data(), id.size()));
  return id;
}

SpanId Stitcher::new_span_id() {
  SpanId id{};
  do {
    uint64_t a = rng_();
    std::memcpy(id.data(), &a, 8);
  } while (is_zero(id.data(), id.size()));
  return id;
}

void Stitcher::link(uint64_t child, uint64_t parent) {
  at(child).parent = parent;
  at(parent).children.push_back(child);
}

// The kernel reports a send when it returns: a request written by one long blocking send is
// stamped with its end, after the server on this node has already read its first bytes. The
// true start lies before the child's, so the child's start bounds it, and the span says so.
void Stitcher::link_same_node(uint64_t server, uint64_t client) {
  link(server, client);
  ++counters_.linked_same_node;
  Span& call = at(client).span;
  const Span& child = at(server).span;
  if (call.start_ns <= child.start_ns) return;
  call.start_ns = child.start_ns;
  call.attributes.push_back({"weft.start_bounded_by_child", true});
  ++counters_.start_bounded_by_child;
}

void Stitcher::count_refusal(Distrust reason) {
  switch (reason) {
    case Distrust::None:
      break;
    case Distrust::ConcurrentRequests:
      ++counters_.not_inferred_concurrent_requests;
      break;
    case Distrust::ThreadHopping:
      ++counters_.not_inferred_thread_hopping;
      break;
    case Distrust::OpaqueServerTraffic:
      ++counters_.not_inferred_opaque_server_traffic;
      break;
    case Distrust::CallsOutsideRequests:
      ++counters_.not_inferred_calls_outside_requests;
      break;
    case Distrust::EventLoopRuntime:
      ++counters_.not_inferred_event_loop_runtime;
      break;
  }
}

void Stitcher::add(Span&& span, uint64_t now_ns) {
  ++counters_.spans;
  clock_ns_ = std::max(clock_ns_, now_ns);
  const Exchange& ex = *span.exchange;
  const ConnectionInfo& c = *ex.connection;
  bool client = span.kind == SpanKind::Client;
  if (client && span.wire) {
    // The request already carries context: the span its header names is this call in the
    // trace (an instrumented caller, or a proxy forwarding it). A second span for the same
    // call would either duplicate it or break the tree the wire describes.
    ++counters_.client_spans_deferred;
    return;
  }

  uint64_t id = allocate();
  Node& node = at(id);
  node.span = std::move(span);
  node.span.span_id = new_span_id();
  node.ready_at = now_ns + config_.wait_ns;
  node.arrived_at = now_ns;
  by_arrival_.push_back(id);

  if (client) {
    node.thread_key = static_cast<uint64_t>(c.pid) << 32 | ex.request.start_tid;
    auto& calls = clients_by_thread_[node.thread_key];
    if (calls.size() >= kMaxServersPerThread) calls.pop_front();
    calls.push_back(id);
    node.same_node_key = bytes_key(c.local, c.remote, ex.request.tcp_seq);
    bool linked = false;
    if (same_node_evidence(ex)) {
      clients_by_bytes_[node.same_node_key] = id;
      auto server = servers_by_bytes_.find(node.same_node_key);
      linked = server != servers_by_bytes_.end() && at(server->second).parent == 0 &&
               !at(server->second).resolved;
      if (linked) link_same_node(server->second, id);
    }
    evidence_.client_exchange(ex);
    if (linked) leave_if_settled(id, now_ns);
  } else {
    node.same_node_key = bytes_key(c.remote, c.local, ex.request.tcp_seq);
    uint64_t client_id = 0;
    if (same_node_evidence(ex)) {
      servers_by_bytes_[node.same_node_key] = id;
      auto peer = clients_by_bytes_.find(node.same_node_key);
      client_id = peer != clients_by_bytes_.end() ? peer->second : 0;
      if (client_id) link_same_node(id, client_id);
    }
    evidence_.server_exchange(ex, node.span.start_ns, node.span.end_ns);
    // Thread-per-request: one thread read the request and wrote the response.
    if (ex.request.end_tid != 0 && ex.request.end_tid == ex.response.start_tid) {
      node.thread_key = static_cast<uint64_t>(c.pid) << 32 | ex.request.end_tid;
      auto& on_thread = servers_by_thread_[node.thread_key];
      if (on_thread.size() >= kMaxServersPerThread) on_thread.pop_front();
      on_thread.push_back(id);
    }
    if (client_id) leave_if_settled(client_id, now_ns);
  }

  while (live_ > config_.max_pending_spans && !by_arrival_.empty()) {
    uint64_t oldest = by_arrival_.front();
    by_arrival_.pop_front();
    if (!find(oldest)) continue;
    ++counters_.forced_early;
    resolve(oldest);
    try_flush_from(oldest);
  }
}

// The server exchange was between reading the request and answering when the call began:
// the window inference links a call into.
static bool holds_call(const Exchange& server, uint64_t call_start_ns) {
  return server.request.start_ns <= call_start_ns && call_start_ns <= server.response.start_ns;
}

// A server span waiting on `thread_key` was being served (read to last write) at `mono_ns`.
bool Stitcher::server_on_thread_holds(uint64_t thread_key, uint64_t mono_ns) {
  auto it = servers_by_thread_.find(thread_key);
  if (it == servers_by_thread_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(), [&](uint64_t sid) {
    const Node* server = find(sid);
    if (!server) return false;  // gone already
    const Exchange& s = *server->span.exchange;
    return s.request.start_ns <= mono_ns && mono_ns <= s.response.end_ns;
  });
}

// The server span on the client call's thread whose lifetime holds the call's start.
void Stitcher::infer_parent(uint64_t id, Node& client) {
  const Exchange& ex = *client.span.exchange;
  uint64_t key = static_cast<uint64_t>(ex.connection->pid) << 32 | ex.request.start_tid;
  uint64_t found = 0;
  int candidates = 0;
  if (auto it = servers_by_thread_.find(key); it != servers_by_thread_.end()) {
    // Newest first: the enclosing request completed after the call, so it is near the end; two
    // candidates already make the answer "ambiguous".
    const auto& on_thread = it->second;
    for (auto sid = on_thread.rbegin(); sid != on_thread.rend() && candidates < 2; ++sid) {
      const Node* server = find(*sid);
      if (!server) continue;  // gone already
      if (holds_call(*server->span.exchange, ex.request.start_ns)) {
        found = *sid;
        ++candidates;
      }
    }
  }
  if (candidates == 0) {
    // Every request this thread served that began before the call has arrived by now (or it
    // would still be open and the call still waiting): none held it.
    uint32_t pid = ex.connection->pid, tid = ex.request.start_tid;
    if (!server_on_thread_holds(key, ex.request.start_ns) &&
        !evidence_.held_by_request(pid, tid, ex.request.start_ns + ex.connection->wall_offset_ns))
      evidence_.call_outside_requests(pid, tid);
    return;
  }
  Distrust distrust =
      evidence_.judge(ex.connection->pid, ex.request.start_tid, ex.connection->process.get());
  if (distrust != Distrust::None) {
    count_refusal(distrust);
  } else if (candidates > 1) {
    ++counters_.ambiguous_inference;
  } else {
    link(id, found);
    ++counters_.linked_inferred;
  }
}

void Stitcher::resolve(uint64_t id) {
  Node& node = at(id);
  if (node.resolved) return;
  if (node.span.kind == SpanKind::Server) {
    // Calls this server made must find their parent before it leaves: they normally resolve
    // first (they complete first), but not when exchanges arrive out of completion order.
    for (uint64_t cid : unresolved_calls(node)) resolve(cid);
  }
  node.resolved = true;
  if (node.span.kind == SpanKind::Client) {
    if (node.parent == 0) infer_parent(id, node);
  } else if (node.span.wire && node.parent == 0) {
    ++counters_.linked_wire;
  }
}

// Unresolved client calls made on a thread-per-request server span's thread while it served.
std::vector<uint64_t> Stitcher::unresolved_calls(const Node& server) const {
  std::vector<uint64_t> calls;
  auto on_thread =
      server.thread_key ? clients_by_thread_.find(server.thread_key) : clients_by_thread_.end();
  if (on_thread == clients_by_thread_.end()) return calls;
  const Exchange& ex = *server.span.exchange;
  for (uint64_t cid : on_thread->second) {
    const Node* c = find(cid);
    if (c && !c->resolved && holds_call(ex, c->span.exchange->request.start_ns))
      calls.push_back(cid);
  }
  return calls;
}

// A client call whose server span on this node has arrived (both ends seen), when nothing can
// join its trace any more: no request open on the calling thread could hold the call, no server
// span that arrived could, and the server span made no call that still needs its parent. Its
// trace then leaves at once instead of after the wait. Only calls that would stay roots leave
// early: a call that may get an inferred parent keeps the whole wait, so this decides no link
// sooner than waiting would.
bool Stitcher::settled_early(const Node& client, uint64_t now_ns) {
  if (!config_.requests_announced) return false;
  if (client.resolved || client.parent != 0 || client.children.empty()) return false;
  if (parent_still_open(client, now_ns)) return false;
  const Exchange& ex = *client.span.exchange;
  if (auto it = servers_by_thread_.find(client.thread_key); it != servers_by_thread_.end())
    for (uint64_t sid : it->second)
      if (const Node* server = find(sid);
          server && holds_call(*server->span.exchange, ex.request.start_ns))
        return false;
  return std::all_of(client.children.begin(), client.children.end(), [this](uint64_t child) {
    const Node& server = *find(child);
    return server.span.kind == SpanKind::Server && server.children.empty() &&
           unresolved_calls(server).empty();
  });
}

void Stitcher::leave_if_settled(uint64_t client, uint64_t now_ns) {
  if (!settled_early(at(client), now_ns)) return;
  for (uint64_t child : at(client).children) resolve(child);  // trivial: no calls of their own
  resolve(client);
  ++counters_.traces_settled_early;
  try_flush_from(client);
}

bool Stitcher::subtree_resolved(uint64_t id) const {
  const Node& node = *find(id);
  if (!node.resolved) return false;
  return std::all_of(node.children.begin(), node.children.end(),
                     [this](uint64_t c) { return subtree_resolved(c); });
}

void Stitcher::try_flush_from(uint64_t id) {
  if (!find(id)) return;
  uint64_t root = id;
  while (at(root).parent != 0) root = at(root).parent;
  if (subtree_resolved(root)) emit(root);
}

void Stitcher::request_started(uint32_t pid, uint32_t tid, uint64_t cookie, uint64_t start_ns) {
  evidence_.request_started(pid, tid, cookie, start_ns);
}

// A client call with no parent yet, made on a thread that is still serving a request that
// began before the call: that request's server span has not completed, so wait for it.
bool Stitcher::parent_still_open(const Node& client, uint64_t now_ns) {
  if (client.span.kind != SpanKind::Client || client.parent != 0) return false;
  if (now_ns - client.arrived_at >= config_.max_parent_wait_ns) return false;
  const Exchange& ex = *client.span.exchange;
  return evidence_.open_request_before(ex.connection->pid, ex.request.start_tid,
                                       client.span.start_ns);
}

void Stitcher::processes_exited(const std::vector<uint32_t>& pids, uint64_t now_ns) {
  if (!pids.empty()) exited_.push_back({now_ns, pids});
}

void Stitcher::flush_ready(uint64_t now_ns) {
  if (now_ns != UINT64_MAX) {
    clock_ns_ = std::max(clock_ns_, now_ns);
    sampler_.advance(clock_ns_);
    counters_.sampling_ratio = sampler_.effective_ratio();
  }
  uint64_t longest_wait = config_.wait_ns + config_.max_parent_wait_ns;
  while (!exited_.empty() && exited_.front().at_ns + longest_wait < now_ns) {
    evidence_.forget_processes(exited_.front().pids);
    exited_.pop_front();
  }
  while (!by_arrival_.empty()) {
    uint64_t id = by_arrival_.front();
    Node* node = find(id);
    if (node && node->ready_at > now_ns) return;
    by_arrival_.pop_front();
    if (!node) continue;
    if (parent_still_open(*node, now_ns)) {
      ++counters_.waited_for_parent;
      node->ready_at = now_ns + config_.wait_ns;
      by_arrival_.push_back(id);
      continue;
    }
    resolve(id);
    try_flush_from(id);
  }
}

// At "the end of time" every wait has run out, including waits for open requests.
void Stitcher::flush_all() {
  flush_ready(UINT64_MAX);
}

void Stitcher::emit(uint64_t root_id) {
  // Depth-first from the root (pre-order): ids, parents and the trace id flow down.
  order_.clear();
  stack_.assign(1, root_id);
  while (!stack_.empty()) {
    uint64_t id = stack_.back();
    stack_.pop_back();
    order_.push_back(id);
    const auto& kids = at(id).children;
    for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack_.push_back(*it);
  }

  Span& root = at(root_id).span;
  if (root.wire) {
    root.trace_id = root.wire->trace_id;
    root.parent_span_id = root.wire->span_id;
    root.tracestate = root.wire->tracestate;
  } else {
    root.trace_id = new_trace_id();
  }
  bool any_error = false;
  uint64_t slowest = 0;
  for (uint64_t id : order_) {
    Node& n = at(id);
    if (n.parent) {
      const Span& parent = at(n.parent).span;
      n.span.trace_id = parent.trace_id;
      n.span.parent_span_id = parent.span_id;
      n.span.tracestate = parent.tracestate;
      // Same-node evidence outranks a header naming another trace; the header loses.
      if (n.span.wire && n.span.wire->trace_id != n.span.trace_id) ++counters_.conflicts;
    }
    any_error |= n.span.status == StatusCode::Error;
    slowest = std::max(slowest, n.span.end_ns - n.span.start_ns);
  }
  uint64_t limited_before = sampler_.rate_limited();
  SampleDecision decision = sampler_.decide(root, any_error, slowest, clock_ns_);
  counters_.traces_rate_limited += sampler_.rate_limited() - limited_before;
  counters_.sampling_ratio = sampler_.effective_ratio();
  if (!decision.keep) {
    // Never described: a span sampled out costs no attributes.
    for (uint64_t id : order_) forget(id);
    ++counters_.traces_sampled_out;
    counters_.spans_sampled_out += order_.size();
    return;
  }
  Trace trace;
  trace.spans.reserve(order_.size());
  for (uint64_t id : order_) {
    Span& span = at(id).span;
    if (describe_) describe_(span);
    trace.spans.push_back(std::move(span));
    forget(id);
  }
  ++counters_.traces_exported;
  sink_(std::move(trace));
}

void Stitcher::forget(uint64_t id) {
  Node* found = find(id);
  if (!found) return;
  Node& n = *found;
  auto& index = n.span.kind == SpanKind::Client ? clients_by_bytes_ : servers_by_bytes_;
  if (auto k = index.find(n.same_node_key); k != index.end() && k->second == id) index.erase(k);
  auto& by_thread = n.span.kind == SpanKind::Client ? clients_by_thread_ : servers_by_thread_;
  uint64_t thread_key = n.thread_key;
  // The slot keeps its vectors' capacity for the next node.
  n.id = 0;
  n.span = Span{};
  n.resolved = false;
  n.parent = 0;
  n.children.clear();
  n.thread_key = 0;
  free_slots_.push(static_cast<uint32_t>(id) - 1);
  --live_;
  // Free slots at the back are given back: after a burst the vector shrinks to what is live.
  while (!slots_.empty() && slots_.back().id == 0) slots_.pop_back();
  if (slots_.capacity() > 4096 && slots_.size() < slots_.capacity() / 4) slots_.shrink_to_fit();
  // Spans leave roughly in arrival order: ids of spans gone are dropped from the front of
  // their thread's queue, and skipped where a later one left first (never searched for).
  if (auto t = thread_key ? by_thread.find(thread_key) : by_thread.end(); t != by_thread.end()) {
    while (!t->second.empty() && !find(t->second.front())) t->second.pop_front();
    if (t->second.empty()) sweep_idle_threads(by_thread);
  }
}

// A thread's queue stays when it empties: a thread serving or calling one request at a time
// would otherwise build and free it (three allocations) per span. Empty queues are swept once
// they outnumber twice what the last sweep left, so threads that are gone cost bounded memory
// and sweeping stays linear overall.
void Stitcher::sweep_idle_threads(ThreadQueues& by_thread) {
  size_t& sweep_at = &by_thread == &clients_by_thread_ ? sweep_clients_at_ : sweep_servers_at_;
  if (by_thread.size() <= sweep_at) return;
  std::erase_if(by_thread, [](const auto& entry) { return entry.second.empty(); });
  sweep_at = std::max(kMinThreadsBeforeSweep, 2 * by_thread.size());
}

}  // namespace weft::trace
