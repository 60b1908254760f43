// Replay throughput of the pipeline stages: a `weft record` file is read into memory once,
// then its events are pushed `rounds` times through the stages of `weft run`, up to the one
// named by --until (each includes those before it):
//   decode   every event decoded from its encoded bytes (the recording's and the ring's codec)
//   order    + the reorder window (EventOrderer), as `weft run` releases events
//   conn     + the connection tracker and the protocol parsers: exchanges (the default)
//   span     + a span built for every exchange (what the stitcher and sampler need)
//   stitch   + the stitcher and the inference evidence, and the description (name,
//            attributes) of the spans of kept traces: all of them here (everything but
//            metrics and export, as `weft run --metrics-address off`)
//   metrics  + every span recorded in the request-duration histograms
//   encode   + every finished trace encoded as OTLP/JSON lines (the otlp-file exporter, to
//            /dev/null), on this thread
//   usage: weft_replay_bench FILE [rounds] [--until STAGE]   (--spans = --until stitch,
//          --spans --metrics = --until metrics, as before)
// Prints events, exchanges (and spans) per second on one core (this thread). Under callgrind,
// the difference between two stages' instruction counts is what the later one costs:
// scripts/bench/stage_cost.sh does that for every stage.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "capture/event_codec.h"
#include "capture/event_stream.h"
#include "capture/record_file.h"
#include "conn/connection_tracker.h"
#include "export/otlp_json.h"
#include "metrics/metrics_registry.h"
#include "trace/span_builder.h"
#include "trace/stitcher.h"
#include "trace/thread_evidence_feed.h"

namespace {

enum class Stage { Decode, Order, Conn, Span, Stitch, Metrics, Encode };

bool parse_stage(const char* name, Stage* stage) {
  static const std::pair<const char*, Stage> kStages[] = {
      {"decode", Stage::Decode}, {"order", Stage::Order},   {"conn", Stage::Conn},
      {"span", Stage::Span},     {"stitch", Stage::Stitch}, {"metrics", Stage::Metrics},
      {"encode", Stage::Encode}};
  for (const auto& [n, s] : kStages)
    if (std::strcmp(name, n) == 0) {
      *stage = s;
      return true;
    }
  return false;
}

struct Totals {
  uint64_t events = 0;
  uint64_t exchanges = 0;
  uint64_t spans_in_traces = 0;
};

// One pass of every event through the stages up to `until`.
void replay(const std::vector<std::vector<uint8_t>>& encoded, Stage until,
            weft::exporter::BatchExporter* encoder, Totals& totals) {
  std::vector<weft::trace::Trace> batch;
  weft::trace::SpanBuilder builder({});
  weft::trace::Stitcher stitcher(
      {},
      [&](weft::trace::Trace&& t) {
        totals.spans_in_traces += t.spans.size();
        if (!encoder) return;
        batch.push_back(std::move(t));
        if (batch.size() == 256) {
          encoder->export_batch(batch);
          batch.clear();
        }
      },
      [&](weft::trace::Span& span) { builder.describe(span); });
  weft::metrics::MetricsRegistry registry;
  uint64_t now = 0;
  auto on_exchange = [&](weft::Exchange&& ex) {
    ++totals.exchanges;
    if (until < Stage::Span) return;
    auto shared = std::make_shared<const weft::Exchange>(std::move(ex));
    // As `weft run` does: spans are described when their trace is kept (every trace is, here),
    // or at once where the protocol cannot give duration-metric labels without describing.
    bool describe_now = until >= Stage::Metrics && !shared->protocol->has_metric_labels();
    weft::trace::Span span =
        describe_now ? builder.build(std::move(shared)) : builder.build_deferred(std::move(shared));
    if (until >= Stage::Metrics) registry.record_span(span);
    if (until >= Stage::Stitch) stitcher.add(std::move(span), now);
  };
  weft::trace::TraceFeed feed(stitcher, 0, on_exchange);
  // As `weft run` wires them from the stitch stage on; the tracker alone before.
  weft::conn::ConnectionTracker tracker = until >= Stage::Stitch
                                              ? weft::conn::ConnectionTracker({}, feed.outputs(), 0)
                                              : weft::conn::ConnectionTracker({}, on_exchange, 0);
  auto process = [&](weft::Event&& e) {
    if (until < Stage::Conn) return;
    now = e.mono_ns;
    tracker.on_event(e);
    if (until >= Stage::Stitch) stitcher.flush_ready(now);
  };
  weft::capture::EventOrderer orderer(weft::capture::EventStream::kDefaultWindowNs);
  std::string error;
  // One Event decoded into again and again, as the capture loop does: the orderer hands back a
  // released one whose payload buffer the next record reuses.
  weft::Event event;
  for (const auto& raw : encoded) {
    if (!weft::decode_event_into(raw, event, &error)) continue;
    ++totals.events;
    if (until < Stage::Order) {
      process(std::move(event));
      continue;
    }
    uint64_t t = event.mono_ns;
    orderer.push(std::move(event));
    if (t > weft::capture::EventStream::kDefaultWindowNs)
      orderer.release_older_than(t - weft::capture::EventStream::kDefaultWindowNs, process);
  }
  orderer.release_all(process);
  tracker.close_all();
  stitcher.flush_all();
  if (encoder && !batch.empty()) encoder->export_batch(batch);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s RECORDING [rounds] [--until STAGE]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  Stage until = Stage::Conn;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--spans") == 0) {
      until = std::max(until, Stage::Stitch);
    } else if (std::strcmp(argv[i], "--metrics") == 0) {
      until = std::max(until, Stage::Metrics);
    } else if (std::strcmp(argv[i], "--until") == 0 && i + 1 < argc) {
      if (!parse_stage(argv[++i], &until)) {
        std::fprintf(stderr, "unknown stage '%s'\n", argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr, "unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  std::string error;
  auto reader = weft::capture::RecordReader::open(argv[1], &error);
  if (!reader) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  // Kept encoded, as they arrive from the ring or a file, so that decoding is measured too.
  std::vector<std::vector<uint8_t>> encoded;
  while (reader->poll(std::chrono::milliseconds(0),
                      [&](weft::Event&& e) { encoded.push_back(weft::encode_event(e)); })) {
  }
  if (!reader->error().empty()) {
    std::fprintf(stderr, "%s\n", reader->error().c_str());
    return 1;
  }
  std::unique_ptr<weft::exporter::BatchExporter> encoder;
  if (until >= Stage::Encode) {
    encoder = weft::exporter::OtlpFileExporter::open("/dev/null", &error);
    if (!encoder) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
  }

  Totals totals;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) replay(encoded, until, encoder.get(), totals);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "events %zu  rounds %d  exchanges %llu  seconds %.3f  exchanges/s %.0f  events/s %.0f",
      encoded.size(), rounds, static_cast<unsigned long long>(totals.exchanges), seconds,
      static_cast<double>(totals.exchanges) / seconds,
      static_cast<double>(totals.events) / seconds);
  if (until >= Stage::Stitch)
    std::printf("  spans in traces %llu  spans/s %.0f",
                static_cast<unsigned long long>(totals.spans_in_traces),
                static_cast<double>(totals.spans_in_traces) / seconds);
  std::printf("\n");
  return 0;
}
