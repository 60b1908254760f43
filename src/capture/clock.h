#pragma once

#include <cstdint>

namespace weft::capture {

uint64_t monotonic_now_ns();

// Wall-clock time minus CLOCK_MONOTONIC (which bpf_ktime_get_ns reads), measured tightly so
// kernel timestamps convert to wall time within a few microseconds.
int64_t measure_wall_offset_ns();

}  // namespace weft::capture
