#include "capture/clock.h"

#include <time.h>

#include <limits>

namespace weft::capture {
namespace {

uint64_t read_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

uint64_t monotonic_now_ns() { return read_ns(CLOCK_MONOTONIC); }

int64_t measure_wall_offset_ns() {
  // The realtime read bracketed by the two closest monotonic reads wins.
  int64_t best_offset = 0;
  uint64_t best_gap = std::numeric_limits<uint64_t>::max();
  for (int i = 0; i < 8; ++i) {
    uint64_t before = read_ns(CLOCK_MONOTONIC);
    uint64_t wall = read_ns(CLOCK_REALTIME);
    uint64_t after = read_ns(CLOCK_MONOTONIC);
    if (after - before < best_gap) {
      best_gap = after - before;
      best_offset = static_cast<int64_t>(wall) - static_cast<int64_t>(before + (after - before) / 2);
    }
  }
  return best_offset;
}

}  // namespace weft::capture
