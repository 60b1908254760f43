#include "protocols/http2/frame.h"

namespace weft::protocols::http2 {
namespace {

// The flags RFC 9113 defines per frame type (others must be ignored by receivers, but a guessed
// boundary that shows them is no frame boundary).
uint8_t defined_flags(FrameType type) {
  switch (type) {
    case FrameType::Data:
      return flags::kEndStream | flags::kPadded;
    case FrameType::Headers:
      return flags::kEndStream | flags::kEndHeaders | flags::kPadded | flags::kPriority;
    case FrameType::Settings:
    case FrameType::Ping:
      return flags::kAck;
    case FrameType::PushPromise:
      return flags::kEndHeaders | flags::kPadded;
    case FrameType::Continuation:
      return flags::kEndHeaders;
    default:
      return 0;
  }
}

// Stream and length rules of RFC 9113, section 6, per type.
bool shape_valid(const FrameHeader& h) {
  switch (h.kind()) {
    case FrameType::Data:
    case FrameType::Headers:
    case FrameType::Continuation:
    case FrameType::PushPromise:
      return h.stream != 0;
    case FrameType::Priority:
      return h.stream != 0 && h.length == 5;
    case FrameType::RstStream:
      return h.stream != 0 && h.length == 4;
    case FrameType::Settings:
      return h.stream == 0 && h.length % 6 == 0 && (!h.has(flags::kAck) || h.length == 0);
    case FrameType::Ping:
      return h.stream == 0 && h.length == 8;
    case FrameType::Goaway:
      return h.stream == 0 && h.length >= 8;
    case FrameType::WindowUpdate:
      return h.length == 4;
  }
  return false;
}

}  // namespace

FrameHeader parse_frame_header(std::span<const uint8_t> b) {
  FrameHeader h;
  h.length = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
  h.type = b[3];
  h.flags = b[4];
  h.reserved = (b[5] & 0x80) != 0;
  h.stream = (uint32_t{b[5] & 0x7fu} << 24) | (uint32_t{b[6]} << 16) | (uint32_t{b[7]} << 8) | b[8];
  return h;
}

bool plausible(const FrameHeader& h, Strictness strictness, uint32_t max_frame_size) {
  if (h.reserved) return false;
  if (strictness == Strictness::Guessed) {
    if (h.type > static_cast<uint8_t>(FrameType::Continuation)) return false;
    if (h.length > kDefaultMaxFrameSize) return false;
    if ((h.flags & ~defined_flags(h.kind())) != 0) return false;
    return shape_valid(h);
  }
  if (h.length > max_frame_size) return false;
  if (h.type > 0x10) return false;
  if (h.type > static_cast<uint8_t>(FrameType::Continuation)) return true;
  return shape_valid(h);
}

}  // namespace weft::protocols::http2
