// DataStream: one direction of a connection rebuilt from captured pieces, with holes that are
// either final at once (uncaptured bytes of a syscall) or after a reorder window (lost records).
#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "stream/data_stream.h"

namespace weft::stream {
namespace {

constexpr uint64_t kMs = 1'000'000;

std::span<const uint8_t> as_bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string readable_text(const DataStream& s) {
  auto r = s.readable();
  return {reinterpret_cast<const char*>(r.data()), r.size()};
}

ByteOrigin at(uint64_t mono_ns, uint32_t tid = 1, uint32_t tcp_seq = 0) {
  return ByteOrigin{mono_ns, tid, tcp_seq};
}

// A whole syscall of `text` at `pos`, all captured.
void add_all(DataStream& s, uint64_t pos, std::string_view text, const ByteOrigin& origin) {
  s.add(pos, as_bytes(text), pos + text.size(), origin);
}

void check_origin(const ByteOrigin& got, const ByteOrigin& want) {
  CHECK(got.mono_ns == want.mono_ns);
  CHECK(got.tid == want.tid);
  CHECK(got.tcp_seq == want.tcp_seq);
}

TEST_CASE("DataStream: pieces added in order are readable in order and consumed from the head") {
  DataStream s;
  add_all(s, 0, "GET ", at(100));
  add_all(s, 4, "/ HTTP/1.1\r\n", at(200));
  CHECK(s.head() == 0);
  CHECK(readable_text(s) == "GET / HTTP/1.1\r\n");
  CHECK(s.known_end() == 16);
  CHECK(s.buffered_bytes() == 16);
  CHECK(s.skippable() == 0);
  CHECK(s.missing_after_readable() == 0);

  s.consume(4);
  CHECK(s.head() == 4);
  CHECK(readable_text(s) == "/ HTTP/1.1\r\n");
  CHECK(s.buffered_bytes() == 12);

  s.consume(12);
  CHECK(s.head() == 16);
  CHECK(s.readable().empty());
  CHECK(s.buffered_bytes() == 0);
  CHECK(s.skippable() == 0);  // nothing is known beyond: wait for more bytes
  CHECK(s.late_bytes() == 0);

  add_all(s, 16, "Host: a\r\n", at(300));
  CHECK(readable_text(s) == "Host: a\r\n");
  CHECK(s.known_end() == 25);
}

TEST_CASE("DataStream: the first piece places the head at its position") {
  DataStream s;
  add_all(s, 1000, "abc", at(5, 2, 77));
  CHECK(s.head() == 1000);
  CHECK(readable_text(s) == "abc");
  check_origin(s.origin_of(999), ByteOrigin{});  // before anything the stream saw
  check_origin(s.origin_of(1001), at(5, 2, 78));
}

TEST_CASE(
    "DataStream: a later piece arriving first waits; the earlier one fills the hole in time") {
  DataStream s;
  add_all(s, 0, "abc", at(0));
  s.consume(3);
  add_all(s, 6, "ghi", at(1 * kMs));
  CHECK(s.readable().empty());
  CHECK(s.skippable() == 0);  // the missing piece may still come
  CHECK(s.buffered_bytes() == 3);
  s.consume(3);  // nothing to consume yet: the head does not move
  CHECK(s.head() == 3);

  add_all(s, 3, "def", at(2 * kMs));
  CHECK(s.head() == 3);
  CHECK(readable_text(s) == "defghi");
  CHECK(s.buffered_bytes() == 6);
  CHECK(s.skippable() == 0);
  CHECK(s.missing_after_readable() == 0);
  CHECK(s.late_bytes() == 0);
  s.consume(6);
  CHECK(s.head() == 9);
  CHECK(s.buffered_bytes() == 0);
}

TEST_CASE("DataStream: a hole left by lost records is final after 20 ms of newer kernel time") {
  const uint64_t t0 = 5 * kMs;
  DataStream s;
  add_all(s, 0, "abc", at(t0));
  s.consume(3);
  add_all(s, 10, "xyz", at(t0 + kMs));  // bytes 3..10 missing
  CHECK(s.skippable() == 0);
  add_all(s, 13, "uvw", at(t0 + kMs + DataStream::kReorderWindowNs - 1));
  CHECK(s.skippable() == 0);
  s.consume(7);
  CHECK(s.head() == 3);

  add_all(s, 16, "rst", at(t0 + kMs + DataStream::kReorderWindowNs));
  CHECK(s.skippable() == 7);
  CHECK(s.readable().empty());
  s.consume(7);
  CHECK(s.head() == 10);
  CHECK(readable_text(s) == "xyzuvwrst");
  CHECK(s.skippable() == 0);
  CHECK(s.buffered_bytes() == 9);
}

TEST_CASE("DataStream: a hole left by lost records is final after 16 later pieces") {
  DataStream s;
  add_all(s, 0, "abc", at(0));
  s.consume(3);
  // Pieces at 10, 12, 14, ...: all arriving within the same millisecond.
  for (size_t i = 0; i + 1 < DataStream::kReorderPieces; ++i) add_all(s, 10 + 2 * i, "..", at(kMs));
  CHECK(s.skippable() == 0);
  add_all(s, 10 + 2 * (DataStream::kReorderPieces - 1), "..", at(kMs));
  CHECK(s.skippable() == 7);
  s.consume(7);
  CHECK(s.head() == 10);
  CHECK(s.readable().size() == 2 * DataStream::kReorderPieces);
}

TEST_CASE("DataStream: a hole reached after an earlier one was filled waits its own window") {
  DataStream s;
  add_all(s, 0, "ab", at(0));
  s.consume(2);
  add_all(s, 5, "fg", at(1 * kMs));    // hole 2..5
  add_all(s, 10, "kl", at(2 * kMs));   // hole 7..10
  add_all(s, 2, "cde", at(15 * kMs));  // late: fills the first hole
  CHECK(readable_text(s) == "cdefg");
  s.consume(5);
  CHECK(s.head() == 7);
  add_all(s, 12, "mn", at(22 * kMs));  // 21 ms after "fg", but 7 ms after the fill
  CHECK(s.skippable() == 0);
  add_all(s, 14, "op", at(35 * kMs));  // 20 ms after the second hole reached the head
  CHECK(s.skippable() == 3);
}

TEST_CASE("DataStream: settle() makes a lost-records hole final at once") {
  DataStream s;
  add_all(s, 0, "abc", at(0));
  add_all(s, 10, "xyz", at(1));
  CHECK(s.missing_after_readable() == 0);
  s.consume(3);
  CHECK(s.skippable() == 0);
  s.settle();
  CHECK(s.skippable() == 7);
  s.consume(100);  // never past the hole
  CHECK(s.head() == 10);
  CHECK(readable_text(s) == "xyz");
}

TEST_CASE("DataStream: settle() also ends the wait after unconsumed readable bytes") {
  DataStream s;
  add_all(s, 0, "abc", at(0));
  add_all(s, 10, "xyz", at(1));
  CHECK(s.missing_after_readable() == 0);
  s.settle();
  CHECK(s.missing_after_readable() == 7);
  CHECK(s.skippable() == 0);  // the head still has readable bytes
}

TEST_CASE("DataStream: the uncaptured tail of a truncated syscall is skippable at once") {
  DataStream s;
  std::string_view head = "HTTP/1.1 200 OK\r\n";  // 17 of the 5000 bytes the syscall moved
  s.add(0, as_bytes(head), 5000, at(10));
  CHECK(readable_text(s) == head);
  CHECK(s.known_end() == 5000);
  CHECK(s.missing_after_readable() == 4983);
  CHECK(s.skippable() == 0);
  CHECK(s.buffered_bytes() == 17);  // uncaptured bytes take no memory

  s.consume(17);
  CHECK(s.skippable() == 4983);
  s.consume(1000);
  CHECK(s.head() == 1017);
  CHECK(s.skippable() == 3983);
  s.consume(10000);  // clamped to the hole
  CHECK(s.head() == 5000);
  CHECK(s.skippable() == 0);
  CHECK(s.buffered_bytes() == 0);

  add_all(s, 5000, "next", at(20));
  CHECK(readable_text(s) == "next");
  s.consume(4);
  // A syscall of which nothing was captured (a failed read of the user buffer).
  s.add(5004, {}, 6004, at(30));
  CHECK(s.known_end() == 6004);
  CHECK(s.skippable() == 1000);
}

TEST_CASE("DataStream: an uncaptured tail ends where the next captured piece begins") {
  DataStream s;
  s.add(0, as_bytes("ab"), 10, at(0));  // bytes 2..10 uncaptured
  s.consume(2);
  add_all(s, 20, "xyz", at(1));  // bytes 10..20 lost
  CHECK(s.skippable() == 8);     // the uncaptured part is final at once
  s.consume(8);
  CHECK(s.head() == 10);
  CHECK(s.skippable() == 0);  // the lost part waits for the reorder window
}

TEST_CASE("DataStream: duplicate and overlapping bytes count as late and are kept once") {
  DataStream s;
  add_all(s, 0, "hello", at(1));
  add_all(s, 0, "hello", at(2));
  CHECK(s.late_bytes() == 5);
  CHECK(readable_text(s) == "hello");
  CHECK(s.buffered_bytes() == 5);

  add_all(s, 3, "lo world", at(3));
  CHECK(s.late_bytes() == 7);
  CHECK(readable_text(s) == "hello world");
  CHECK(s.buffered_bytes() == 11);

  s.consume(11);
  add_all(s, 6, "world", at(4));  // entirely behind the head
  CHECK(s.late_bytes() == 12);
  CHECK(s.readable().empty());
  CHECK(s.buffered_bytes() == 0);

  // Overlapping pieces beyond a hole are stored once too.
  add_all(s, 20, "abc", at(5));
  add_all(s, 20, "abcdef", at(6));
  CHECK(s.buffered_bytes() == 6);
  add_all(s, 20, "ab", at(7));
  CHECK(s.buffered_bytes() == 6);
  add_all(s, 21, "bcd", at(8));
  add_all(s, 24, "efgh", at(9));         // overlaps the end of "abcdef"
  add_all(s, 11, "012345678a", at(10));  // fills the hole and overlaps "abcdef"
  CHECK(readable_text(s) == "012345678abcdefgh");
  CHECK(s.buffered_bytes() == 17);
  CHECK(s.late_bytes() == 12);
}

TEST_CASE("DataStream: origin_of gives the kernel time, thread and TCP sequence of each byte") {
  DataStream s;
  add_all(s, 0, "abc", at(100, 7, 1000));
  add_all(s, 3, "defgh", at(200, 8, 1003));
  s.add(8, as_bytes("ij"), 20, at(300, 9, 1008));  // a truncated syscall moving 8..20

  check_origin(s.origin_of(0), at(100, 7, 1000));
  check_origin(s.origin_of(2), at(100, 7, 1002));
  check_origin(s.origin_of(3), at(200, 8, 1003));
  check_origin(s.origin_of(7), at(200, 8, 1007));
  check_origin(s.origin_of(8), at(300, 9, 1008));
  check_origin(s.origin_of(15), at(300, 9, 1015));  // uncaptured, but moved by that syscall

  // Parsers ask for the origin of a message's last byte right after consuming it.
  s.consume(3);
  check_origin(s.origin_of(2), at(100, 7, 1002));
  s.consume(5);
  check_origin(s.origin_of(7), at(200, 8, 1007));
  s.consume(2);
  s.consume(10);
  CHECK(s.head() == 20);
  check_origin(s.origin_of(19), at(300, 9, 1019));
}

TEST_CASE("DataStream: origin_of follows the TCP sequence number through its wrap") {
  DataStream s;
  add_all(s, 0, "abcd", at(1, 1, 0xfffffffe));
  CHECK(s.origin_of(1).tcp_seq == 0xffffffffu);
  CHECK(s.origin_of(2).tcp_seq == 0u);
  CHECK(s.origin_of(3).tcp_seq == 1u);
}

TEST_CASE("DataStream: origin_of a late piece that filled a hole is that piece's syscall") {
  DataStream s;
  add_all(s, 0, "ab", at(10, 1, 500));
  add_all(s, 5, "fg", at(30, 3, 505));
  add_all(s, 2, "cde", at(20, 2, 502));
  check_origin(s.origin_of(1), at(10, 1, 501));
  check_origin(s.origin_of(3), at(20, 2, 503));
  check_origin(s.origin_of(6), at(30, 3, 506));
}

TEST_CASE("DataStream: buffered_bytes counts captured bytes held, readable and pending") {
  DataStream s;
  add_all(s, 0, "0123456789", at(1));
  CHECK(s.buffered_bytes() == 10);
  add_all(s, 20, "klmno", at(2));  // beyond a hole
  CHECK(s.buffered_bytes() == 15);
  s.consume(4);
  CHECK(s.buffered_bytes() == 11);
  add_all(s, 10, "abcdefghij", at(3));  // fills the hole
  CHECK(s.buffered_bytes() == 21);
  CHECK(readable_text(s) == "456789abcdefghijklmno");
  s.consume(21);
  CHECK(s.buffered_bytes() == 0);
}

TEST_CASE("DataStream: a large buffer consumed in parts keeps the right bytes") {
  DataStream s;
  std::string big(10000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  add_all(s, 0, big, at(1));
  s.consume(5000);
  CHECK(s.buffered_bytes() == 5000);
  s.consume(1);  // past half of the buffer: the consumed prefix is dropped
  CHECK(s.head() == 5001);
  CHECK(s.buffered_bytes() == 4999);
  CHECK(readable_text(s) == big.substr(5001));
  add_all(s, 10000, "tail", at(2));
  CHECK(readable_text(s) == big.substr(5001) + "tail");
  s.consume(5003);
  CHECK(s.buffered_bytes() == 0);
}

}  // namespace
}  // namespace weft::stream
