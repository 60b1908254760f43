// Puts what the kernel's TCP did during an exchange on its span: documented weft.tcp.*
// attributes and one tcp.retransmit event per retransmission (docs/network.md).
#pragma once

#include <cstdint>

#include "net/tcp_facts.h"
#include "trace/span.h"

namespace weft::net {

// Nothing is added for an exchange the kernel did nothing notable to, beyond the RTT.
void annotate_span(const ExchangeFacts& facts, int64_t wall_offset_ns, trace::Span& span);

}  // namespace weft::net
