// Decoding ring records into an Event that is used again and again: the capture loop's path,
// which allocates nothing per event once the Event's payload buffer is large enough.
#pragma once

#include <span>
#include <string>

#include "weft/event.h"

namespace weft {

// As decode_event, into `event`: every field is overwritten (wall_ns and process are left for
// the caller) and its payload buffer keeps its capacity. On failure `event` is unspecified.
bool decode_event_into(std::span<const uint8_t> raw, Event& event, std::string* error);

}  // namespace weft
