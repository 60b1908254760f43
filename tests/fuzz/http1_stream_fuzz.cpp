// libFuzzer target: arbitrary bytes, cut into a conversation of syscalls with arbitrary
// capture limits, reordering and lost records, fed through the connection tracker and the
// HTTP/1 parser. Wire bytes must never crash weft, hang it or grow its memory without bound.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "conn/connection_tracker.h"
#include "weft_events.h"

namespace {

// Fuzzer input layout: a sequence of records
//   u8 control, u16 length, `length` payload bytes
// control bits: 0 direction, 1 drop this record (a lost event), 2 capture only a prefix,
// 3 close the connection afterwards, 4-7 prefix length / 16.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weft::conn::TrackerConfig config;
  config.memory_budget_bytes = 1 << 20;
  size_t exchanges = 0;
  weft::conn::ConnectionTracker tracker(config, [&](weft::Exchange&&) { ++exchanges; }, 0);

  Cursor in{data, size};
  uint64_t pos[2] = {0, 0};
  uint64_t now = 1'000'000;
  uint64_t cookie = 1;
  uint8_t control = 0;
  uint16_t length = 0;
  while (in.take(&control, 1) && in.take(&length, 2)) {
    length = static_cast<uint16_t>(std::min<size_t>(length, in.left));
    weft::Event e;
    e.kind = weft::EventKind::Data;
    e.cookie = cookie;
    e.pid = 42;
    e.tid = 43;
    e.comm = "fuzz";
    e.direction = static_cast<weft::Direction>(control & 1);
    int d = control & 1;
    e.stream_pos = pos[d];
    e.syscall_len = length;
    e.mono_ns = now += 1000;
    size_t captured = (control & 4) ? std::min<size_t>(length, (control >> 4) * 16u) : length;
    e.data.assign(in.p, in.p + captured);
    if (captured < length) e.flags |= WEFT_DATA_TRUNCATED;
    in.p += length;
    in.left -= length;
    pos[d] += length;
    if (!(control & 2)) tracker.on_event(e);
    if (tracker.memory_used() > config.memory_budget_bytes + (256u << 10)) std::abort();
    if (control & 8) {
      weft::Event close;
      close.kind = weft::EventKind::Close;
      close.cookie = cookie++;
      tracker.on_event(close);
      pos[0] = pos[1] = 0;
    }
  }
  tracker.close_all();
  if (tracker.connection_count() != 0) std::abort();
  return 0;
}
