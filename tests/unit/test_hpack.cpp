// HPACK (RFC 7541) decoding: the RFC's own examples (Appendix C), Huffman, eviction, table size
// updates, and what a decoder that joined late or lost a block recovers.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "http2_wire.h"
#include "protocols/http2/hpack.h"

namespace weft::test {
namespace {

using protocols::http2::Field;
using protocols::http2::HpackDecoder;

// Decoded fields as "name: value", "?" for what weft never saw.
struct Collect : protocols::http2::FieldSink {
  std::vector<std::string> fields;
  void field(const Field& f) override {
    std::string name = f.name_known ? std::string(f.name) : "?";
    std::string value = f.value_known ? std::string(f.value) : "?";
    fields.push_back(name + ": " + value);
  }
};

std::string unhex(std::string_view hex) {
  std::string out;
  std::string digits;
  for (char c : hex)
    if (c != ' ') digits += c;
  for (size_t i = 0; i + 1 < digits.size(); i += 2)
    out += static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16));
  return out;
}

std::span<const uint8_t> bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<std::string> decode(HpackDecoder& d, const std::string& block, bool whole = true,
                                HpackDecoder::Result* result = nullptr) {
  Collect c;
  HpackDecoder::Result r = d.decode(bytes(block), whole, c);
  if (result) *result = r;
  return c.fields;
}

using Fields = std::vector<std::string>;

TEST_CASE("hpack: RFC 7541 C.3 and C.4, requests without and with Huffman coding") {
  for (bool huffman : {false, true}) {
    CAPTURE(huffman);
    HpackDecoder d;
    const char* first =
        huffman ? "828684418cf1e3c2e5f23a6ba0ab90f4ff" : "828684410f7777772e6578616d706c652e636f6d";
    const char* second = huffman ? "828684be5886a8eb10649cbf" : "828684be58086e6f2d6361636865";
    const char* third = huffman ? "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"
                                : "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565";
    CHECK(decode(d, unhex(first)) ==
          Fields{":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"});
    CHECK(d.table_size() == 57);
    CHECK(decode(d, unhex(second)) == Fields{":method: GET", ":scheme: http", ":path: /",
                                             ":authority: www.example.com",
                                             "cache-control: no-cache"});
    CHECK(d.table_size() == 110);
    CHECK(decode(d, unhex(third)) == Fields{":method: GET", ":scheme: https", ":path: /index.html",
                                            ":authority: www.example.com",
                                            "custom-key: custom-value"});
    CHECK(d.entry_count() == 3);
    CHECK(d.table_size() == 164);
  }
}

TEST_CASE("hpack: responses evict the oldest entries of a 256-byte table (RFC 7541 C.5)") {
  using namespace h2;
  HpackDecoder d;
  d.set_settings_limit(256);
  const std::string date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
  const std::string loc = "https://www.example.com";
  std::string b1 = inc(8, "302") + inc(24, "private") + inc(33, date1) + inc(46, loc);
  CHECK(decode(d, b1) ==
        Fields{":status: 302", "cache-control: private", "date: " + date1, "location: " + loc});
  CHECK(d.table_size() == 222);
  // ":status: 307" does not fit beside the four: the oldest (":status: 302") is evicted.
  std::string b2 = inc(8, "307") + indexed(65) + indexed(64) + indexed(63);
  CHECK(decode(d, b2) ==
        Fields{":status: 307", "cache-control: private", "date: " + date1, "location: " + loc});
  CHECK(d.entry_count() == 4);
  CHECK(d.table_size() == 222);
  // With Huffman: the same block decodes the same.
  HpackDecoder h;
  h.set_settings_limit(256);
  std::string b1h =
      inc(8, "302", true) + inc(24, "private", true) + inc(33, date1, true) + inc(46, loc, true);
  CHECK(decode(h, b1h) ==
        Fields{":status: 302", "cache-control: private", "date: " + date1, "location: " + loc});
  CHECK(h.table_size() == 222);
}

TEST_CASE("hpack: every byte value survives Huffman coding; bad padding and EOS are rejected") {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string out;
  REQUIRE(protocols::http2::huffman_decode(bytes(h2::huffman(all)), out));
  CHECK(out == all);
  out.clear();
  // "a" is 00011: padded with zeros instead of ones.
  CHECK_FALSE(protocols::http2::huffman_decode(bytes(std::string(1, '\x18')), out));
  // Eight bits of padding (a whole byte of ones) is too long.
  CHECK_FALSE(protocols::http2::huffman_decode(bytes(std::string("\x1f\xff", 2)), out));
  // EOS: thirty ones.
  CHECK_FALSE(protocols::http2::huffman_decode(bytes(std::string("\xff\xff\xff\xff", 4)), out));
}

TEST_CASE("hpack: a table size update evicts, and a size of 0 empties the table") {
  using namespace h2;
  HpackDecoder d;
  decode(d, inc("x-a", "1") + inc("x-b", "2"));
  CHECK(d.entry_count() == 2);
  // 32 + 3 + 1 = 36 bytes per entry: 40 keeps only the newest.
  CHECK(decode(d, size_update(40) + indexed(62)) == Fields{"x-b: 2"});
  CHECK(d.entry_count() == 1);
  HpackDecoder::Result r;
  CHECK(decode(d, indexed(63), true, &r) == Fields{"?: ?"});
  CHECK(r.unknown_fields == 1);
  decode(d, size_update(0));
  CHECK(d.entry_count() == 0);
  CHECK(d.max_size() == 0);
  // An entry larger than the table empties it and is not added.
  decode(d, size_update(100) + inc("x-c", std::string(80, 'v')));
  CHECK(d.entry_count() == 0);
}

TEST_CASE("hpack: joined late, static entries and literals decode; unseen entries are unknown") {
  using namespace h2;
  HpackDecoder d(false);  // history unknown
  HpackDecoder::Result r;
  // :method GET, :path from a dynamic entry weft never saw, a literal authority.
  CHECK(decode(d, indexed(kGet) + indexed(62) + lit(kAuthority, "a.example"), true, &r) ==
        Fields{":method: GET", "?: ?", ":authority: a.example"});
  CHECK(r.unknown_fields == 1);
  // A literal whose name is an unseen entry: the value is there, the name is not.
  CHECK(decode(d, lit(70, "v"), true, &r) == Fields{"?: v"});
  // Entries inserted after joining are learnt: they sit at the front.
  CHECK(decode(d, inc(kPathName, "/learnt") + indexed(62) + indexed(63), true, &r) ==
        Fields{":path: /learnt", ":path: /learnt", "?: ?"});
  CHECK(decode(d, inc("x-n", "2") + indexed(62) + indexed(63)) ==
        Fields{"x-n: 2", "x-n: 2", ":path: /learnt"});
  CHECK_FALSE(d.history_known());
  // Once the encoder's size is confirmed and the learnt entries overflow it, every older
  // entry is gone: the table is known exactly again.
  decode(d, size_update(100) + inc("x-big", std::string(70, 'b')));
  CHECK(d.history_known());
}

TEST_CASE("hpack: a block cut short decodes its whole fields and forgets the table") {
  using namespace h2;
  HpackDecoder d;
  decode(d, inc("x-kept", "1"));
  std::string block = indexed(kGet) + lit(kPathName, "/a/long/path") + inc("x-lost", "2");
  HpackDecoder::Result r;
  CHECK(decode(d, block.substr(0, block.size() - 3), false, &r) ==
        Fields{":method: GET", ":path: /a/long/path"});
  CHECK(r.cut);
  CHECK_FALSE(d.history_known());
  // x-kept's index can no longer be trusted (x-lost may have been inserted): unknown.
  CHECK(decode(d, indexed(62)) == Fields{"?: ?"});
}

TEST_CASE("hpack: malformed blocks are reported, never read past their end") {
  using namespace h2;
  HpackDecoder d;
  HpackDecoder::Result r;
  decode(d, indexed(0), true, &r);  // index 0 is invalid
  CHECK(r.malformed);
  decode(d, std::string("\x7f\xff\xff\xff\xff\xff", 6), true, &r);  // an endless integer
  CHECK(r.malformed);
  decode(d, lit(4, "abc").substr(0, 3), true, &r);  // a string longer than the block
  CHECK(r.malformed);
  decode(d, std::string("\x04\x83\xff\xff\xff", 5), true, &r);  // Huffman with EOS inside
  CHECK(r.malformed);
}

}  // namespace
}  // namespace weft::test
