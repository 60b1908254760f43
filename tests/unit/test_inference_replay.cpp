// Thread inference against recorded event streams (issue 9): real services recorded once with
// `weft record` (scripts/record_inference_fixtures.py, tests/data/inference/*.weftrec) are
// replayed through the stages `weft run` wires up (EventStream -> ConnectionTracker with its
// request-start, opaque-server-I/O and connection-finished sinks -> SpanBuilder -> Stitcher),
// no kernel involved.
// Truth comes from the URL paths, as in tests/e2e/suite_inference.py: a call made for request
// n has n in its path; a call made outside any request (a timer, a background thread, an
// upstream call for an HTTPS request weft cannot read) must have no parent.
//
// Each fixture is also replayed with what the rule relies on taken away (the runtime weft
// recognised in the executable, the opaque-traffic signal) to show that the fixture exercises
// the rule: without it, the same stream gives wrong parents or is refused for another reason.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "capture/event_stream.h"
#include "capture/record_file.h"
#include "conn/connection_tracker.h"
#include "protocols/http1/http1.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "trace/thread_evidence_feed.h"

namespace weft::trace {
namespace {

// tests/data/inference, found from this file's own path (CMake compiles it by absolute path);
// WEFT_SOURCE_DIR overrides for builds that do not.
std::filesystem::path fixture(const std::string& name) {
  std::filesystem::path root;
  if (const char* env = std::getenv("WEFT_SOURCE_DIR"); env && *env)
    root = env;
  else
    root = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
  return root / "tests" / "data" / "inference" / (name + ".weftrec");
}

struct ReplayOptions {
  // Replaces each process's runtime (as if weft had not recognised, or had recognised, one).
  std::optional<std::string> runtime;
  bool opaque_io = true;  // wire the tracker's opaque-server-I/O sink to the stitcher
};

struct Replay {
  StitchCounters counters;
  std::vector<Span> spans;  // every span of every trace, with its parent id
  std::map<uint32_t, std::shared_ptr<const ProcessInfo>> processes;  // as recorded, by pid
  uint64_t opaque_io_reports = 0;
  uint64_t events = 0;
};

// `weft run` without the exporter: the same stages, the same clocks.
Replay replay(const std::string& name, const ReplayOptions& options = {}) {
  Replay out;
  std::filesystem::path path = fixture(name);
  std::string error;
  auto reader = capture::RecordReader::open(path.string(), &error);
  REQUIRE_MESSAGE(reader, error);
  capture::RecordReader* file = reader.get();
  int64_t wall_offset = reader->wall_offset_ns();
  capture::EventStream stream(std::move(reader));

  Stitcher stitcher({}, [&](Trace&& t) {
    for (Span& s : t.spans) out.spans.push_back(std::move(s));
  });
  SpanBuilder spans({});
  uint64_t now_wall = 0;
  TraceFeed feed(stitcher, wall_offset, [&](Exchange&& ex) {
    stitcher.add(spans.build(std::make_shared<const Exchange>(std::move(ex))), now_wall);
  });
  conn::TrackerOutputs outputs = feed.outputs();                // as `weft run` does
  outputs.opaque_server_io = [&](uint32_t pid, uint32_t tid) {  // counted, and optionally cut
    ++out.opaque_io_reports;
    if (options.opaque_io) stitcher.opaque_server_io(pid, tid);
  };
  conn::ConnectionTracker tracker({}, outputs, wall_offset);

  std::unordered_map<const ProcessInfo*, std::shared_ptr<const ProcessInfo>> rewritten;
  auto sink = [&](Event&& e) {
    ++out.events;
    if (e.process) {
      out.processes.try_emplace(e.pid, e.process);
      if (options.runtime) {
        auto& copy = rewritten[e.process.get()];
        if (!copy) {
          auto info = std::make_shared<ProcessInfo>(*e.process);
          info->runtime = *options.runtime;
          copy = std::move(info);
        }
        e.process = copy;
      }
    }
    now_wall = std::max(now_wall, e.mono_ns + wall_offset);
    tracker.on_event(e);
    // Live, the stitcher is flushed after every batch the kernel hands over (every 50 ms at
    // most); a recording comes in batches of thousands of events, so a small one would be
    // resolved all at once at its end, with everything seen. Flushing at every event keeps the
    // live order: a call is judged with what weft had seen by its deadline, not after.
    stitcher.flush_ready(now_wall);
  };
  while (stream.next(std::chrono::milliseconds(0), sink)) {
    uint64_t now_mono = stream.source().now_mono_ns();
    now_wall = std::max(now_wall, now_mono + wall_offset);
    tracker.expire_idle(now_mono);
    stitcher.flush_ready(now_wall);
  }
  tracker.close_all();
  stitcher.flush_all();
  REQUIRE_MESSAGE(file->error().empty(), file->error());
  REQUIRE(stitcher.pending() == 0);
  out.counters = stitcher.counters();
  return out;
}

std::string path_of(const Span& s) {
  const std::string& target = protocols::http1::http_of(*s.exchange).target;
  return target.substr(0, target.find('?'));
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// What a call is: made for the server request with this path, made outside any request, or
// not one of the scenario's calls.
struct Truth {
  enum Kind { Request, Outside, Other } kind = Other;
  std::string server_path;
};

// A call to request_prefix + rest was made for server_prefix + rest; outside_prefix...: for none.
auto path_truth(std::string request_prefix, std::string server_prefix,
                std::string outside_prefix = "") {
  return [=](const std::string& path) -> Truth {
    if (starts_with(path, request_prefix))
      return {Truth::Request, server_prefix + path.substr(request_prefix.size())};
    if (!outside_prefix.empty() && starts_with(path, outside_prefix)) return {Truth::Outside, ""};
    return {};
  };
}

struct Measure {
  uint64_t calls = 0;     // client spans made for requests
  uint64_t kept = 0;      // ... under their own request
  uint64_t left_out = 0;  // ... without a parent
  uint64_t outside = 0;   // client spans made outside any request
  std::vector<std::string> wrong;
};

template <class Mine, class TruthFn>
Measure measure(const Replay& r, Mine mine, TruthFn truth) {
  std::unordered_map<std::string, const Span*> by_id;
  for (const Span& s : r.spans)
    by_id[std::string(reinterpret_cast<const char*>(s.span_id.data()), s.span_id.size())] = &s;
  Measure m;
  for (const Span& s : r.spans) {
    if (s.kind != SpanKind::Client || !mine(s)) continue;
    std::string path = path_of(s);
    Truth t = truth(path);
    if (t.kind == Truth::Other) continue;
    const Span* parent = nullptr;
    if (s.has_parent()) {
      auto it = by_id.find(std::string(reinterpret_cast<const char*>(s.parent_span_id.data()),
                                       s.parent_span_id.size()));
      parent = it == by_id.end() ? nullptr : it->second;
    }
    std::string got = !s.has_parent() ? ""
                      : parent
                          ? std::string(parent->kind == SpanKind::Server ? "server " : "client ") +
                                path_of(*parent)
                          : "a parent not exported";
    if (t.kind == Truth::Outside) {
      ++m.outside;
      if (s.has_parent()) m.wrong.push_back(path + " (made outside any request) under " + got);
      continue;
    }
    ++m.calls;
    if (!s.has_parent())
      ++m.left_out;
    else if (parent && parent->kind == SpanKind::Server && mine(*parent) &&
             path_of(*parent) == t.server_path)
      ++m.kept;
    else
      m.wrong.push_back(path + " (made for " + t.server_path + ") under " + got);
  }
  return m;
}

// The rule with none of its safeguards: a call is the child of the one server span of its
// process that was read on the call's thread and held the call's start (request start to
// response start). Computed here from the spans, independently of the stitcher, to show what a
// fixture would do to naive inference.
struct Naive {
  uint64_t linked = 0;
  uint64_t wrong = 0;  // linked to a request it was not made for (or made outside any)
};

template <class Mine, class TruthFn>
Naive naive_thread_inference(const Replay& r, Mine mine, TruthFn truth) {
  Naive n;
  for (const Span& c : r.spans) {
    if (c.kind != SpanKind::Client || !mine(c)) continue;
    Truth t = truth(path_of(c));
    if (t.kind == Truth::Other) continue;
    const Exchange& call = *c.exchange;
    const Span* holder = nullptr;
    int holders = 0;
    for (const Span& s : r.spans) {
      if (s.kind != SpanKind::Server || !mine(s)) continue;
      const Exchange& req = *s.exchange;
      if (req.connection->pid != call.connection->pid ||
          req.request.start_tid != call.request.start_tid)
        continue;
      if (req.request.start_ns <= call.request.start_ns &&
          call.request.start_ns <= req.response.start_ns) {
        holder = &s;
        ++holders;
      }
    }
    if (holders != 1) continue;
    ++n.linked;
    if (t.kind == Truth::Outside || path_of(*holder) != t.server_path) ++n.wrong;
  }
  return n;
}

uint64_t refused(const StitchCounters& c) {
  return c.ambiguous_inference + c.not_inferred_concurrent_requests +
         c.not_inferred_thread_hopping + c.not_inferred_opaque_server_traffic +
         c.not_inferred_calls_outside_requests + c.not_inferred_event_loop_runtime;
}

std::string describe(const Measure& m, const StitchCounters& c) {
  std::string s =
      std::to_string(m.wrong.size()) + " wrong, " + std::to_string(m.kept) + " kept, " +
      std::to_string(m.left_out) + " left out of " + std::to_string(m.calls) + " calls; outside " +
      std::to_string(m.outside) + "; inferred=" + std::to_string(c.linked_inferred) +
      " same-node=" + std::to_string(c.linked_same_node) +
      " ambiguous=" + std::to_string(c.ambiguous_inference) +
      " concurrent-requests=" + std::to_string(c.not_inferred_concurrent_requests) +
      " thread-hopping=" + std::to_string(c.not_inferred_thread_hopping) +
      " opaque-server-traffic=" + std::to_string(c.not_inferred_opaque_server_traffic) +
      " calls-outside-requests=" + std::to_string(c.not_inferred_calls_outside_requests) +
      " event-loop-runtime=" + std::to_string(c.not_inferred_event_loop_runtime);
  for (size_t i = 0; i < m.wrong.size() && i < 3; ++i) s += "\n  e.g. " + m.wrong[i];
  return s;
}

const ProcessInfo* process_of(const Span& s) {
  return s.exchange->connection->process.get();
}

auto service(const char* name) {
  return [name](const Span& s) {
    const ProcessInfo* p = process_of(s);
    return p && p->service_name == name;
  };
}

// The pids of the recorded processes that `mine` picks.
template <class Pick>
std::vector<const ProcessInfo*> recorded(const Replay& r, Pick pick) {
  std::vector<const ProcessInfo*> found;
  for (const auto& [pid, p] : r.processes)
    if (pick(*p)) found.push_back(p.get());
  return found;
}

bool is_nginx(const ProcessInfo& p) {
  return p.exe.size() >= 6 && p.exe.compare(p.exe.size() - 6, 6, "/nginx") == 0;
}

// ---------------------------------------------------------------------------------------------
// 1. Node.js: a setInterval calling the backend while slow requests are served on its thread

TEST_CASE(
    "replay node_timer: a libuv process gets no inferred parent, its timer calls no parent at "
    "all") {
  Replay r = replay("node_timer");
  auto node = recorded(r, [](const ProcessInfo& p) { return p.service_name == "inf-node"; });
  REQUIRE(node.size() == 1);
  CHECK(node[0]->runtime == "libuv");  // empty: the recording predates runtimes in recordings

  auto mine = service("inf-node");
  Measure m = measure(r, mine, path_truth("/down/", "/slow/", "/timer/"));
  INFO(describe(m, r.counters));
  MESSAGE("node_timer: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(m.calls == 20);    // /slow/0-19: ten alone, then ten five at a time
  CHECK(m.outside >= 20);  // the timer every 100 ms
  CHECK(m.kept == 0);
  CHECK(r.counters.linked_inferred == 0);
  // Every call made while a request was served on the thread was refused for the runtime: the
  // sixteen /down/ calls and the timer's calls that landed inside requests.
  CHECK(r.counters.not_inferred_event_loop_runtime >= m.calls + 5);
  CHECK(refused(r.counters) == r.counters.not_inferred_event_loop_runtime);
}

TEST_CASE(
    "replay node_timer without the runtime: timer calls inside lone requests get wrong parents") {
  // The same stream with the runtime weft recognised in node's executable removed: in the first
  // phase every request is alone and every timer call lands inside one, and no call outside a
  // request or concurrency has been seen yet, so thread inference links the timer's calls to
  // whatever request was in flight. This is what the event-loop-runtime rule exists for.
  Replay r = replay("node_timer", {.runtime = ""});
  auto mine = service("inf-node");
  Measure m = measure(r, mine, path_truth("/down/", "/slow/", "/timer/"));
  MESSAGE("node_timer, runtime cleared: " << describe(m, r.counters));
  CHECK(r.counters.not_inferred_event_loop_runtime == 0);
  CHECK(m.wrong.size() >= 5);  // timer calls under /slow/n
  for (const auto& w : m.wrong) CHECK_MESSAGE(w.find("/timer/") == 0, w);
  CHECK(r.counters.linked_inferred > 0);
  // Once five requests run at once the process shows itself concurrent and the rest is refused.
  CHECK(r.counters.not_inferred_concurrent_requests > 0);
  Naive naive = naive_thread_inference(r, mine, path_truth("/down/", "/slow/", "/timer/"));
  MESSAGE("node_timer, naive thread inference: " << naive.wrong << " wrong of " << naive.linked
                                                 << " linked");
  CHECK(naive.wrong >= m.wrong.size());
}

// ---------------------------------------------------------------------------------------------
// 2. nginx: upstream calls for HTTPS requests while a slow plaintext request is in flight

TEST_CASE(
    "replay nginx_tls_mix: an nginx worker gets no inferred parent, calls for HTTPS requests none "
    "at all") {
  Replay r = replay("nginx_tls_mix");
  auto nginx = recorded(r, is_nginx);
  REQUIRE(!nginx.empty());
  for (const ProcessInfo* p : nginx) CHECK(p->runtime == "nginx");
  auto mine = [](const Span& s) { return process_of(s) && is_nginx(*process_of(s)); };
  Measure m = measure(r, mine, path_truth("/plain/", "/plain/", "/tls/"));
  MESSAGE("nginx_tls_mix: " << describe(m, r.counters) << "; opaque server I/O reports "
                            << r.opaque_io_reports);
  CHECK(m.wrong.empty());
  CHECK(m.calls == 4);             // /plain/slow/0-3
  CHECK(m.outside == 12);          // /tls/fast/0-11
  CHECK(r.opaque_io_reports > 0);  // the worker's TLS connections were seen as opaque server I/O
  CHECK(r.counters.linked_inferred == 0);
  // The plain calls and the HTTPS ones made while a slow plain request was open.
  CHECK(r.counters.not_inferred_event_loop_runtime >= m.calls + 4);
  CHECK(refused(r.counters) == r.counters.not_inferred_event_loop_runtime);
}

TEST_CASE(
    "replay nginx_tls_mix without the runtime: opaque traffic refuses; without both, wrong "
    "parents") {
  // Without the runtime, the worker's thread moved TLS bytes on connections it accepted before
  // making any call for an HTTPS request: opaque-server-traffic refuses every call instead.
  Replay r = replay("nginx_tls_mix", {.runtime = ""});
  auto mine = [](const Span& s) { return process_of(s) && is_nginx(*process_of(s)); };
  Measure m = measure(r, mine, path_truth("/plain/", "/plain/", "/tls/"));
  MESSAGE("nginx_tls_mix, runtime cleared: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(r.counters.not_inferred_event_loop_runtime == 0);
  CHECK(r.counters.not_inferred_opaque_server_traffic >= m.calls + 4);
  CHECK(r.counters.linked_inferred == 0);

  // And without that signal too, the upstream calls for HTTPS requests land inside the slow
  // plaintext request on the same thread and are linked to it: naive inference.
  Replay bare = replay("nginx_tls_mix", {.runtime = "", .opaque_io = false});
  Measure n = measure(bare, mine, path_truth("/plain/", "/plain/", "/tls/"));
  MESSAGE("nginx_tls_mix, runtime cleared, no opaque signal: " << describe(n, bare.counters));
  CHECK(n.wrong.size() >= 4);
  for (const auto& w : n.wrong) CHECK_MESSAGE(w.find("/tls/") == 0, w);
  Naive naive = naive_thread_inference(r, mine, path_truth("/plain/", "/plain/", "/tls/"));
  MESSAGE("nginx_tls_mix, naive thread inference: " << naive.wrong << " wrong of " << naive.linked
                                                    << " linked");
  CHECK(naive.wrong == n.wrong.size());
}

// ---------------------------------------------------------------------------------------------
// 3. Go: goroutines move between threads

TEST_CASE("replay go_chain: a Go front gets no inferred parent, for thread hopping") {
  Replay r = replay("go_chain");
  auto go = recorded(r, [](const ProcessInfo& p) { return p.service_name.starts_with("inf-go-"); });
  REQUIRE(go.size() == 2);
  for (const ProcessInfo* p : go) CHECK(p->runtime == "go");
  auto mine = service("inf-go-front");
  Measure m = measure(r, mine, path_truth("/down/", "/front/"));
  MESSAGE("go_chain: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(m.calls == 100);
  CHECK(r.counters.linked_inferred == 0);
  CHECK(r.counters.not_inferred_thread_hopping > 0);
  CHECK(refused(r.counters) == r.counters.not_inferred_thread_hopping);
}

TEST_CASE("replay go_chain without the runtime: refused for what the threads showed") {
  // Without the Go runtime the verdict must come from what the syscalls show: requests read on
  // one thread and answered on another (thread-hopping) or requests of two connections in
  // flight on one thread (concurrent-requests).
  Replay r = replay("go_chain", {.runtime = ""});
  auto mine = service("inf-go-front");
  Measure m = measure(r, mine, path_truth("/down/", "/front/"));
  MESSAGE("go_chain, runtime cleared: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(r.counters.not_inferred_event_loop_runtime == 0);
  CHECK(r.counters.not_inferred_thread_hopping + r.counters.not_inferred_concurrent_requests > 0);
  // Naive thread inference on this stream links calls to requests they were not made for: the
  // runtime wrote a call on a thread that was in the middle of another request.
  Naive naive = naive_thread_inference(r, mine, path_truth("/down/", "/front/"));
  MESSAGE("go_chain, naive thread inference: " << naive.wrong << " wrong of " << naive.linked
                                               << " linked");
  CHECK(naive.wrong > 0);
}

// ---------------------------------------------------------------------------------------------
// 4. Python ThreadingHTTPServer: thread per request, plus a background thread

TEST_CASE("replay python_threaded: thread per request, every call under its own request") {
  Replay r = replay("python_threaded");
  auto svc = recorded(r, [](const ProcessInfo& p) { return p.service_name == "inf-threaded"; });
  REQUIRE(svc.size() == 1);
  CHECK(svc[0]->runtime.empty());
  auto mine = service("inf-threaded");
  Measure m = measure(r, mine, path_truth("/hop/req/", "/req/", "/bg/"));
  MESSAGE("python_threaded: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(m.calls == 50);
  CHECK(m.kept == m.calls);
  CHECK(m.outside >= 5);  // the background thread's calls, no parent
  CHECK(r.counters.linked_inferred == m.calls);
  CHECK(refused(r.counters) == 0);

  // The links are the thread's doing: four requests ran at once, so "some request of the
  // process was in flight" would have several candidates for a call.
  uint64_t several = 0;
  for (const Span& c : r.spans) {
    if (c.kind != SpanKind::Client || !mine(c) || !starts_with(path_of(c), "/hop/req/")) continue;
    int in_flight = 0;
    for (const Span& s : r.spans)
      if (s.kind == SpanKind::Server && mine(s) && s.start_ns <= c.start_ns &&
          c.start_ns <= s.end_ns)
        ++in_flight;
    if (in_flight > 1) ++several;
  }
  MESSAGE("python_threaded: calls made while other requests of the process were in flight: "
          << several);
  CHECK(several >= 10);
  Naive naive = naive_thread_inference(r, mine, path_truth("/hop/req/", "/req/", "/bg/"));
  CHECK(naive.linked == m.calls);  // thread per request: the naive rule and the real one agree
  CHECK(naive.wrong == 0);
}

TEST_CASE("replay python_threaded as if it ran an event loop: every link is refused") {
  // The kept links come from thread inference alone (not same-node or wire evidence): mark the
  // executable as an event-loop runtime and each of them is refused for that reason.
  Replay r = replay("python_threaded", {.runtime = "libuv"});
  Measure m = measure(r, service("inf-threaded"), path_truth("/hop/req/", "/req/", "/bg/"));
  MESSAGE("python_threaded, runtime libuv: " << describe(m, r.counters));
  CHECK(m.wrong.empty());
  CHECK(m.kept == 0);
  CHECK(r.counters.linked_inferred == 0);
  CHECK(r.counters.not_inferred_event_loop_runtime == m.calls);
}

}  // namespace
}  // namespace weft::trace
