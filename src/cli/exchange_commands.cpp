// `weft exchanges`: connections -> protocol exchanges, live or from a recording.
#include <cstdio>

#include "cli/commands.h"
#include "cli/exchange_format.h"
#include "cli/pipeline.h"
#include "conn/connection_tracker.h"

namespace weft::cli {
namespace {

void print_summary(const conn::ConnectionTracker& tracker, uint64_t shown) {
  const auto& t = tracker.counters();
  std::fprintf(
      stderr,
      "weft exchanges: %llu shown; connections: %llu tracked, %llu undetected (%llu bytes "
      "looked past), %llu detected after a miss, %llu evicted, %llu idle-expired, %llu late "
      "bytes, %llu sequence mismatches\n",
      (unsigned long long)shown, (unsigned long long)t.connections,
      (unsigned long long)t.undetected, (unsigned long long)t.detect_bytes,
      (unsigned long long)t.redetected, (unsigned long long)t.evicted,
      (unsigned long long)t.idle_expired, (unsigned long long)t.late_bytes,
      (unsigned long long)t.sequence_mismatches);
  const auto& registry = protocols::registry();
  for (size_t i = 0; i < registry.size(); ++i) {
    const auto& p = tracker.protocol_counters()[i];
    std::fprintf(
        stderr,
        "weft exchanges: %.*s: %llu exchanges, %llu messages, parse_errors=%llu resyncs=%llu "
        "unmatched_requests=%llu unmatched_responses=%llu truncated=%llu skipped_bytes=%llu "
        "not_replies=%llu weak_rejected=%llu\n",
        (int)registry[i]->name().size(), registry[i]->name().data(),
        (unsigned long long)p.exchanges, (unsigned long long)p.messages,
        (unsigned long long)p.parse_errors, (unsigned long long)p.resyncs,
        (unsigned long long)p.unmatched_requests, (unsigned long long)p.unmatched_responses,
        (unsigned long long)p.truncated_messages, (unsigned long long)p.skipped_bytes,
        (unsigned long long)p.not_replies, (unsigned long long)p.weak_rejected);
  }
}

}  // namespace

int run_exchanges(const ExchangesOptions& options) {
  OpenedSource opened = open_source(options.replay_path, options.capture, "exchanges");
  if (!opened.source) return opened.exit_code;
  int64_t wall_offset = opened.source->wall_offset_ns();
  capture::EventStream stream(std::move(opened.source));
  uint64_t shown = 0;
  conn::ConnectionTracker tracker(
      options.tracker,
      [&](Exchange&& ex) {
        if (!options.filter.matches(*ex.connection)) return;
        ++shown;
        std::string line = options.json ? format_exchange_json(ex) : format_exchange_text(ex);
        line += '\n';
        std::fwrite(line.data(), 1, line.size(), stdout);
      },
      wall_offset);
  pump(
      stream, options.duration_s, [&](Event&& e) { tracker.on_event(e); },
      [&](uint64_t now) { tracker.expire_idle(now); });
  tracker.close_all();
  std::fflush(stdout);
  print_summary(tracker, shown);
  print_loss_summary("exchanges", stream.source_stats(), stream.stream_stats());
  return finish_source(opened);
}

}  // namespace weft::cli
