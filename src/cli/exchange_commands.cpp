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
      "bytes, %llu sequence mismatches, %llu TLS connections read as plaintext (%llu ciphertext "
      "bytes not parsed), %llu body bytes left uncopied by %llu skip verdicts\n",
      (unsigned long long)shown, (unsigned long long)t.connections,
      (unsigned long long)t.undetected, (unsigned long long)t.detect_bytes,
      (unsigned long long)t.redetected, (unsigned long long)t.evicted,
      (unsigned long long)t.idle_expired, (unsigned long long)t.late_bytes,
      (unsigned long long)t.sequence_mismatches, (unsigned long long)t.tls_connections,
      (unsigned long long)t.superseded_bytes, (unsigned long long)t.skipped_bytes,
      (unsigned long long)t.skip_verdicts);
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

// Prints each exchange the filter lets through, as a line of text or JSON.
class ExchangePrinter : public protocols::HandlerOutput {
 public:
  ExchangePrinter(const ExchangesOptions& options, uint64_t& shown)
      : options_(options), shown_(shown) {}
  void exchange(Exchange&& ex) override {
    if (!options_.filter.matches(*ex.connection)) return;
    ++shown_;
    std::string line = options_.json ? format_exchange_json(ex) : format_exchange_text(ex);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  void request_started(const ConnectionInfo&, uint32_t, uint64_t) override {}

 private:
  const ExchangesOptions& options_;
  uint64_t& shown_;
};

}  // namespace

int run_exchanges(const ExchangesOptions& options) {
  OpenedSource opened = open_source(options.replay_path, options.capture, "exchanges");
  if (!opened.source) return opened.exit_code;
  int64_t wall_offset = opened.source->wall_offset_ns();
  capture::EventStream stream(std::move(opened.source));
  uint64_t shown = 0;
  ExchangePrinter printer(options, shown);
  conn::TrackerOutputs outputs;
  outputs.exchanges = &printer;
  // Connections weft gave up on stop costing the kernel a copy of their bytes.
  outputs.capture_verdict = [&stream](uint64_t cookie, const CaptureVerdict& verdict) {
    stream.source().set_verdict(cookie, verdict);
  };
  conn::ConnectionTracker tracker(options.tracker, std::move(outputs), wall_offset);
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
