// Framing steps every protocol parser takes on a DataStream, written once: where a message
// starts and ends in kernel time, skipping bytes that will never be seen, and giving up on
// holes once the other direction shows the conversation moved on.
#pragma once

#include "stream/data_stream.h"
#include "weft/exchange.h"

namespace weft::stream {

// The timing of a message whose first byte is at the stream's head.
MessageTiming begin_message(const DataStream& stream);
// Ends `timing` at the byte just before the head (the message's last byte, just consumed).
void end_message(MessageTiming& timing, const DataStream& stream);
// Consumes bytes at the head that will never be seen (uncaptured, lost): how many, 0 when there
// are none or a hole might still be filled. Only call with nothing readable at the head.
uint64_t skip_unseen(DataStream& stream);
// The peer answered: it has read past every hole that exists now in this direction, so they
// are final (messages stuck behind one would otherwise wait for bytes that never come).
inline void peer_moved_on(DataStream& stream) {
  stream.settle_existing_holes();
}
// The direction stopped being the protocol (TLS ciphertext after an SSL request, a MONITOR
// feed): consumes everything there is, seen or not, so nothing waits on it.
inline void drain(DataStream& stream) {
  for (;;) {
    uint64_t n = stream.readable().empty() ? stream.skippable() : stream.readable().size();
    if (n == 0) return;
    stream.consume(n);
  }
}

}  // namespace weft::stream
