#include "trace/context.h"

#include <algorithm>

namespace weft::trace {
namespace {

int hex_value(char c, bool lowercase_only) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (!lowercase_only && c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exactly 2*n hex digits into n bytes.
bool parse_hex_exact(std::string_view text, uint8_t* out, size_t n, bool lowercase_only) {
  if (text.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    int hi = hex_value(text[2 * i], lowercase_only);
    int lo = hex_value(text[2 * i + 1], lowercase_only);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// 1 to 2*n hex digits, right-aligned into n bytes (shorter ids are left-padded with zeros).
bool parse_hex_padded(std::string_view text, uint8_t* out, size_t n) {
  if (text.empty() || text.size() > 2 * n) return false;
  std::string padded(2 * n - text.size(), '0');
  padded += text;
  return parse_hex_exact(padded, out, n, false);
}

template <size_t N>
bool valid_id(const std::array<uint8_t, N>& id) {
  return !is_zero(id.data(), N);
}

std::string_view view(const std::string* s) { return s ? std::string_view(*s) : std::string_view(); }

}  // namespace

std::string to_hex(const uint8_t* bytes, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return out;
}

bool is_zero(const uint8_t* bytes, size_t n) {
  return std::all_of(bytes, bytes + n, [](uint8_t b) { return b == 0; });
}

// version "-" trace-id "-" parent-id "-" trace-flags, lowercase hex. Version ff is invalid;
// version 00 has exactly these four fields; a higher version may append "-..." fields, which
// are ignored (forward compatibility as the specification asks).
std::optional<WireContext> parse_traceparent(std::string_view tp, std::string_view tracestate) {
  constexpr size_t kV0Length = 55;
  if (tp.size() < kV0Length) return std::nullopt;
  uint8_t version = 0;
  if (!parse_hex_exact(tp.substr(0, 2), &version, 1, true) || version == 0xff) return std::nullopt;
  if (version == 0 && tp.size() != kV0Length) return std::nullopt;
  if (version > 0 && tp.size() > kV0Length && tp[kV0Length] != '-') return std::nullopt;
  if (tp[2] != '-' || tp[35] != '-' || tp[52] != '-') return std::nullopt;
  WireContext ctx;
  uint8_t flags = 0;
  if (!parse_hex_exact(tp.substr(3, 32), ctx.trace_id.data(), 16, true) ||
      !parse_hex_exact(tp.substr(36, 16), ctx.span_id.data(), 8, true) ||
      !parse_hex_exact(tp.substr(53, 2), &flags, 1, true))
    return std::nullopt;
  if (!valid_id(ctx.trace_id) || !valid_id(ctx.span_id)) return std::nullopt;
  ctx.sampled = flags & 1;
  ctx.format = ContextFormat::W3C;
  if (!tracestate.empty() && valid_tracestate(tracestate)) ctx.tracestate = tracestate;
  return ctx;
}

bool valid_tracestate(std::string_view ts) {
  constexpr size_t kMaxMembers = 32;
  size_t members = 0;
  while (!ts.empty()) {
    size_t comma = ts.find(',');
    std::string_view member = ts.substr(0, comma);
    ts = comma == std::string_view::npos ? std::string_view() : ts.substr(comma + 1);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) member.remove_prefix(1);
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) member.remove_suffix(1);
    if (member.empty()) continue;  // empty list members are allowed
    size_t eq = member.find('=');
    if (eq == 0 || eq == std::string_view::npos || eq + 1 == member.size()) return false;
    std::string_view key = member.substr(0, eq);
    std::string_view value = member.substr(eq + 1);
    if (key.size() > 256 || value.size() > 256) return false;
    if (!((key[0] >= 'a' && key[0] <= 'z') || (key[0] >= '0' && key[0] <= '9'))) return false;
    for (char c : key)
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/' || c == '@'))
        return false;
    for (char c : value)
      if (c < 0x20 || c > 0x7e || c == ',' || c == '=') return false;
    if (++members > kMaxMembers) return false;
  }
  return true;
}

// {trace-id}-{span-id}[-{sampling}[-{parent-span-id}]] or a lone sampling decision.
std::optional<WireContext> parse_b3_single(std::string_view b3) {
  if (b3 == "0" || b3 == "1" || b3 == "d") return std::nullopt;  // a decision without ids
  size_t d1 = b3.find('-');
  if (d1 == std::string_view::npos) return std::nullopt;
  size_t d2 = b3.find('-', d1 + 1);
  std::string_view trace = b3.substr(0, d1);
  std::string_view span = b3.substr(d1 + 1, d2 == std::string_view::npos ? std::string_view::npos : d2 - d1 - 1);
  WireContext ctx;
  ctx.format = ContextFormat::B3Single;
  if ((trace.size() != 16 && trace.size() != 32) || !parse_hex_padded(trace, ctx.trace_id.data(), 16) ||
      !parse_hex_exact(span, ctx.span_id.data(), 8, false) || !valid_id(ctx.trace_id) || !valid_id(ctx.span_id))
    return std::nullopt;
  ctx.sampling_decided = false;
  if (d2 != std::string_view::npos) {
    size_t d3 = b3.find('-', d2 + 1);
    std::string_view sampling = b3.substr(d2 + 1, d3 == std::string_view::npos ? std::string_view::npos : d3 - d2 - 1);
    if (sampling != "0" && sampling != "1" && sampling != "d") return std::nullopt;
    ctx.sampled = sampling != "0";
    ctx.sampling_decided = true;
  }
  return ctx;
}

std::optional<WireContext> parse_b3_multi(std::string_view trace_id, std::string_view span_id,
                                          std::string_view sampled, std::string_view flags) {
  WireContext ctx;
  ctx.format = ContextFormat::B3Multi;
  if ((trace_id.size() != 16 && trace_id.size() != 32) || !parse_hex_padded(trace_id, ctx.trace_id.data(), 16) ||
      !parse_hex_exact(span_id, ctx.span_id.data(), 8, false) || !valid_id(ctx.trace_id) || !valid_id(ctx.span_id))
    return std::nullopt;
  bool yes = flags == "1" || sampled == "1" || sampled == "true";
  bool no = sampled == "0" || sampled == "false";
  ctx.sampling_decided = yes || no;  // anything else leaves the decision to the receiver
  ctx.sampled = yes;
  return ctx;
}

// {trace-id}:{span-id}:{parent-span-id}:{flags}, hex; ':' may arrive URL-encoded as %3A.
std::optional<WireContext> parse_uber_trace_id(std::string_view value) {
  std::string text(value);
  for (size_t at; (at = text.find("%3A")) != std::string::npos || (at = text.find("%3a")) != std::string::npos;)
    text.replace(at, 3, ":");
  std::string_view v = text;
  std::string_view parts[4];
  for (int i = 0; i < 4; ++i) {
    size_t colon = v.find(':');
    if ((colon == std::string_view::npos) != (i == 3)) return std::nullopt;
    parts[i] = v.substr(0, colon);
    v = colon == std::string_view::npos ? std::string_view() : v.substr(colon + 1);
  }
  WireContext ctx;
  ctx.format = ContextFormat::Jaeger;
  uint8_t flags = 0;
  if (!parse_hex_padded(parts[0], ctx.trace_id.data(), 16) || !parse_hex_padded(parts[1], ctx.span_id.data(), 8) ||
      !parse_hex_padded(parts[3], &flags, 1) || !valid_id(ctx.trace_id) || !valid_id(ctx.span_id))
    return std::nullopt;
  ctx.sampled = flags & 1;
  return ctx;
}

std::optional<WireContext> extract_context(const HeaderList& headers) {
  if (const std::string* tp = find_header(headers, "traceparent"))
    if (auto ctx = parse_traceparent(*tp, view(find_header(headers, "tracestate")))) return ctx;
  if (const std::string* b3 = find_header(headers, "b3"))
    if (auto ctx = parse_b3_single(*b3)) return ctx;
  if (const std::string* trace = find_header(headers, "x-b3-traceid"))
    if (auto ctx = parse_b3_multi(*trace, view(find_header(headers, "x-b3-spanid")), view(find_header(headers, "x-b3-sampled")),
                                  view(find_header(headers, "x-b3-flags"))))
      return ctx;
  if (const std::string* uber = find_header(headers, "uber-trace-id"))
    if (auto ctx = parse_uber_trace_id(*uber)) return ctx;
  return std::nullopt;
}

}  // namespace weft::trace
