#include "export/otlp_encoding.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

namespace weft::exporter {

static_assert(std::endian::native == std::endian::little,
              "protobuf's fixed-width fields are little-endian: written with memcpy");

void EncodeBuffer::grow(size_t n) {
  size_t capacity = std::max({capacity_ * 2, size_ + n, size_t{64} << 10});
  auto bigger = std::make_unique<char[]>(capacity);
  if (size_) std::memcpy(bigger.get(), data_.get(), size_);
  data_ = std::move(bigger);
  capacity_ = capacity;
}

// --- grouping ---

void ResourceGroups::clear() {
  resources_.clear();
  if (!index_.empty()) index_.clear();
  tagged_.clear();
  groups_.clear();
  spans_.clear();
}

uint32_t ResourceGroups::index_of(const trace::Resource* resource) {
  // A batch comes from a handful of processes: a scan beats hashing until there are many.
  constexpr size_t kScanned = 8;
  auto count = static_cast<uint32_t>(resources_.size());
  if (count <= kScanned) {
    for (uint32_t i = 0; i < count; ++i)
      if (resources_[i] == resource) return i;
    resources_.push_back(resource);
    if (resources_.size() > kScanned)
      for (uint32_t i = 0; i <= count; ++i) index_.emplace(resources_[i], i);
    return count;
  }
  auto [it, fresh] = index_.try_emplace(resource, count);
  if (fresh) resources_.push_back(resource);
  return it->second;
}

void ResourceGroups::add(const trace::Trace& trace) {
  for (const auto& s : trace.spans) tagged_.emplace_back(index_of(s.resource.get()), &s);
}

// A counting sort by resource: stable, so each group keeps the batch's order.
void ResourceGroups::finish() {
  groups_.assign(resources_.size(), Group{nullptr, 0, 0});
  for (const auto& [index, span] : tagged_) ++groups_[index].end;
  size_t at = 0;
  for (size_t i = 0; i < groups_.size(); ++i) {
    size_t n = groups_[i].end;
    groups_[i] = {resources_[i], at, at};
    at += n;
  }
  spans_.resize(tagged_.size());
  for (const auto& [index, span] : tagged_) spans_[groups_[index].end++] = span;
}

void ResourceGroups::assign(const std::vector<trace::Trace>& batch) {
  clear();
  for (const auto& t : batch) add(t);
  finish();
}

void ResourceGroups::assign(const trace::Trace& trace) {
  clear();
  add(trace);
  finish();
}

namespace {

// --- text ---

// The well-formed UTF-8 sequence at p[0] >= 0x80 (Unicode's table 3-7), or the maximal prefix
// of one that is ill-formed: that prefix becomes one U+FFFD and decoding goes on after it, so
// the byte that broke the sequence is read again (what nlohmann::json's replacement, which
// weft used before, also does).
struct Utf8Step {
  size_t length;
  bool valid;
};

Utf8Step utf8_step(const unsigned char* p, const unsigned char* end) {
  unsigned c = p[0];
  size_t need = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, false};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (p + k == end || p[k] < lo || p[k] > hi) return {k, false};
    lo = 0x80;
    hi = 0xBF;
  }
  return {need + 1, true};
}

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

template <typename T>
T load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Most strings in a span are short (keys, methods, ports): words that overlap instead of a
// byte loop, and no call into memcpy.
bool ascii(std::string_view s) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t high = 0;
  if (n >= 8) {
    for (; n > 8; p += 8, n -= 8) high |= load<uint64_t>(p);
    high |= load<uint64_t>(p + n - 8);
  } else if (n >= 4) {
    high = load<uint32_t>(p) | load<uint32_t>(p + n - 4);
  } else {
    for (; n; ++p, --n) high |= static_cast<unsigned char>(*p);
  }
  return (high & 0x8080808080808080ull) == 0;
}

char* copy(char* to, const char* from, size_t n) {
  if (n > 16) {
    std::memcpy(to, from, n);
  } else if (n >= 8) {
    uint64_t head = load<uint64_t>(from), tail = load<uint64_t>(from + n - 8);
    std::memcpy(to, &head, 8);
    std::memcpy(to + n - 8, &tail, 8);
  } else if (n >= 4) {
    uint32_t head = load<uint32_t>(from), tail = load<uint32_t>(from + n - 4);
    std::memcpy(to, &head, 4);
    std::memcpy(to + n - 4, &tail, 4);
  } else {
    for (size_t i = 0; i < n; ++i) to[i] = from[i];
  }
  return to + n;
}

// Copies `s` as UTF-8, ill-formed sequences replaced: at most 3 bytes per input byte.
char* put_utf8(char* p, std::string_view s) {
  auto* in = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = in + s.size();
  while (in < end) {
    if (*in < 0x80) {
      *p++ = static_cast<char>(*in++);
      continue;
    }
    Utf8Step step = utf8_step(in, end);
    if (step.valid) {
      std::memcpy(p, in, step.length);
      p += step.length;
    } else {
      std::memcpy(p, kReplacement, 3);
      p += 3;
    }
    in += step.length;
  }
  return p;
}

// --- protobuf wire format ---

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

constexpr char tag(uint32_t field, WireType type) {
  return static_cast<char>(field << 3 | type);  // fields below 16: one byte
}

size_t varint_size(uint64_t v) {
  return static_cast<size_t>(std::bit_width(v | 1) + 6) / 7;
}

char* put_varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

template <typename T>
char* put_fixed(char* p, T v) {
  std::memcpy(p, &v, sizeof(v));
  return p + sizeof(v);
}

// A length-delimited field's length goes before its contents, which are written first after
// `reserved` bytes left for it; the contents move when the length needs another size.
char* close_len(char* len_at, char* end, size_t reserved) {
  size_t len = static_cast<size_t>(end - len_at) - reserved;
  size_t n = varint_size(len);
  if (n != reserved) {
    std::memmove(len_at + n, len_at + reserved, len);
    end = len_at + n + len;
  }
  put_varint(len_at, len);
  return end;
}

// A string field with presence (a oneof member): written even when empty. At most 5 + 3 * size.
char* put_string_always(char* p, char field_tag, std::string_view s) {
  *p++ = field_tag;
  if (ascii(s)) return copy(put_varint(p, s.size()), s.data(), s.size());
  char* len_at = p;
  size_t reserved = varint_size(s.size());  // replacements only lengthen it
  return close_len(len_at, put_utf8(p + reserved, s), reserved);
}

// A plain proto3 string field: absent when empty.
char* put_string(char* p, char field_tag, std::string_view s) {
  return s.empty() ? p : put_string_always(p, field_tag, s);
}

size_t string_bound(std::string_view s) {
  return 6 + 3 * s.size();
}

size_t value_bound(const AttributeValue& v) {
  const auto* text = std::get_if<std::string>(&v);
  return text ? string_bound(*text) : 11;
}

size_t key_value_bound(const Attribute& a) {
  return 12 + string_bound(a.key) + value_bound(a.value);
}

// common.proto KeyValue {1: key, 2: AnyValue value}, as field `field_tag` of its parent.
char* put_key_value(char* p, char field_tag, const Attribute& a) {
  *p++ = field_tag;
  char* kv_len = p++;  // one byte: most attributes are shorter than 128 bytes
  std::string_view key = a.key;
  if (!a.key.plain()) {
    p = put_string(p, tag(1, kLen), key);
  } else if (!key.empty()) {  // a name from the code: ASCII (checked when compiled)
    *p++ = tag(1, kLen);
    p = copy(put_varint(p, key.size()), key.data(), key.size());
  }
  *p++ = tag(2, kLen);
  char* value_len = p++;
  // AnyValue {1: string, 2: bool, 3: int64, 4: double}: a oneof, written even when zero.
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          p = put_string_always(p, tag(1, kLen), v);
        } else if constexpr (std::is_same_v<T, bool>) {
          *p++ = tag(2, kVarint);
          *p++ = v ? 1 : 0;
        } else if constexpr (std::is_same_v<T, int64_t>) {
          *p++ = tag(3, kVarint);
          p = put_varint(p, static_cast<uint64_t>(v));
        } else {
          *p++ = tag(4, kFixed64);
          p = put_fixed(p, std::bit_cast<uint64_t>(v));
        }
      },
      a.value);
  p = close_len(value_len, p, 1);
  return close_len(kv_len, p, 1);
}

// OTLP span flags: the W3C trace flags (sampled) in the low byte, then "whether the parent is
// remote is known" and "it is": a parent that came over the wire is remote.
uint32_t span_flags(const trace::Span& s) {
  return (s.sampled ? 0x01u : 0u) | 0x100u | (s.has_parent() && s.wire ? 0x200u : 0u);
}

size_t span_bound(const trace::Span& s) {
  size_t n = 128 + string_bound(s.tracestate) + string_bound(s.name);
  for (const auto& a : s.attributes) n += key_value_bound(a);
  for (const auto& ev : s.events) {
    n += 16 + string_bound(ev.name);
    for (const auto& a : ev.attributes) n += key_value_bound(a);
  }
  return n;
}

// trace.proto Span.Event, as Span field 11: {1: time, 2: name, 3: attributes}.
char* put_span_event(char* p, const trace::SpanEvent& ev) {
  *p++ = tag(11, kLen);
  char* len_at = p;
  p += 2;  // an event with a few attributes stays below 16 KiB
  *p++ = tag(1, kFixed64);
  p = put_fixed(p, ev.time_ns);
  p = put_string(p, tag(2, kLen), ev.name);
  for (const auto& a : ev.attributes) p = put_key_value(p, tag(3, kLen), a);
  return close_len(len_at, p, 2);
}

// trace.proto Span, as ScopeSpans field 2.
char* put_span(char* p, const trace::Span& s) {
  *p++ = tag(2, kLen);
  char* len_at = p;
  p += 2;  // most spans are 128 bytes to 16 KiB
  *p++ = tag(1, kLen);
  *p++ = 16;
  p = std::copy(s.trace_id.begin(), s.trace_id.end(), p);
  *p++ = tag(2, kLen);
  *p++ = 8;
  p = std::copy(s.span_id.begin(), s.span_id.end(), p);
  p = put_string(p, tag(3, kLen), s.tracestate);
  if (s.has_parent()) {
    *p++ = tag(4, kLen);
    *p++ = 8;
    p = std::copy(s.parent_span_id.begin(), s.parent_span_id.end(), p);
  }
  p = put_string(p, tag(5, kLen), s.name);
  *p++ = tag(6, kVarint);
  p = put_varint(p, static_cast<uint64_t>(s.kind));  // never 0 (unspecified)
  if (s.start_ns) {
    *p++ = tag(7, kFixed64);
    p = put_fixed(p, s.start_ns);
  }
  if (s.end_ns) {
    *p++ = tag(8, kFixed64);
    p = put_fixed(p, s.end_ns);
  }
  for (const auto& a : s.attributes) p = put_key_value(p, tag(9, kLen), a);
  for (const auto& ev : s.events) p = put_span_event(p, ev);
  if (s.status != trace::StatusCode::Unset) {  // Status {3: code}; no message
    *p++ = tag(15, kLen);
    *p++ = 2;
    *p++ = tag(3, kVarint);
    *p++ = static_cast<char>(s.status);
  }
  *p++ = static_cast<char>(0x85);  // field 16, fixed32: a two-byte tag (133 as a varint)
  *p++ = 0x01;
  p = put_fixed(p, span_flags(s));
  return close_len(len_at, p, 2);
}

bool has_key(const trace::Resource* r, std::string_view key) {
  if (!r) return false;
  return std::any_of(r->attributes.begin(), r->attributes.end(),
                     [&](const Attribute& a) { return a.key == key; });
}

// Calls f(attribute) for the process's attributes, then the extras it does not have itself.
template <typename F>
void for_each_resource_attribute(const trace::Resource* r, const ResourceExtras& extras, F&& f) {
  if (r)
    for (const auto& a : r->attributes) f(a);
  for (const auto& a : extras)
    if (!has_key(r, a.key)) f(a);
}

// A length-delimited field whose contents are written in several reservations: its length's
// place is kept as an offset, since the buffer may move.
class OpenField {
 public:
  static constexpr size_t kReserved = 3;  // up to 2 MiB without moving the contents
  OpenField(EncodeBuffer& out, char field_tag) : out_(out) {
    char* p = out.reserve(1 + kReserved);
    *p++ = field_tag;
    at_ = static_cast<size_t>(p - out.data());
    out.commit(p + kReserved);
  }
  void close() {
    char* end = out_.reserve(10);
    out_.commit(close_len(out_.data() + at_, end, kReserved));
  }

 private:
  EncodeBuffer& out_;
  size_t at_;
};

const std::string& scope_bytes() {
  // InstrumentationScope {1: name, 2: version}, as ScopeSpans field 1.
  static const std::string bytes = [] {
    std::string name = "weft", version = WEFT_VERSION;
    std::string scope;
    scope += tag(1, kLen);
    scope += static_cast<char>(name.size());
    scope += name;
    scope += tag(2, kLen);
    scope += static_cast<char>(version.size());
    scope += version;
    return tag(1, kLen) + std::string(1, static_cast<char>(scope.size())) + scope;
  }();
  return bytes;
}

void put_resource(const trace::Resource* r, const ResourceExtras& extras, EncodeBuffer& out) {
  size_t bound = 16;
  for_each_resource_attribute(r, extras, [&](const Attribute& a) { bound += key_value_bound(a); });
  char* p = out.reserve(bound);
  *p++ = tag(1, kLen);  // ResourceSpans.resource: present even without attributes
  char* len_at = p;
  p += 2;
  for_each_resource_attribute(r, extras,
                              [&](const Attribute& a) { p = put_key_value(p, tag(1, kLen), a); });
  out.commit(close_len(len_at, p, 2));
}

// --- JSON ---

template <size_t N>
char* put(char* p, const char (&literal)[N]) {
  std::memcpy(p, literal, N - 1);
  return p + N - 1;
}

char* put(char* p, std::string_view s) {
  return copy(p, s.data(), s.size());
}

// What a byte needs inside a JSON string: 0 nothing, 1 a short escape, 2 \u00XX, 3 UTF-8 check.
constexpr auto kJsonClass = [] {
  std::array<uint8_t, 256> c{};
  for (int i = 0; i < 0x20; ++i) c[i] = 2;
  for (int i : {'\b', '\t', '\n', '\f', '\r', '"', '\\'}) c[i] = 1;
  for (int i = 0x80; i < 0x100; ++i) c[i] = 3;
  return c;
}();

// Eight bytes at a time while none needs attention (no control byte, '"', '\\' or non-ASCII):
// nearly every attribute is plain ASCII, and the byte-by-byte table walk was the encoder's
// largest cost (~4 instructions per byte).
const unsigned char* skip_plain_json(const unsigned char* in, const unsigned char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  auto has_zero_byte = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  while (end - in >= 8) {
    uint64_t w;
    std::memcpy(&w, in, 8);
    uint64_t special = (w & kHigh) |                        // non-ASCII
                       ((w - kOnes * 0x20) & ~w & kHigh) |  // below 0x20
                       has_zero_byte(w ^ (kOnes * '"')) | has_zero_byte(w ^ (kOnes * '\\'));
    if (special) break;
    in += 8;
  }
  while (in < end && kJsonClass[*in] == 0) ++in;
  return in;
}

char short_escape(unsigned char c) {
  switch (c) {
    case '\b':
      return 'b';
    case '\t':
      return 't';
    case '\n':
      return 'n';
    case '\f':
      return 'f';
    case '\r':
      return 'r';
    default:
      return static_cast<char>(c);  // '"' and '\\'
  }
}

// A JSON string (RFC 8259), quotes included: at most 2 + 6 * size bytes.
char* put_json_string(char* p, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  *p++ = '"';
  auto* in = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = in + s.size();
  while (in < end) {
    const auto* plain = in;
    in = skip_plain_json(in, end);
    p = copy(p, reinterpret_cast<const char*>(plain), static_cast<size_t>(in - plain));
    if (in == end) break;
    unsigned char c = *in;
    switch (kJsonClass[c]) {
      case 1:
        *p++ = '\\';
        *p++ = short_escape(c);
        ++in;
        break;
      case 2:
        p = put(p, "\\u00");
        *p++ = kHex[c >> 4];
        *p++ = kHex[c & 15];
        ++in;
        break;
      default: {
        Utf8Step step = utf8_step(in, end);
        p = step.valid ? put(p, std::string_view(reinterpret_cast<const char*>(in), step.length))
                       : put(p, kReplacement);
        in += step.length;
      }
    }
  }
  *p++ = '"';
  return p;
}

size_t json_string_bound(std::string_view s) {
  return 2 + 6 * s.size();
}

char* put_hex(char* p, const uint8_t* bytes, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  *p++ = '"';
  for (size_t i = 0; i < n; ++i) {
    *p++ = kHex[bytes[i] >> 4];
    *p++ = kHex[bytes[i] & 15];
  }
  *p++ = '"';
  return p;
}

template <typename T>
char* put_integer(char* p, T v) {
  return std::to_chars(p, p + 24, v).ptr;
}

// The shortest text that reads back as `v`, laid out as nlohmann::json (weft's JSON library
// before) laid it out: a decimal point always, exponents beyond 1e-5 and 1e15 ("1e+16").
// Protobuf's JSON mapping writes what JSON numbers cannot hold as strings. At most 32 bytes.
char* put_double(char* p, double v) {
  if (std::isnan(v)) return put(p, "\"NaN\"");
  if (std::isinf(v)) return v > 0 ? put(p, "\"Infinity\"") : put(p, "\"-Infinity\"");
  if (std::signbit(v)) {
    *p++ = '-';
    v = -v;
  }
  if (v == 0) return put(p, "0.0");
  char text[32];
  char* end = std::to_chars(text, text + sizeof(text), v, std::chars_format::scientific).ptr;
  // text: d[.ddd]e±XX
  char digits[24];
  int k = 0;
  const char* c = text;
  for (; *c != 'e'; ++c)
    if (*c != '.') digits[k++] = *c;
  int exponent = 0;
  std::from_chars(c + 1 + (c[1] == '+'), end, exponent);
  int n = exponent + 1;  // where the decimal point goes, counted from the first digit
  constexpr int kMinExp = -4, kMaxExp = 15;
  if (k <= n && n <= kMaxExp) {  // digits[000].0
    p = put(p, std::string_view(digits, k));
    p = std::fill_n(p, n - k, '0');
    return put(p, ".0");
  }
  if (0 < n && n <= kMaxExp) {  // dig.its
    p = put(p, std::string_view(digits, n));
    *p++ = '.';
    return put(p, std::string_view(digits + n, k - n));
  }
  if (kMinExp < n && n <= 0) {  // 0.[000]digits
    p = put(p, "0.");
    p = std::fill_n(p, -n, '0');
    return put(p, std::string_view(digits, k));
  }
  *p++ = digits[0];  // d[.igits]e±XX
  if (k > 1) {
    *p++ = '.';
    p = put(p, std::string_view(digits + 1, k - 1));
  }
  int e = n - 1;
  *p++ = 'e';
  *p++ = e < 0 ? '-' : '+';
  e = std::abs(e);
  if (e < 10) *p++ = '0';
  return put_integer(p, e);
}

char* put_json_value(char* p, const AttributeValue& value) {
  return std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) {
          p = put(p, "{\"stringValue\":");
          p = put_json_string(p, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          p = put(p, v ? "{\"boolValue\":true" : "{\"boolValue\":false");
        } else if constexpr (std::is_same_v<T, int64_t>) {
          p = put(p, "{\"intValue\":\"");
          p = put_integer(p, v);
          *p++ = '"';
        } else {
          p = put(p, "{\"doubleValue\":");
          p = put_double(p, v);
        }
        *p++ = '}';
        return p;
      },
      value);
}

size_t json_attribute_bound(const Attribute& a) {
  const auto* text = std::get_if<std::string>(&a.value);
  return 64 + json_string_bound(a.key) + (text ? json_string_bound(*text) : 32);
}

char* put_json_attribute(char* p, const Attribute& a) {
  p = put(p, "{\"key\":");
  if (a.key.plain()) {  // a name from the code: nothing to escape or validate
    *p++ = '"';
    p = copy(p, a.key.view().data(), a.key.view().size());
    *p++ = '"';
  } else {
    p = put_json_string(p, a.key);
  }
  p = put(p, ",\"value\":");
  p = put_json_value(p, a.value);
  *p++ = '}';
  return p;
}

size_t json_span_bound(const trace::Span& s) {
  size_t n = 384 + json_string_bound(s.name) + json_string_bound(s.tracestate);
  for (const auto& a : s.attributes) n += json_attribute_bound(a);
  for (const auto& ev : s.events) {
    n += 64 + json_string_bound(ev.name);
    for (const auto& a : ev.attributes) n += json_attribute_bound(a);
  }
  return n;
}

char* put_json_span_events(char* p, const std::vector<trace::SpanEvent>& events) {
  p = put(p, ",\"events\":[");
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) *p++ = ',';
    p = put(p, "{\"attributes\":[");
    for (size_t j = 0; j < events[i].attributes.size(); ++j) {
      if (j) *p++ = ',';
      p = put_json_attribute(p, events[i].attributes[j]);
    }
    p = put(p, "],\"name\":");
    p = put_json_string(p, events[i].name);
    p = put(p, ",\"timeUnixNano\":\"");
    p = put_integer(p, events[i].time_ns);
    p = put(p, "\"}");
  }
  *p++ = ']';
  return p;
}

char* put_json_span(char* p, const trace::Span& s) {
  p = put(p, "{\"attributes\":[");
  for (size_t i = 0; i < s.attributes.size(); ++i) {
    if (i) *p++ = ',';
    p = put_json_attribute(p, s.attributes[i]);
  }
  *p++ = ']';
  p = put(p, ",\"endTimeUnixNano\":\"");
  p = put_integer(p, s.end_ns);
  p = put(p, "\"");
  if (!s.events.empty()) p = put_json_span_events(p, s.events);
  p = put(p, ",\"flags\":");
  p = put_integer(p, span_flags(s));
  p = put(p, ",\"kind\":");
  p = put_integer(p, static_cast<int>(s.kind));
  p = put(p, ",\"name\":");
  p = put_json_string(p, s.name);
  if (s.has_parent()) {
    p = put(p, ",\"parentSpanId\":");
    p = put_hex(p, s.parent_span_id.data(), s.parent_span_id.size());
  }
  p = put(p, ",\"spanId\":");
  p = put_hex(p, s.span_id.data(), s.span_id.size());
  p = put(p, ",\"startTimeUnixNano\":\"");
  p = put_integer(p, s.start_ns);
  p = put(p, "\",\"status\":{");
  if (s.status != trace::StatusCode::Unset) {
    p = put(p, "\"code\":");
    p = put_integer(p, static_cast<int>(s.status));
  }
  p = put(p, "},\"traceId\":");
  p = put_hex(p, s.trace_id.data(), s.trace_id.size());
  if (!s.tracestate.empty()) {
    p = put(p, ",\"traceState\":");
    p = put_json_string(p, s.tracestate);
  }
  *p++ = '}';
  return p;
}

void put_json_resource(const trace::Resource* r, const ResourceExtras& extras, EncodeBuffer& out) {
  size_t bound = 64;
  for_each_resource_attribute(r, extras,
                              [&](const Attribute& a) { bound += json_attribute_bound(a); });
  char* p = out.reserve(bound);
  p = put(p, "{\"resource\":{\"attributes\":[");
  bool first = true;
  for_each_resource_attribute(r, extras, [&](const Attribute& a) {
    if (!first) *p++ = ',';
    first = false;
    p = put_json_attribute(p, a);
  });
  p = put(p, "]},\"scopeSpans\":[");
  out.commit(p);
}

std::string json_quoted(std::string_view s) {
  std::string out(json_string_bound(s), '\0');
  out.resize(static_cast<size_t>(put_json_string(out.data(), s) - out.data()));
  return out;
}

const std::string& json_scope() {
  static const std::string text =
      "{\"scope\":{\"name\":\"weft\",\"version\":" + json_quoted(WEFT_VERSION) + "},\"spans\":[";
  return text;
}

}  // namespace

void append_otlp_protobuf(const ResourceGroups& groups, const ResourceExtras& extras,
                          EncodeBuffer& out) {
  const auto& spans = groups.spans();
  for (const auto& g : groups.groups()) {
    OpenField resource_spans(out, tag(1, kLen));  // ExportTraceServiceRequest.resource_spans
    put_resource(g.resource, extras, out);
    OpenField scope_spans(out, tag(2, kLen));  // ResourceSpans.scope_spans
    const std::string& scope = scope_bytes();
    out.commit(put(out.reserve(scope.size()), scope));
    for (size_t i = g.begin; i < g.end; ++i)
      out.commit(put_span(out.reserve(span_bound(*spans[i])), *spans[i]));
    scope_spans.close();
    resource_spans.close();
  }
}

void append_otlp_json(const ResourceGroups& groups, const ResourceExtras& extras,
                      EncodeBuffer& out) {
  const auto& spans = groups.spans();
  out.commit(put(out.reserve(20), "{\"resourceSpans\":["));
  for (size_t g = 0; g < groups.groups().size(); ++g) {
    const auto& group = groups.groups()[g];
    if (g) out.commit(put(out.reserve(1), ","));
    put_json_resource(group.resource, extras, out);
    const std::string& scope = json_scope();
    out.commit(put(out.reserve(scope.size()), scope));
    for (size_t i = group.begin; i < group.end; ++i) {
      char* p = out.reserve(1 + json_span_bound(*spans[i]));
      if (i != group.begin) *p++ = ',';
      out.commit(put_json_span(p, *spans[i]));
    }
    out.commit(put(out.reserve(4), "]}]}"));
  }
  out.commit(put(out.reserve(2), "]}"));
}

}  // namespace weft::exporter
