// HTTP/1.0 and HTTP/1.1: registry entry points.
#pragma once

#include "protocols/protocol.h"

namespace weft::protocols::http1 {

Detection detect(std::span<const uint8_t> first_bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters,
                                                const RequestStartSink* on_request_start);

}  // namespace weft::protocols::http1
