// What a capture verdict saves in the kernel. Opens the kernel capture as `weft` does, gives
// every connection to or from --port the verdict asked for as soon as its first record
// arrives, and on SIGINT (or after --seconds) prints, as one JSON line, the cost of the data
// programs over the run (kernel.bpf_stats_enabled=1 must be set) and what arrived after each
// connection's verdict was set. scripts/bench/verdict_cost.sh drives it. `skip` is payload with
// both directions' bytes before --skip-until N skipped (reported without their payload).
//   usage: weft_verdict_bench --port P --verdict payload|counts|ignore|skip [--skip-until N]
//          [--seconds S]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>

#include "capture/clock.h"
#include "capture/kernel_capture.h"
#include "cli/commands.h"

using namespace weft;

int main(int argc, char** argv) {
  int port = 0;
  double seconds = 0;
  uint64_t skip_until = 0;
  std::string verdict_name = "ignore";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--port")) port = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--verdict")) verdict_name = argv[i + 1];
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--skip-until")) skip_until = std::strtoull(argv[i + 1], nullptr, 10);
  }
  CaptureVerdict verdict;
  verdict.mode = verdict_name == "counts"   ? CaptureMode::CountsOnly
                 : verdict_name == "ignore" ? CaptureMode::Ignore
                                            : CaptureMode::Payload;
  if (verdict_name == "skip") verdict.skip_until = {skip_until, skip_until};
  if (port <= 0 || (verdict_name != "payload" && verdict_name != "counts" &&
                    verdict_name != "ignore" && verdict_name != "skip")) {
    std::fprintf(stderr,
                 "usage: %s --port P --verdict payload|counts|ignore|skip [--skip-until N] "
                 "[--seconds S]\n",
                 argv[0]);
    return 2;
  }
  cli::install_stop_handlers();
  capture::CaptureConfig config;
  config.scan_existing = false;
  std::string error;
  auto capture = capture::KernelCapture::open(config, &error);
  if (!capture) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  auto costs = [&] {
    std::unordered_map<std::string, capture::KernelCapture::ProgramStats> by_name;
    for (auto& p : capture->program_stats()) by_name[p.name] = p;
    return by_name;
  };
  auto before = costs();
  std::fprintf(stderr, "ready\n");

  std::unordered_map<uint64_t, uint64_t> set_at;  // cookie -> kernel time its verdict was set
  uint64_t after = 0, captured_after = 0, untruncated_after = 0, close_bytes = 0, closes = 0,
           records = 0;
  // Skip verdicts: records flagged skipped, those of them reaching past the skip position (a
  // kernel bug), and records wholly before it that still carried payload after the verdict.
  uint64_t skipped = 0, skipped_beyond = 0, copied_within = 0;
  auto sink = [&](Event&& e) {
    ++records;
    if (e.local.port != port && e.remote.port != port) return;
    auto it = set_at.find(e.cookie);
    if (it == set_at.end()) {
      capture->set_verdict(e.cookie, verdict);
      set_at[e.cookie] = capture::monotonic_now_ns();
      return;
    }
    if (e.kind == EventKind::Close) {
      ++closes;
      close_bytes += e.bytes_sent + e.bytes_received;
    }
    if (e.kind != EventKind::Data || e.mono_ns <= it->second) return;
    ++after;
    captured_after += e.data.size();
    if (!e.truncated()) ++untruncated_after;
    uint64_t end = e.syscall_pos() + e.syscall_len;
    if (e.skipped()) {
      ++skipped;
      if (end > skip_until || !e.data.empty()) ++skipped_beyond;
    } else if (verdict_name == "skip" && end <= skip_until && !e.data.empty()) {
      ++copied_within;
    }
  };
  auto start = std::chrono::steady_clock::now();
  while (!cli::stop_requested()) {
    if (seconds > 0 &&
        std::chrono::steady_clock::now() - start > std::chrono::duration<double>(seconds))
      break;
    capture->poll(std::chrono::milliseconds(50), sink);
  }
  capture->drain(sink);
  auto end = costs();
  std::printf(
      "{\"verdict\":\"%s\",\"connections\":%zu,\"records\":%llu,\"data_after_verdict\":%llu,"
      "\"captured_after_verdict\":%llu,\"untruncated_after_verdict\":%llu,\"closes\":%llu,"
      "\"close_bytes\":%llu,\"verdict_failures\":%llu,\"skipped\":%llu,"
      "\"skipped_beyond\":%llu,\"copied_within\":%llu",
      verdict_name.c_str(), set_at.size(), (unsigned long long)records, (unsigned long long)after,
      (unsigned long long)captured_after, (unsigned long long)untruncated_after,
      (unsigned long long)closes, (unsigned long long)close_bytes,
      (unsigned long long)capture->stats().verdict_failures, (unsigned long long)skipped,
      (unsigned long long)skipped_beyond, (unsigned long long)copied_within);
  for (const char* name : {"data__send", "data__recv"}) {
    uint64_t ns = end[name].run_time_ns - before[name].run_time_ns;
    uint64_t cnt = end[name].run_cnt - before[name].run_cnt;
    std::printf(",\"%s\":{\"run_cnt\":%llu,\"run_time_ns\":%llu,\"ns_per_event\":%.1f}", name,
                (unsigned long long)cnt, (unsigned long long)ns,
                cnt ? double(ns) / double(cnt) : 0.0);
  }
  std::printf("}\n");
  return 0;
}
