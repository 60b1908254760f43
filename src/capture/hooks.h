// The one table of kernel hooks weft uses: what each gives and what is lost without it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

struct bpf_program;
struct weft_bpf;

namespace weft::capture {

// A hook that runs for every segment arriving on any socket, and the option that turns it on.
enum class SegmentHook : uint8_t { No, ReceiveQueueWait, AckWait };

struct HookSpec {
  std::string_view program;  // BPF program name (module__action)
  std::string_view attach;   // "tp_btf/<event>" or "tracepoint/<category>/<event>"
  bool required;
  // A syscall tracepoint: enabling it puts every syscall of every process on the slow path.
  bool costs_every_syscall;
  std::string_view provides;
  std::string_view lost_without;
  bpf_program* (*find)(weft_bpf*);
  // Runs for every segment that arrives on any socket: off unless its option is given.
  SegmentHook costs_every_segment = SegmentHook::No;
};

const std::vector<HookSpec>& hook_table();
// The hook with this program name (e.g. conn__accept4) or attach point, or null.
const HookSpec* find_hook(std::string_view name);

enum class HookState { Attached, Unavailable, Failed, Skipped };

struct HookStatus {
  const HookSpec* spec;
  HookState state;
  std::string detail;  // why it is not attached
};

const char* to_string(HookState state);

// Whether the running kernel has the attach point at all (checked before loading, so a
// missing optional hook does not stop the others from loading).
bool attach_point_exists(std::string_view attach, std::string* why);

}  // namespace weft::capture
