// HPACK (RFC 7541), decoding only, written for a reader that may join late. A connection weft
// saw from its first byte is decoded exactly. When the dynamic table's history is unknown
// (joined mid-connection, a header block lost or cut), the decoder keeps going: static entries
// and literals decode as always; entries inserted after the loss are learnt (they sit at the
// front of the table, so an index below their count always names them: eviction removes the
// oldest entries first, whatever the table's real size); an index beyond them names an entry
// weft never saw, and only that field is reported unknown. (libnghttp2's inflater has no such
// mode: it fails the whole block on an index it does not hold.)
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace weft::protocols::http2 {

// One decoded header field. An unknown name or value refers to a table entry weft never saw.
struct Field {
  std::string_view name;
  std::string_view value;
  bool name_known = true;
  bool value_known = true;
};

class FieldSink {
 public:
  virtual ~FieldSink() = default;
  virtual void field(const Field& field) = 0;
};

// Decodes a Huffman-coded string literal (RFC 7541, 5.2) into `out`; false when malformed
// (an invalid code, EOS inside, padding longer than 7 bits or not all ones).
bool huffman_decode(std::span<const uint8_t> in, std::string& out);

class HpackDecoder {
 public:
  // The table holds at most this much (RFC size: 32 + name + value per entry) whatever a peer
  // announces: memory per connection is bounded; entries evicted early read as unknown.
  static constexpr uint32_t kMaxTableBytes = 64 * 1024;
  static constexpr uint32_t kDefaultTableBytes = 4096;

  explicit HpackDecoder(bool history_known = true) : history_known_(history_known) {}

  struct Result {
    uint32_t fields = 0;          // fields decoded (known or not)
    uint32_t unknown_fields = 0;  // fields naming a table entry weft never saw
    bool malformed = false;       // bytes that are no HPACK (the rest of the block is skipped)
    bool cut = false;             // the block ended inside a field (its end was not seen)
  };

  // Decodes one header block. `whole`: the block's bytes are all here; when false (its middle or
  // end was lost), fields wholly inside `block` are decoded, then the table's history is lost.
  Result decode(std::span<const uint8_t> block, bool whole, FieldSink& sink);

  // A header block was lost (or weft lost the framing): the table's entries can no longer be
  // placed. Forgets them; later insertions are learnt again.
  void lose_history();
  // SETTINGS_HEADER_TABLE_SIZE, announced by the endpoint that decodes these blocks.
  void set_settings_limit(uint32_t bytes);

  bool history_known() const { return history_known_; }
  size_t entry_count() const { return table_.size(); }
  // The table's size as RFC 7541 counts it (4.1).
  uint32_t table_size() const { return size_; }
  uint32_t max_size() const { return max_size_; }
  // Heap bytes the table holds, for memory accounting.
  size_t memory_bytes() const;

 private:
  struct Entry {
    std::string name;
    std::string value;
    bool name_known = true;
    bool value_known = true;
    uint32_t size() const { return 32 + static_cast<uint32_t>(name.size() + value.size()); }
  };

  enum class Step { Ok, Cut, Malformed };
  Step field(std::span<const uint8_t> in, size_t& at, bool whole, Result& r, FieldSink& sink);
  Step literal(std::span<const uint8_t> in, size_t& at, uint64_t name_index, bool indexing,
               Result& r, FieldSink& sink);
  Step string(std::span<const uint8_t> in, size_t& at, std::string& out);
  // Entry `index` (1-based: static 1..61, then dynamic), or none when weft never saw it.
  // `malformed` is set for index 0.
  std::optional<Field> entry(uint64_t index, bool& malformed) const;
  void insert(Entry entry);
  void resize(uint32_t max_size);
  void evict_to(uint32_t limit);

  std::deque<Entry> table_;  // newest first
  uint32_t size_ = 0;
  uint32_t max_size_ = kDefaultTableBytes;
  uint32_t settings_limit_ = kDefaultTableBytes;
  bool history_known_ = true;
  bool size_update_since_loss_ = false;
  bool size_update_seen_ = false;
  uint64_t learnt_bytes_ = 0;  // sizes of the entries inserted since the history was lost
};

}  // namespace weft::protocols::http2
