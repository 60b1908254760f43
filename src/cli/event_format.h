// How events look to people (one line each) and to programs (one JSON object per line).
#pragma once

#include <string>

#include "weft/event.h"

namespace weft::cli {

std::string format_event_text(const Event& event);
std::string format_event_json(const Event& event);
std::string base64_encode(const std::vector<uint8_t>& bytes);
// "13:20:29.916578", or with iso "2026-11-22T13:20:29.916578123Z".
std::string format_wall_time(uint64_t wall_ns, bool iso);

}  // namespace weft::cli
