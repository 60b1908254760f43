#include "stream/message_framing.h"

#include <algorithm>

namespace weft::stream {

MessageTiming begin_message(const DataStream& stream) {
  ByteOrigin first = stream.origin_of(stream.head());
  MessageTiming t;
  t.start_ns = first.mono_ns;
  t.start_tid = first.tid;
  t.tcp_seq = first.tcp_seq;
  t.stream_pos = stream.head();
  return t;
}

void end_message(MessageTiming& timing, const DataStream& stream) {
  ByteOrigin last = stream.origin_of(stream.head() > 0 ? stream.head() - 1 : 0);
  timing.end_ns = std::max(last.mono_ns, timing.start_ns);
  timing.end_tid = last.tid;
}

uint64_t skip_unseen(DataStream& stream) {
  uint64_t gap = stream.skippable();
  if (gap > 0) stream.consume(gap);
  return gap;
}

}  // namespace weft::stream
