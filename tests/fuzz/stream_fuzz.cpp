// libFuzzer target: arbitrary bytes cut into the syscalls of connections and fed to the
// connection tracker as the kernel reports them, with lost records, captures shorter than the
// syscall, syscalls split into several chunk records (only the last one flagged
// WEFT_DATA_LAST_CHUNK), records delivered out of order, unpositioned records, pauses and
// closes. Every registered protocol detects; the seed corpus decides which one the fuzzer
// mostly exercises (fuzz_http1_stream: tests/fuzz/corpus/http1, fuzz_redis_stream:
// tests/fuzz/corpus/redis, fuzz_http2_stream: tests/fuzz/corpus/http2, its frames and HPACK).
// Every exchange is described and rendered, as the later stages do.
// Wire bytes must never crash weft, hang it or grow its memory without bound.
//
// Input: a sequence of syscalls, each
//   u8 control, u8 arg, u16 length (little endian), `length` payload bytes
// control bits:
//   0 direction (0 Send, 1 Recv)
//   1 lost: the syscall's records never arrive (its bytes still move the stream position)
//   2 capture only a prefix: (arg & 15) * 16 bytes, flagged WEFT_DATA_TRUNCATED
//   3 report the syscall in chunk records of (arg >> 4) * 4 + 1 bytes
//   4 deliver out of order: the syscall's last record swaps with the record after it (with
//     bit 3 and several records: its first two records swap instead)
//   5 close the connection after this syscall (the next one starts a new connection)
//   6 30 ms of kernel time pass before this syscall (holes age past the reorder window)
//   7 the kernel had no position for this syscall (WEFT_DATA_NO_POSITION)
// tests/fuzz/make_corpus.py writes seeds in this format.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "conn/connection_tracker.h"
#include "protocols/protocol.h"
#include "weft_events.h"

namespace {

constexpr size_t kBudget = 1 << 20;
// The tracker's memory may pass its budget by one record's worth before it evicts.
constexpr size_t kSlack = 256 << 10;

struct Cursor {
  const uint8_t* p;
  size_t left;
  bool take(void* out, size_t n) {
    if (left < n) return false;
    std::memcpy(out, p, n);
    p += n;
    left -= n;
    return true;
  }
};

// What every later stage asks of an exchange: it must not crash on anything a parser emitted.
void describe(const weft::Exchange& ex) {
  if (!ex.protocol || !ex.connection) std::abort();
  weft::protocols::SpanDescription d;
  ex.protocol->describe(ex, weft::protocols::DescribeOptions{}, d);
  weft::protocols::DescribeOptions all;
  all.query_values = all.statement_values = true;
  ex.protocol->describe(ex, all, d);
  if (d.name.empty()) std::abort();
  ex.protocol->metric_family(d.kind);
  (void)ex.protocol->render_text(ex);
  nlohmann::json j = nlohmann::json::object();
  ex.protocol->render_json(ex, j);
  (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::conn::TrackerConfig config;
  config.memory_budget_bytes = kBudget;
  weft::conn::ConnectionTracker tracker(config, [](weft::Exchange&& ex) { describe(ex); }, 0);

  // First the records, in kernel order; then delivery, with the requested swaps.
  std::vector<weft::Event> records;
  std::vector<size_t> swap_after;  // record indexes to swap with their successor

  Cursor in{data, size};
  uint64_t pos[2] = {0, 0};
  uint64_t now = 1'000'000;
  uint64_t cookie = 1;
  uint8_t control = 0, arg = 0;
  uint16_t length = 0;
  while (in.take(&control, 1) && in.take(&arg, 1) && in.take(&length, 2)) {
    length = static_cast<uint16_t>(std::min<size_t>(length, in.left));
    const uint8_t* payload = in.p;
    in.p += length;
    in.left -= length;
    int d = control & 1;
    if (control & 64) now += 30'000'000;
    now += 1000;
    size_t captured = (control & 4) ? std::min<size_t>(length, (arg & 15) * 16u) : length;
    size_t chunk = (control & 8) ? (arg >> 4) * 4u + 1 : std::max<size_t>(captured, 1);
    size_t first = records.size();
    size_t offset = 0;
    do {  // a syscall always leaves one last record, even with nothing captured
      size_t n = std::min(chunk, captured - offset);
      weft::Event e;
      e.kind = weft::EventKind::Data;
      e.cookie = cookie;
      e.pid = 42;
      e.tid = 43;
      e.fd = 5;
      e.role = d ? weft::Role::Server : weft::Role::Client;
      e.comm = "fuzz";
      e.direction = static_cast<weft::Direction>(d);
      e.stream_pos = pos[d] + offset;
      e.tcp_seq = static_cast<uint32_t>(0x7fff0000u * d + pos[d] + offset);
      e.syscall_len = length;
      e.chunk_offset = static_cast<uint32_t>(offset);
      e.mono_ns = now;
      e.data.assign(payload + offset, payload + offset + n);
      if (captured < length) e.flags |= WEFT_DATA_TRUNCATED;
      if (control & 128) e.flags |= WEFT_DATA_NO_POSITION;
      offset += n;
      if (offset >= captured) e.flags |= WEFT_DATA_LAST_CHUNK;
      if (!(control & 2)) records.push_back(std::move(e));
    } while (offset < captured);
    pos[d] += length;
    if ((control & 16) && records.size() > first) {
      bool several = records.size() - first >= 2;
      swap_after.push_back((control & 8) && several ? first : records.size() - 1);
    }
    if (control & 32) {
      weft::Event close;
      close.kind = weft::EventKind::Close;
      close.cookie = cookie++;
      close.mono_ns = now;
      records.push_back(std::move(close));
      pos[0] = pos[1] = 0;
    }
  }
  for (size_t i : swap_after)
    if (i + 1 < records.size() && records[i].kind == weft::EventKind::Data &&
        records[i + 1].kind == weft::EventKind::Data)
      std::swap(records[i], records[i + 1]);

  for (const weft::Event& e : records) {
    tracker.on_event(e);
    if (tracker.memory_used() > kBudget + kSlack) std::abort();
  }
  tracker.close_all();
  if (tracker.connection_count() != 0 || tracker.memory_used() != 0) std::abort();
  return 0;
}
