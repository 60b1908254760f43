#include "net/span_facts.h"

namespace weft::net {
namespace {

double seconds(uint64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

trace::SpanEvent retransmit_event(const Retransmission& r, int64_t wall_offset_ns) {
  trace::SpanEvent ev;
  ev.time_ns = r.mono_ns + wall_offset_ns;
  ev.name = "tcp.retransmit";
  ev.attributes.push_back({"weft.tcp.seq", static_cast<int64_t>(r.seq)});
  ev.attributes.push_back({"weft.tcp.segments", static_cast<int64_t>(r.segs)});
  return ev;
}

}  // namespace

void annotate_span(const ExchangeFacts& facts, int64_t wall_offset_ns, trace::Span& span) {
  auto& attrs = span.attributes;
  if (facts.opened_connection) {
    attrs.push_back({"weft.tcp.connect.duration", seconds(facts.connect_duration_ns)});
    attrs.push_back(
        {"weft.tcp.connect.syn_retransmits", static_cast<int64_t>(facts.handshake_retransmits)});
  }
  if (facts.retransmitted_segments)
    attrs.push_back({"weft.tcp.retransmits", static_cast<int64_t>(facts.retransmitted_segments)});
  if (facts.has_receive_queue_wait)
    attrs.push_back({"weft.tcp.receive_queue.wait", seconds(facts.receive_queue_wait_ns)});
  if (facts.has_last_ack_wait)
    attrs.push_back({"weft.tcp.last_ack.wait", seconds(facts.last_ack_wait_ns)});
  if (facts.srtt_us) attrs.push_back({"weft.tcp.rtt", seconds(uint64_t{facts.srtt_us} * 1000)});
  for (const Retransmission& r : facts.retransmissions)
    span.events.push_back(retransmit_event(r, wall_offset_ns));
  if (!facts.zero_windows.empty())
    attrs.push_back({"weft.tcp.zero_windows", static_cast<int64_t>(facts.zero_windows.size())});
  for (uint64_t at : facts.zero_windows)
    span.events.push_back({static_cast<uint64_t>(at + wall_offset_ns), "tcp.zero_window", {}});
}

}  // namespace weft::net
