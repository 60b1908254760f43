// `weft run`'s summary: the spans line is an equation that adds up.
#include <doctest/doctest.h>

#include <regex>
#include <string>

#include "cli/run_summary.h"

using namespace weft;

TEST_CASE("run summary: built spans = exported + sampled out + dropped by reason") {
  trace::StitchCounters s;
  s.spans = 815;  // the stitcher counts the deferred client spans too
  s.client_spans_deferred = 3;
  s.spans_sampled_out = 12;
  exporter::QueueCounters q;
  q.spans_exported = 784;
  q.spans_dropped_full = 10;
  q.spans_dropped_refused = 4;
  q.spans_unsent_at_exit = 2;
  cli::SpanTally t = cli::tally(s, q);
  CHECK(t.built == 812);
  CHECK(t.unaccounted() == 0);
  CHECK(cli::spans_line(t) ==
        "weft run: spans: 812 built = 784 exported + 12 sampled out + 16 dropped (queue full 10, "
        "refused 4, unsent at exit 2); not built: 3 client spans deferred to the context their "
        "request carried");

  // What a reader does: add the terms up.
  std::smatch m;
  std::string line = cli::spans_line(t);
  REQUIRE(std::regex_search(line, m,
                            std::regex(R"((\d+) built = (\d+) exported \+ (\d+) sampled out \+ )"
                                       R"((\d+) dropped \(queue full (\d+), refused (\d+), )"
                                       R"(unsent at exit (\d+)\))")));
  auto v = [&](int i) { return std::stoull(m[i]); };
  CHECK(v(1) == v(2) + v(3) + v(4));
  CHECK(v(4) == v(5) + v(6) + v(7));
}

TEST_CASE("run summary: a miscount shows as unaccounted instead of a false equation") {
  trace::StitchCounters s;
  s.spans = 10;
  exporter::QueueCounters q;
  q.spans_exported = 7;
  cli::SpanTally t = cli::tally(s, q);
  CHECK(t.unaccounted() == 3);
  CHECK(cli::spans_line(t).find("0 dropped (queue full 0, refused 0, unsent at exit 0) + 3 "
                                "unaccounted;") != std::string::npos);
}

TEST_CASE("run summary: links and export lines") {
  trace::StitchCounters s;
  s.traces_exported = 40;
  s.traces_sampled_out = 5;
  s.linked_same_node = 12;
  s.linked_wire = 1;
  s.linked_inferred = 8;
  s.ambiguous_inference = 2;
  s.not_inferred_concurrent_requests = 3;
  s.not_inferred_thread_hopping = 4;
  s.not_inferred_opaque_server_traffic = 5;
  s.not_inferred_calls_outside_requests = 6;
  s.not_inferred_event_loop_runtime = 11;
  s.conflicts = 7;
  s.forced_early = 8;
  s.traces_settled_early = 12;
  s.waited_for_parent = 9;
  s.start_bounded_by_child = 10;
  CHECK(cli::links_line(s) ==
        "weft run: traces: 45 finished, 40 kept, 5 sampled out; links: same-node=12 wire=1 "
        "inferred=8; not inferred: ambiguous=2 concurrent-requests=3 thread-hopping=4 "
        "opaque-server-traffic=5 calls-outside-requests=6 event-loop-runtime=11; conflicts=7 "
        "forced-early=8 settled-early=12 "
        "waited-for-parent=9 start-bounded-by-child=10; sampling: root ratio 1 rate-limited=0");
  s.sampling_ratio = 0.0123456;
  s.traces_rate_limited = 4;
  CHECK(cli::links_line(s).ends_with("; sampling: root ratio 0.01235 rate-limited=4"));
  exporter::QueueCounters q;
  q.export_failures = 3;
  q.retries = 2;
  CHECK(cli::export_line(q, "") == "weft run: export attempts: 3 failed, 2 retries");
  CHECK(cli::export_line(q, "POST http://x/v1/traces: HTTP 503") ==
        "weft run: export attempts: 3 failed, 2 retries; last error: POST http://x/v1/traces: "
        "HTTP 503");
}
