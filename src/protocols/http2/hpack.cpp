#include "protocols/http2/hpack.h"

#include <algorithm>
#include <array>
#include <optional>

#include "protocols/http2/huffman_table.h"

namespace weft::protocols::http2 {
namespace {

// RFC 7541, Appendix A.
struct StaticEntry {
  std::string_view name;
  std::string_view value;
};
constexpr StaticEntry kStaticTable[] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};
constexpr uint64_t kStaticCount = std::size(kStaticTable);

// Integers beyond this are no header a peer sends (and would overflow the arithmetic).
constexpr uint64_t kMaxInteger = 1u << 28;

// The canonical form of the Huffman code: per length, the first code and where its symbols
// start among the symbols sorted by (length, symbol). RFC 7541's code is canonical in symbol
// order, which the unit tests check by decoding every symbol.
struct CanonicalCode {
  std::array<uint32_t, 32> first{};
  std::array<uint32_t, 32> count{};
  std::array<uint32_t, 32> offset{};
  std::array<uint8_t, 256> symbols{};
};

CanonicalCode make_canonical() {
  CanonicalCode c;
  for (uint8_t len : kHuffmanLengths) ++c.count[len];
  uint32_t n = 0;
  for (uint32_t len = 1; len < 32; ++len) {
    c.offset[len] = n;
    for (uint32_t sym = 0; sym < 256; ++sym)
      if (kHuffmanLengths[sym] == len) c.symbols[n++] = static_cast<uint8_t>(sym);
  }
  uint32_t code = 0;
  for (uint32_t len = 1; len < 32; ++len) {
    c.first[len] = code;
    code = (code + c.count[len]) << 1;
  }
  return c;
}

const CanonicalCode& canonical() {
  static const CanonicalCode code = make_canonical();
  return code;
}

// Decodes an integer with an `prefix`-bit prefix at in[at] (RFC 7541, 5.1).
bool read_integer(std::span<const uint8_t> in, size_t& at, int prefix, uint64_t& value) {
  if (at >= in.size()) return false;
  const uint64_t mask = (1u << prefix) - 1;
  value = in[at++] & mask;
  if (value < mask) return true;
  for (int shift = 0; at < in.size(); shift += 7) {
    uint8_t b = in[at++];
    value += static_cast<uint64_t>(b & 0x7f) << shift;
    if (value > kMaxInteger) return false;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

bool huffman_decode(std::span<const uint8_t> in, std::string& out) {
  const CanonicalCode& c = canonical();
  uint32_t code = 0;
  uint32_t len = 0;
  for (uint8_t byte : in) {
    for (int bit = 7; bit >= 0; --bit) {
      code = (code << 1) | ((byte >> bit) & 1u);
      ++len;
      if (len > 30) return false;  // EOS (30 ones) or worse
      if (code - c.first[len] < c.count[len]) {
        out.push_back(static_cast<char>(c.symbols[c.offset[len] + code - c.first[len]]));
        code = 0;
        len = 0;
      }
    }
  }
  // Padding: the most significant bits of EOS (all ones), shorter than a byte.
  return len < 8 && code == (1u << len) - 1;
}

void HpackDecoder::lose_history() {
  table_.clear();
  size_ = 0;
  history_known_ = false;
  size_update_since_loss_ = false;
  learnt_bytes_ = 0;
}

void HpackDecoder::set_settings_limit(uint32_t bytes) {
  settings_limit_ = bytes;
  // Until the encoder announces its own size, the table is as large as the decoder allows
  // (RFC 7541, 4.2). Evicting by a bound the real table may exceed only makes some later
  // references unknown, never wrong: indexes count from the newest entry.
  if (!size_update_seen_) {
    max_size_ = std::min(bytes, kMaxTableBytes);
    evict_to(max_size_);
  }
}

size_t HpackDecoder::memory_bytes() const {
  size_t n = 0;
  for (const Entry& e : table_) n += sizeof(Entry) + e.name.capacity() + e.value.capacity();
  return n;
}

void HpackDecoder::evict_to(uint32_t limit) {
  while (!table_.empty() && size_ > limit) {
    size_ -= table_.back().size();
    table_.pop_back();
  }
}

void HpackDecoder::resize(uint32_t max_size) {
  max_size_ = std::min(max_size, kMaxTableBytes);
  evict_to(max_size_);
  size_update_seen_ = true;
  if (max_size == 0) {
    // Everything the encoder held is gone: from here on the table is known exactly.
    history_known_ = true;
  }
  size_update_since_loss_ = true;
}

void HpackDecoder::insert(Entry e) {
  const uint32_t size = e.size();
  if (size > max_size_) {
    // RFC 7541, 4.4: an entry larger than the table empties it.
    table_.clear();
    size_ = 0;
    if (size_update_since_loss_) history_known_ = true;
    return;
  }
  evict_to(max_size_ - size);
  size_ += size;
  table_.push_front(std::move(e));
  if (history_known_) return;
  // Entries inserted since the loss fill a table whose size the encoder confirmed: every
  // older entry has been evicted, so the table is known exactly again.
  learnt_bytes_ += size;
  if (size_update_since_loss_ && learnt_bytes_ > max_size_) history_known_ = true;
}

std::optional<Field> HpackDecoder::entry(uint64_t index, bool& malformed) const {
  if (index == 0) {
    malformed = true;
    return std::nullopt;
  }
  if (index <= kStaticCount) {
    const StaticEntry& s = kStaticTable[index - 1];
    return Field{s.name, s.value};
  }
  uint64_t dynamic = index - kStaticCount - 1;
  if (dynamic >= table_.size()) return std::nullopt;  // never seen (or evicted under the cap)
  const Entry& e = table_[dynamic];
  return Field{e.name, e.value, e.name_known, e.value_known};
}

HpackDecoder::Step HpackDecoder::string(std::span<const uint8_t> in, size_t& at, std::string& out) {
  if (at >= in.size()) return Step::Cut;
  const bool huffman = (in[at] & 0x80) != 0;
  uint64_t len = 0;
  size_t start = at;
  if (!read_integer(in, at, 7, len)) {
    at = start;
    return at < in.size() && in.size() - at > 6 ? Step::Malformed : Step::Cut;
  }
  if (len > in.size() - at) return Step::Cut;
  std::span<const uint8_t> bytes = in.subspan(at, len);
  at += len;
  out.clear();
  if (!huffman) {
    out.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return Step::Ok;
  }
  return huffman_decode(bytes, out) ? Step::Ok : Step::Malformed;
}

HpackDecoder::Step HpackDecoder::literal(std::span<const uint8_t> in, size_t& at,
                                         uint64_t name_index, bool indexing, Result& r,
                                         FieldSink& sink) {
  Entry e;
  if (name_index == 0) {
    Step s = string(in, at, e.name);
    if (s != Step::Ok) return s;
  } else {
    bool malformed = false;
    std::optional<Field> named = entry(name_index, malformed);
    if (malformed) return Step::Malformed;
    if (named) {
      e.name.assign(named->name);
      e.name_known = named->name_known;
    } else {
      e.name_known = false;
    }
  }
  Step s = string(in, at, e.value);
  if (s != Step::Ok) return s;
  ++r.fields;
  if (!e.name_known) ++r.unknown_fields;
  sink.field({e.name, e.value, e.name_known, true});
  if (indexing) insert(std::move(e));
  return Step::Ok;
}

HpackDecoder::Step HpackDecoder::field(std::span<const uint8_t> in, size_t& at, bool whole,
                                       Result& r, FieldSink& sink) {
  const size_t start = at;
  const uint8_t b = in[at];
  uint64_t index = 0;
  auto incomplete = [&] {
    at = start;
    return whole ? Step::Malformed : Step::Cut;
  };
  if (b & 0x80) {  // indexed field (6.1)
    if (!read_integer(in, at, 7, index)) return incomplete();
    bool malformed = false;
    std::optional<Field> e = entry(index, malformed);
    if (malformed) return Step::Malformed;
    ++r.fields;
    if (!e) {
      ++r.unknown_fields;
      sink.field({{}, {}, false, false});
      return Step::Ok;
    }
    if (!e->name_known || !e->value_known) ++r.unknown_fields;
    sink.field(*e);
    return Step::Ok;
  }
  if ((b & 0xe0) == 0x20) {  // dynamic table size update (6.3)
    if (!read_integer(in, at, 5, index)) return incomplete();
    // Above the SETTINGS limit is a peer's error; weft may not have seen the SETTINGS (joined
    // late), so it takes the update as the encoder's word.
    resize(static_cast<uint32_t>(std::min<uint64_t>(index, UINT32_MAX)));
    return Step::Ok;
  }
  const bool indexing = (b & 0xc0) == 0x40;  // 6.2.1; else 6.2.2 and 6.2.3 (4-bit prefix)
  if (!read_integer(in, at, indexing ? 6 : 4, index)) return incomplete();
  Step s = literal(in, at, index, indexing, r, sink);
  if (s == Step::Cut) {
    at = start;
    return whole ? Step::Malformed : Step::Cut;
  }
  return s;
}

HpackDecoder::Result HpackDecoder::decode(std::span<const uint8_t> block, bool whole,
                                          FieldSink& sink) {
  Result r;
  size_t at = 0;
  while (at < block.size()) {
    Step s = field(block, at, whole, r, sink);
    if (s == Step::Ok) continue;
    if (s == Step::Cut) r.cut = true;
    if (s == Step::Malformed) r.malformed = true;
    break;
  }
  // Insertions in what was not decoded shift every index: the table can no longer be placed.
  if (!whole || r.malformed) lose_history();
  return r;
}

}  // namespace weft::protocols::http2
