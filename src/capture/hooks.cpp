#include "capture/hooks.h"

#include <bpf/btf.h>
#include <unistd.h>

#include "capture/tracefs.h"
#include "weft.skel.h"

namespace weft::capture {

const std::vector<HookSpec>& hook_table() {
  static const std::vector<HookSpec> table = {
      {"data__send", "tp_btf/sock_send_length", true, false,
       "bytes sent on TCP sockets: payload prefix, count, position, sequence number",
       "no outgoing data: nothing can be traced",
       [](weft_bpf* s) { return s->progs.data__send; }},
      {"data__recv", "tp_btf/sock_recv_length", true, false,
       "bytes received on TCP sockets: payload prefix, count, position, sequence number",
       "no incoming data: nothing can be traced",
       [](weft_bpf* s) { return s->progs.data__recv; }},
      {"conn__state", "tp_btf/inet_sock_set_state", true, false,
       "connect start and result, client/server role, close with byte totals",
       "no roles, connect results or closes; connection state leaks",
       [](weft_bpf* s) { return s->progs.conn__state; }},
      {"tcp__retransmit", "tp_btf/tcp_retransmit_skb", false, false,
       "TCP retransmissions (SYN and data) with their sequence range, RTT and counters",
       "no retransmissions per connection or span (docs/network.md)",
       [](weft_bpf* s) { return s->progs.tcp__retransmit; }},
      {"tcp__send_reset", "tp_btf/tcp_send_reset", false, false,
       "resets sent on a traced connection", "no resets sent per connection or span",
       [](weft_bpf* s) { return s->progs.tcp__send_reset; }},
      {"tcp__receive_reset", "tp_btf/tcp_receive_reset", false, false,
       "resets received on a traced connection", "no resets received per connection or span",
       [](weft_bpf* s) { return s->progs.tcp__receive_reset; }},
      {"tcp__data_ready", "tp_btf/sk_data_ready", false, false,
       "when a server's request bytes arrived, for the time they waited before the read",
       "no receive-queue wait on server spans",
       [](weft_bpf* s) { return s->progs.tcp__data_ready; }, SegmentHook::ReceiveQueueWait},
      {"tcp__acked", "tp_btf/tcp_probe", false, false,
       "when a server's response was fully acknowledged (an ACK leaving nothing in flight); "
       "zero windows the peer advertised",
       "no last-ACK wait on server spans, no zero-window events",
       [](weft_bpf* s) { return s->progs.tcp__acked; }, SegmentHook::AckWait},
      {"conn__accept4", "tracepoint/syscalls/sys_exit_accept4", false, true,
       "accept4() returning a TCP socket: accepting pid, tid and fd",
       "exact accept4() times; accepts are reported at the server's first bytes instead",
       [](weft_bpf* s) { return s->progs.conn__accept4; }},
      {"conn__accept", "tracepoint/syscalls/sys_exit_accept", false, true,
       "accept() returning a TCP socket: accepting pid, tid and fd",
       "exact accept() times; accepts are reported at the server's first bytes instead",
       [](weft_bpf* s) { return s->progs.conn__accept; }},
      {"proc__exec", "tp_btf/sched_process_exec", false, false,
       "process starts: TLS libraries of new processes are found as their loader maps them",
       "a TLS library only new processes map is hooked at the next /proc rescan (10 s)",
       [](weft_bpf* s) { return s->progs.proc__exec; }},
      {"proc__exit", "tp_btf/sched_process_exit", false, false,
       "process exits: exited processes are forgotten at once",
       "exited processes are forgotten at the next /proc rescan (10 s)",
       [](weft_bpf* s) { return s->progs.proc__exit; }},
  };
  return table;
}

const HookSpec* find_hook(std::string_view name) {
  for (const HookSpec& spec : hook_table())
    if (spec.program == name || spec.attach == name) return &spec;
  return nullptr;
}

const char* to_string(HookState state) {
  switch (state) {
    case HookState::Attached: return "attached";
    case HookState::Unavailable: return "unavailable";
    case HookState::Failed: return "failed";
    case HookState::Skipped: return "skipped";
  }
  return "?";
}

bool attach_point_exists(std::string_view attach, std::string* why) {
  constexpr std::string_view kBtf = "tp_btf/";
  constexpr std::string_view kTracepoint = "tracepoint/";
  if (attach.starts_with(kBtf)) {
    std::string name = "btf_trace_" + std::string(attach.substr(kBtf.size()));
    btf* vmlinux = btf__load_vmlinux_btf();
    if (!vmlinux) {
      *why = "kernel BTF (/sys/kernel/btf/vmlinux) is not available";
      return false;
    }
    bool found = btf__find_by_name_kind(vmlinux, name.c_str(), BTF_KIND_TYPEDEF) >= 0;
    btf__free(vmlinux);
    if (!found) *why = "this kernel has no tracepoint " + std::string(attach.substr(kBtf.size()));
    return found;
  }
  if (attach.starts_with(kTracepoint)) {
    std::string event(attach.substr(kTracepoint.size()));
    std::string dir = tracefs_root() + "/events/" + event;
    if (access(dir.c_str(), F_OK) != 0) {
      *why = "tracepoint " + event + " not found under " + tracefs_root() + "/events";
      return false;
    }
    return true;
  }
  *why = "unknown attach kind";
  return false;
}

}  // namespace weft::capture
