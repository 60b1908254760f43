// Replay throughput of the pipeline stages: a `weft record` file is read into memory once,
// then its events are pushed `rounds` times through a fresh ConnectionTracker (and, with
// --spans, on through the span builder and the stitcher, everything but export; with
// --metrics, every span is also recorded in the request-duration histograms, as `weft run` does).
//   usage: weft_replay_bench FILE [rounds] [--spans [--metrics]]
// Prints events, exchanges (and spans) per second on one core (this thread).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "capture/record_file.h"
#include "conn/connection_tracker.h"
#include "metrics/metrics_registry.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "trace/thread_evidence_feed.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s RECORDING [rounds]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  bool spans = argc > 3 && std::strcmp(argv[3], "--spans") == 0;
  bool metrics = spans && argc > 4 && std::strcmp(argv[4], "--metrics") == 0;
  std::string error;
  auto reader = weft::capture::RecordReader::open(argv[1], &error);
  if (!reader) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::vector<weft::Event> events;
  while (reader->poll(std::chrono::milliseconds(0),
                      [&](weft::Event&& e) { events.push_back(std::move(e)); })) {
  }
  if (!reader->error().empty()) {
    std::fprintf(stderr, "%s\n", reader->error().c_str());
    return 1;
  }

  uint64_t exchanges = 0;
  uint64_t traced_spans = 0;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    weft::trace::Stitcher stitcher({},
                                   [&](weft::trace::Trace&& t) { traced_spans += t.spans.size(); });
    weft::trace::SpanBuilder builder({});
    weft::metrics::MetricsRegistry registry;
    uint64_t now = 0;
    auto on_exchange = [&](weft::Exchange&& ex) {
      ++exchanges;
      if (!spans) return;
      weft::trace::Span span = builder.build(std::make_shared<const weft::Exchange>(std::move(ex)));
      if (metrics) registry.record_span(span);
      stitcher.add(std::move(span), now);
    };
    weft::trace::TraceFeed feed(stitcher, 0, on_exchange);
    // As `weft run` does, with spans; the tracker alone without.
    weft::conn::ConnectionTracker tracker =
        spans ? weft::conn::ConnectionTracker({}, feed.outputs(), 0)
              : weft::conn::ConnectionTracker({}, on_exchange, 0);
    for (const auto& e : events) {
      now = e.mono_ns;
      tracker.on_event(e);
      if (spans) stitcher.flush_ready(now);
    }
    tracker.close_all();
    stitcher.flush_all();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "events %zu  rounds %d  exchanges %llu  seconds %.3f  exchanges/s %.0f  events/s %.0f",
      events.size(), rounds, (unsigned long long)exchanges, seconds, exchanges / seconds,
      events.size() * rounds / seconds);
  if (spans)
    std::printf("  spans in traces %llu  spans/s %.0f", (unsigned long long)traced_spans,
                traced_spans / seconds);
  std::printf("\n");
  return 0;
}
