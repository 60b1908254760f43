// RESP framing and summaries (src/protocols/redis/resp.h) and the per-command knowledge the
// Redis handler uses (src/protocols/redis/commands.h): pure functions over bytes, no tracker.
#include <doctest/doctest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/redis/commands.h"
#include "protocols/redis/resp.h"

namespace weft::protocols::redis {
namespace {

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

FrameResult frame(std::string_view s, Role role = Role::Reply, const Limits& limits = {}) {
  return frame_message(bytes_of(s), role, limits);
}

// A string literal with embedded NULs, all of it.
template <size_t N>
std::string bin(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

std::string repeat(std::string_view piece, size_t times) {
  std::string out;
  for (size_t i = 0; i < times; ++i) out += piece;
  return out;
}

// The whole message through a fresh framer, which the caller keeps for its summary.
FrameResult frame_with(Framer& framer, std::string_view s) {
  return framer.feed(bytes_of(s));
}

RequestSummary request_of(std::string_view wire) {
  Framer framer(Role::Request);
  const FrameResult r = frame_with(framer, wire);
  REQUIRE(r.status == Status::Complete);
  REQUIRE(r.consumed == wire.size());
  return framer.request();
}

ReplySummary reply_of(std::string_view wire) {
  Framer framer(Role::Reply);
  const FrameResult r = frame_with(framer, wire);
  REQUIRE(r.status == Status::Complete);
  REQUIRE(r.consumed == wire.size());
  return framer.reply();
}

void check_complete(std::string_view wire, Role role = Role::Reply) {
  CAPTURE(wire);
  const FrameResult r = frame(wire, role);
  CHECK(r.status == Status::Complete);
  CHECK(r.consumed == wire.size());
  // The same message followed by another: only its own bytes are taken.
  const std::string two = std::string(wire) + std::string(wire);
  const FrameResult first = frame(two, role);
  CHECK(first.status == Status::Complete);
  CHECK(first.consumed == wire.size());
}

void check_invalid(std::string_view wire, Role role = Role::Reply, const Limits& limits = {}) {
  CAPTURE(wire);
  const FrameResult r = frame(wire, role, limits);
  CHECK(r.status == Status::Invalid);
  CHECK(std::string_view(r.error).size() > 0);
}

// Feeds `wire` as a caller holding a buffer does: the bytes a NeedMore did not take are offered
// again with the next ones. The first `cut` bytes arrive first.
FrameResult feed_in_two(Framer& framer, std::string_view wire, size_t cut) {
  const FrameResult first = framer.feed(bytes_of(wire.substr(0, cut)));
  if (cut < wire.size()) {
    CHECK(first.status == Status::NeedMore);
    CHECK(first.consumed <= cut);
  }
  if (first.status != Status::NeedMore) return first;
  FrameResult rest = framer.feed(bytes_of(wire.substr(first.consumed)));
  rest.consumed += first.consumed;
  return rest;
}

const std::vector<std::string>& sample_replies() {
  static const std::vector<std::string> samples = {
      "+OK\r\n",
      "-ERR unknown command 'FOO'\r\n",
      ":-42\r\n",
      "$5\r\nhello\r\n",
      "$0\r\n\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n",
      "*2\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n~1\r\n$1\r\nv\r\n",
      "_\r\n",
      ",3.14\r\n",
      "#t\r\n",
      "!21\r\nSYNTAX invalid syntax\r\n",
      "=15\r\ntxt:Some string\r\n",
      "(3492890328409238509324850943850943825024385\r\n",
      ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
      "|1\r\n+ttl\r\n:3600\r\n$3\r\nbar\r\n",
      "$?\r\n;4\r\nHell\r\n;7\r\no world\r\n;0\r\n",
      "*?\r\n:1\r\n$1\r\nx\r\n.\r\n",
  };
  return samples;
}

const std::vector<std::string>& sample_requests() {
  static const std::vector<std::string> samples = {
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
      "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$3\r\napp\r\n",
      "*1\r\n$4\r\nPING\r\n",
      "*0\r\n",
      "PING\r\n",
      "set k \"a b\"\r\n",
      "\r\n",
  };
  return samples;
}

// ---------------------------------------------------------------------------------------------
// Types

TEST_CASE("Redis RESP: every RESP2 type is framed to its exact size") {
  for (const char* wire :
       {"+OK\r\n", "+\r\n", "-ERR wrong\r\n", ":0\r\n", ":-9223372036854775808\r\n",
        ":9223372036854775807\r\n", "$5\r\nhello\r\n", "$0\r\n\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
        "*2\r\n$3\r\nfoo\r\n:1\r\n", "$4\r\na\r\nb\r\n"}) {  // a body may hold CRLF
    check_complete(wire);
  }
}

TEST_CASE("Redis RESP: every RESP3 type is framed to its exact size") {
  for (const char* wire :
       {"_\r\n", ",3.14\r\n", ",inf\r\n", ",-inf\r\n", ",nan\r\n", ",-1.5e10\r\n", ",10\r\n",
        "#t\r\n", "#f\r\n", "!21\r\nSYNTAX invalid syntax\r\n", "=15\r\ntxt:Some string\r\n",
        "(3492890328409238509324850943850943825024385\r\n", "(-12\r\n",
        "%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n", "%0\r\n", "~3\r\n+a\r\n+b\r\n+c\r\n",
        ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n", "|1\r\n+a\r\n+b\r\n:7\r\n"}) {
    check_complete(wire);
  }
}

TEST_CASE("Redis RESP: summaries of scalar replies") {
  const ReplySummary ok = reply_of("+OK\r\n");
  CHECK(ok.type() == Type::SimpleString);
  CHECK(ok.value.text == "OK");
  CHECK_FALSE(ok.is_error());

  const ReplySummary number = reply_of(":-42\r\n");
  CHECK(number.type() == Type::Integer);
  CHECK(number.value.integer == -42);

  const ReplySummary bulk = reply_of("$5\r\nhello\r\n");
  CHECK(bulk.type() == Type::BulkString);
  CHECK(bulk.value.length == 5);
  CHECK(bulk.value.text == "hello");
  CHECK_FALSE(bulk.value.null);

  CHECK(reply_of("$-1\r\n").value.null);
  CHECK(reply_of("*-1\r\n").value.null);
  CHECK(reply_of("*-1\r\n").type() == Type::Array);
  CHECK(reply_of("_\r\n").value.null);
  CHECK(reply_of("_\r\n").type() == Type::Null);
  CHECK(reply_of("#t\r\n").value.integer == 1);
  CHECK(reply_of("#f\r\n").value.integer == 0);
  CHECK(reply_of(",3.14\r\n").value.text == "3.14");
  CHECK(reply_of("=15\r\ntxt:Some string\r\n").value.text == "txt:Some string");
  CHECK(reply_of("(123456789012345678901234567890\r\n").type() == Type::BigNumber);

  // Kept text is bounded; the flag says the value was longer.
  const std::string big(1000, 'x');
  const ReplySummary long_bulk = reply_of("$1000\r\n" + big + "\r\n");
  CHECK(long_bulk.value.text.size() == Limits{}.kept_text_bytes);
  CHECK(long_bulk.value.truncated);
  CHECK(long_bulk.value.length == 1000);
}

TEST_CASE("Redis RESP: nested aggregates are one message; the head keeps the first elements") {
  const std::string wire =
      "*4\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n~1\r\n$1\r\nv\r\n$3\r\nabc\r\n:9\r\n";
  const ReplySummary r = reply_of(wire);
  CHECK(r.type() == Type::Array);
  CHECK(r.value.length == 4);
  REQUIRE(r.head.size() == 3);
  CHECK(r.head[0].type == Type::Array);
  CHECK(r.head[0].length == 2);
  CHECK(r.head[1].type == Type::Map);
  CHECK(r.head[1].length == 1);
  CHECK(r.head[2].type == Type::BulkString);
  CHECK(r.head[2].text == "abc");  // not the "v" nested inside the map

  // A map of N pairs has 2N elements: one pair short is not complete.
  CHECK(frame("%2\r\n+a\r\n:1\r\n+b\r\n").status == Status::NeedMore);
}

// ---------------------------------------------------------------------------------------------
// Streams of messages

TEST_CASE("Redis RESP: pipelined replies back to back, each with its own summary") {
  const std::string wire = "+OK\r\n:5\r\n$3\r\nbar\r\n-ERR no\r\n*2\r\n:1\r\n:2\r\n+PONG\r\n";
  Framer framer(Role::Reply);
  std::vector<Type> types;
  std::vector<uint64_t> sizes;
  size_t pos = 0;
  while (pos < wire.size()) {
    const FrameResult r = framer.feed(bytes_of(std::string_view(wire).substr(pos)));
    REQUIRE(r.status == Status::Complete);
    types.push_back(framer.reply().type());
    sizes.push_back(framer.message_bytes());
    CHECK(framer.message_bytes() == r.consumed);
    pos += r.consumed;
  }
  CHECK(types == std::vector<Type>{Type::SimpleString, Type::Integer, Type::BulkString,
                                   Type::SimpleError, Type::Array, Type::SimpleString});
  CHECK(sizes == std::vector<uint64_t>{5, 4, 9, 9, 12, 7});
}

TEST_CASE("Redis RESP: pipelined requests back to back") {
  const std::string wire =
      "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset a b\n*1\r\n$4\r\nEXEC\r\n";
  Framer framer(Role::Request);
  std::vector<std::string> commands;
  size_t pos = 0;
  while (pos < wire.size()) {
    const FrameResult r = framer.feed(bytes_of(std::string_view(wire).substr(pos)));
    REQUIRE(r.status == Status::Complete);
    commands.push_back(framer.request().command);
    pos += r.consumed;
  }
  CHECK(commands == std::vector<std::string>{"PING", "PING", "GET", "SET", "EXEC"});
}

TEST_CASE("Redis RESP: split at every byte offset, NeedMore until complete, then the same result") {
  for (const Role role : {Role::Reply, Role::Request}) {
    const auto& samples = role == Role::Reply ? sample_replies() : sample_requests();
    for (const std::string& wire : samples) {
      CAPTURE(wire);
      Framer whole(role);
      REQUIRE(frame_with(whole, wire).status == Status::Complete);
      for (size_t cut = 0; cut <= wire.size(); ++cut) {
        CAPTURE(cut);
        Framer framer(role);
        const FrameResult r = feed_in_two(framer, wire, cut);
        CHECK(r.status == Status::Complete);
        CHECK(r.consumed == wire.size());
        CHECK(framer.message_bytes() == wire.size());
        CHECK(framer.request().command == whole.request().command);
        CHECK(framer.request().arg_count == whole.request().arg_count);
        CHECK(framer.reply().type() == whole.reply().type());
        CHECK(framer.reply().value.text == whole.reply().value.text);
        CHECK(framer.reply().head.size() == whole.reply().head.size());
      }
    }
  }
}

TEST_CASE("Redis RESP: one byte at a time, completing exactly at the last byte") {
  const std::string wire =
      "|1\r\n+a\r\n:1\r\n*2\r\n$?\r\n;2\r\nab\r\n;0\r\n%?\r\n+k\r\n#t\r\n.\r\n";
  Framer framer(Role::Reply);
  std::string pending;
  for (size_t i = 0; i < wire.size(); ++i) {
    CAPTURE(i);
    pending += wire[i];
    const FrameResult r = framer.feed(bytes_of(pending));
    pending.erase(0, r.consumed);
    CHECK(r.status == (i + 1 == wire.size() ? Status::Complete : Status::NeedMore));
  }
  CHECK(pending.empty());
  CHECK(framer.reply().type() == Type::Array);
  CHECK(framer.reply().has_attributes);
  REQUIRE(framer.reply().head.size() == 2);
  CHECK(framer.reply().head[0].text == "ab");
  CHECK(framer.reply().head[1].type == Type::Map);
}

// ---------------------------------------------------------------------------------------------
// Invalid input

TEST_CASE("Redis RESP: bytes that are not RESP are Invalid") {
  for (const char* wire : {"?what\r\n",
                           "PING\r\n",
                           "HTTP/1.1 200 OK\r\n",
                           "+OK\n",
                           "+OK\rX\r\n",
                           "-ERR\nx\r\n",
                           "$abc\r\n",
                           "$-2\r\n",
                           "$\r\n",
                           "$ 3\r\nabc\r\n",
                           "$+3\r\nabc\r\n",
                           "$3\r\nabcXY",
                           "$3\r\nabc\rX",
                           "*-2\r\n",
                           "*x\r\n",
                           "%-1\r\n",
                           "~-1\r\n",
                           ":12a\r\n",
                           ":\r\n",
                           ":9223372036854775808\r\n",
                           ":+1\r\n",
                           "#x\r\n",
                           "#tt\r\n",
                           "_x\r\n",
                           ",abc\r\n",
                           ",\r\n",
                           "(12a\r\n",
                           "(\r\n",
                           ".\r\n",
                           ";3\r\nabc\r\n",
                           "|?\r\n",
                           ">?\r\n",
                           "!?\r\n",
                           "!-1\r\n",
                           "$?\r\n+x\r\n",
                           "$?\r\n;-1\r\n",
                           "*1\r\n.\r\n",
                           "\x16\x03\x01\x02\x00"}) {
    check_invalid(wire);
  }
}

TEST_CASE("Redis RESP: absurd lengths and counts are Invalid, not waited for") {
  check_invalid("*99999999999\r\n");
  check_invalid("$99999999999\r\n");
  check_invalid("%2147483648\r\n");
  check_invalid("*99999999999999999999999\r\n");
  check_invalid("$536870913\r\n");  // one past Redis's default proto-max-bulk-len
  CHECK(frame("$536870912\r\n").status == Status::NeedMore);
  CHECK(frame("*2147483647\r\n").status == Status::NeedMore);
  Limits small;
  small.max_elements = 10;
  small.max_bulk = 100;
  check_invalid("*11\r\n", Role::Reply, small);
  check_invalid("$101\r\n", Role::Reply, small);
  check_invalid("*11\r\n", Role::Request, small);
}

TEST_CASE("Redis RESP: nesting is bounded") {
  const std::string leaf = ":1\r\n";
  CHECK(frame(repeat("*1\r\n", 64) + leaf).status == Status::Complete);
  check_invalid(repeat("*1\r\n", 65) + leaf);
  check_invalid(repeat("%1\r\n", 65));
  Limits shallow;
  shallow.max_depth = 2;
  CHECK(frame("*1\r\n*1\r\n:1\r\n", Role::Reply, shallow).status == Status::Complete);
  check_invalid("*1\r\n*1\r\n*1\r\n:1\r\n", Role::Reply, shallow);
  // Empty and null aggregates open nothing, so they fit at the limit.
  CHECK(frame("*1\r\n*1\r\n*0\r\n", Role::Reply, shallow).status == Status::Complete);
}

TEST_CASE("Redis RESP: lines are bounded") {
  Limits limits;
  limits.max_line = 16;
  check_invalid("+" + std::string(40, 'a'), Role::Reply, limits);  // no CRLF in sight
  check_invalid("GET " + std::string(40, 'a'), Role::Request, limits);
  CHECK(frame("+" + std::string(10, 'a'), Role::Reply, limits).status == Status::NeedMore);
  CHECK(frame("+" + std::string(10, 'a') + "\r\n", Role::Reply, limits).status == Status::Complete);
  // The default is 64 KiB.
  check_invalid("+" + std::string(64 * 1024, 'a'));
  CHECK(frame("+" + std::string(60 * 1024, 'a') + "\r\n").status == Status::Complete);
}

TEST_CASE("Redis RESP: a framer stays Invalid until reset") {
  Framer framer(Role::Reply);
  CHECK(frame_with(framer, "?\r\n").status == Status::Invalid);
  CHECK(frame_with(framer, "+OK\r\n").status == Status::Invalid);
  framer.reset();
  CHECK(frame_with(framer, "+OK\r\n").status == Status::Complete);
  CHECK(framer.reply().value.text == "OK");
}

// ---------------------------------------------------------------------------------------------
// Bodies that were not captured

TEST_CASE("Redis RESP: a truncated bulk body is skipped by its declared length") {
  const std::string head = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$100000\r\n";
  const std::string captured = head + std::string(10, 'v');  // the capture kept 10 body bytes
  Framer framer(Role::Request);
  const FrameResult r = frame_with(framer, captured);
  REQUIRE(r.status == Status::NeedMore);
  CHECK(r.consumed == captured.size());
  CHECK(r.skippable == 100000 - 10 + 2);
  CHECK(r.needed == r.skippable);

  CHECK_FALSE(framer.at_boundary());
  const FrameResult skipped = framer.skip(r.skippable);
  CHECK(framer.at_boundary());
  CHECK(skipped.status == Status::Complete);
  CHECK(skipped.consumed == r.skippable);
  CHECK(framer.message_bytes() == head.size() + 100000 + 2);
  CHECK(framer.request().command == "SET");
  REQUIRE(framer.request().args.size() == 2);
  CHECK(framer.request().args[0].value == "key");
  CHECK_FALSE(framer.request().args[0].truncated);
  CHECK(framer.request().args[1].value == std::string(10, 'v'));
  CHECK(framer.request().args[1].truncated);

  // The next message follows at once.
  CHECK(frame_with(framer, "*1\r\n$4\r\nPING\r\n").status == Status::Complete);
  CHECK(framer.request().command == "PING");
}

TEST_CASE("Redis RESP: part of a body skipped, the rest and its CRLF seen and checked") {
  Framer framer(Role::Reply);
  FrameResult r = frame_with(framer, "*2\r\n$10\r\nab");
  REQUIRE(r.status == Status::NeedMore);
  CHECK(r.skippable == 10);
  r = framer.skip(4);  // a hole of 4 bytes
  CHECK(r.status == Status::NeedMore);
  CHECK(r.consumed == 4);
  CHECK(r.skippable == 6);
  r = frame_with(framer, "ghij\r\n:1\r\n");
  CHECK(r.status == Status::Complete);
  CHECK(r.consumed == 10);
  CHECK(framer.reply().head[0].text == "abghij");
  CHECK(framer.reply().head[0].truncated);

  // A wrong CRLF after the body shows the length was a lie.
  Framer liar(Role::Reply);
  REQUIRE(frame_with(liar, "$3\r\na").status == Status::NeedMore);
  liar.skip(2);
  CHECK(frame_with(liar, "XY").status == Status::Invalid);

  // skip() outside a body takes nothing; more than the body takes only the body.
  Framer idle(Role::Reply);
  CHECK(idle.at_boundary());
  CHECK(idle.skip(5).consumed == 0);
  REQUIRE(frame_with(idle, "$2\r\n").status == Status::NeedMore);
  const FrameResult over = idle.skip(100);
  CHECK(over.status == Status::Complete);
  CHECK(over.consumed == 4);
}

TEST_CASE("Redis RESP: a framer copied in the middle of a message goes on alone") {
  Framer original(Role::Request);
  REQUIRE(frame_with(original, "*2\r\n$4\r\nEC").status == Status::NeedMore);
  Framer copy = original;
  CHECK(frame_with(copy, "HO\r\n$2\r\nhi\r\n").status == Status::Complete);
  CHECK(copy.request().command == "ECHO");
  CHECK(copy.request().args[0].value == "hi");
  CHECK(original.request().command == "EC");  // untouched by the copy
  CHECK(original.request().args.empty());
}

TEST_CASE("Redis RESP: needed bytes for a message cut short") {
  CHECK(frame("$10\r\nabc").needed == 9);
  CHECK(frame("$10\r\nabc").skippable == 9);
  CHECK(frame("+OK").needed == 1);
  CHECK(frame("+OK").skippable == 0);
  CHECK(frame("+OK").consumed == 0);  // a partial line is not taken
  CHECK(frame("*2\r\n:1\r\n").consumed == 8);
}

TEST_CASE("Redis RESP: a streamed string's chunks are skippable too") {
  Framer framer(Role::Reply);
  FrameResult r = frame_with(framer, "$?\r\n;1000\r\nabc");
  REQUIRE(r.status == Status::NeedMore);
  CHECK(r.skippable == 1000 - 3 + 2);
  r = framer.skip(r.skippable);
  CHECK(r.status == Status::NeedMore);
  CHECK(frame_with(framer, ";2\r\nde\r\n;0\r\n").status == Status::Complete);
  CHECK(framer.reply().value.text == "abcde");
  CHECK(framer.reply().value.truncated);
  CHECK(framer.reply().value.length == -1);
}

// ---------------------------------------------------------------------------------------------
// RESP3 streams and attributes

TEST_CASE("Redis RESP: streamed strings and aggregates") {
  const ReplySummary s = reply_of("$?\r\n;4\r\nHell\r\n;7\r\no world\r\n;0\r\n");
  CHECK(s.type() == Type::BulkString);
  CHECK(s.value.text == "Hello world");
  CHECK(s.value.length == -1);

  const ReplySummary a = reply_of("*?\r\n:1\r\n:2\r\n:3\r\n:4\r\n.\r\n");
  CHECK(a.type() == Type::Array);
  CHECK(a.value.length == -1);
  REQUIRE(a.head.size() == 3);
  CHECK(a.head[2].integer == 3);

  check_complete("%?\r\n+a\r\n:1\r\n+b\r\n:2\r\n.\r\n");
  check_complete("~?\r\n.\r\n");
  check_complete("*?\r\n*?\r\n.\r\n$?\r\n;1\r\nx\r\n;0\r\n.\r\n");  // nested
  CHECK(frame("*?\r\n:1\r\n").status == Status::NeedMore);          // no '.' yet
  CHECK(frame("$?\r\n;2\r\nab\r\n").status == Status::NeedMore);    // no ";0" yet
  check_invalid("*?\r\n:1\r\n;1\r\n");
  check_invalid("$?\r\n;2\r\nabc\r\n");  // chunk longer than declared
  check_invalid("*2\r\n:1\r\n.\r\n");    // a sized array has no end marker
}

TEST_CASE("Redis RESP: attributes before a reply are part of it") {
  const std::string wire =
      "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
      "*2\r\n:2039123\r\n:9543892\r\n";
  const ReplySummary r = reply_of(wire);
  CHECK(r.has_attributes);
  CHECK(r.type() == Type::Array);
  REQUIRE(r.head.size() == 2);
  CHECK(r.head[0].integer == 2039123);
  CHECK(r.head[1].integer == 9543892);

  // An attribute alone is not a message yet.
  CHECK(frame("|1\r\n+a\r\n+b\r\n").status == Status::NeedMore);
  // Inside an aggregate it is not one of its elements.
  const ReplySummary nested = reply_of("*2\r\n|1\r\n+ttl\r\n:3600\r\n:1\r\n:2\r\n");
  CHECK_FALSE(nested.has_attributes);
  REQUIRE(nested.head.size() == 2);
  CHECK(nested.head[0].integer == 1);
  CHECK(nested.head[1].integer == 2);
  CHECK(reply_of("|0\r\n+OK\r\n").value.text == "OK");
}

// ---------------------------------------------------------------------------------------------
// Pushes, pub/sub, errors

TEST_CASE("Redis RESP: pushes and pub/sub messages are recognised") {
  const ReplySummary push = reply_of(">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
  CHECK(push.is_push());
  CHECK(push.pubsub() == PubSub::Message);
  CHECK(push.head[1].text == "news");

  const ReplySummary invalidate = reply_of(">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\nfoo\r\n");
  CHECK(invalidate.is_push());
  CHECK(invalidate.pubsub() == PubSub::Invalidate);

  const ReplySummary message = reply_of("*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
  CHECK_FALSE(message.is_push());
  CHECK(message.pubsub() == PubSub::Message);
  CHECK_FALSE(message.subscription_count());

  CHECK(reply_of("*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n").pubsub() ==
        PubSub::PMessage);
  CHECK(reply_of("*3\r\n$8\r\nsmessage\r\n$1\r\ns\r\n$1\r\nx\r\n").pubsub() == PubSub::SMessage);
  CHECK(reply_of("*2\r\n$4\r\npong\r\n$0\r\n\r\n").pubsub() == PubSub::Pong);

  const ReplySummary subscribed = reply_of("*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  CHECK(subscribed.pubsub() == PubSub::Subscribe);
  CHECK(subscribed.subscription_count() == 1);
  const ReplySummary gone = reply_of("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
  CHECK(gone.pubsub() == PubSub::Unsubscribe);
  CHECK(gone.head[1].null);
  CHECK(gone.subscription_count() == 0);
  CHECK(reply_of(">3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n").subscription_count() == 2);

  // Ordinary arrays are none of these.
  CHECK(reply_of("*2\r\n$3\r\nfoo\r\n$3\r\nbar\r\n").pubsub() == PubSub::None);
  CHECK(reply_of("*1\r\n:1\r\n").pubsub() == PubSub::None);
  CHECK(reply_of("$7\r\nmessage\r\n").pubsub() == PubSub::None);  // not an aggregate
}

TEST_CASE("Redis RESP: error replies and their prefixes") {
  CHECK(reply_of("-ERR unknown command 'FOO'\r\n").error_prefix() == "ERR");
  CHECK(reply_of("-WRONGTYPE Operation against a key\r\n").error_prefix() == "WRONGTYPE");
  CHECK(reply_of("-NOAUTH Authentication required.\r\n").error_prefix() == "NOAUTH");
  CHECK(reply_of("-MOVED 3999 127.0.0.1:6381\r\n").error_prefix() == "MOVED");
  CHECK(reply_of("-LOADING\r\n").error_prefix() == "LOADING");
  const ReplySummary blob = reply_of("!21\r\nSYNTAX invalid syntax\r\n");
  CHECK(blob.is_error());
  CHECK(blob.type() == Type::BlobError);
  CHECK(blob.error_prefix() == "SYNTAX");
  CHECK_FALSE(reply_of("+OK\r\n").is_error());
  CHECK(reply_of("+OK\r\n").error_prefix().empty());
  CHECK(reply_of("-ERR x\r\n").value.text == "ERR x");
}

// ---------------------------------------------------------------------------------------------
// Requests

TEST_CASE("Redis RESP: request arrays give command, subcommand and bounded arguments") {
  const RequestSummary set = request_of("*3\r\n$3\r\nset\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
  CHECK(set.command == "SET");
  CHECK(set.subcommand.empty());
  CHECK(set.arg_count == 2);
  REQUIRE(set.args.size() == 2);
  CHECK(set.args[0].value == "key");
  CHECK(set.args[1].value == "value");
  CHECK_FALSE(set.inline_form);

  const RequestSummary setname = request_of("*3\r\n$6\r\nclient\r\n$7\r\nsetname\r\n$3\r\napp\r\n");
  CHECK(setname.command == "CLIENT");
  CHECK(setname.subcommand == "SETNAME");
  CHECK(setname.arg_count == 1);
  REQUIRE(setname.args.size() == 1);
  CHECK(setname.args[0].value == "app");

  const RequestSummary command = request_of("*1\r\n$7\r\nCOMMAND\r\n");
  CHECK(command.command == "COMMAND");
  CHECK(command.subcommand.empty());
  CHECK(command.arg_count == 0);

  // GET is no container: its second word is an argument.
  const RequestSummary get = request_of("*2\r\n$3\r\nGET\r\n$6\r\nconfig\r\n");
  CHECK(get.subcommand.empty());
  CHECK(get.args[0].value == "config");

  std::string mset = "*21\r\n$4\r\nMSET\r\n";
  for (int i = 0; i < 20; ++i) mset += "$2\r\nk" + std::to_string(i % 10) + "\r\n";
  const RequestSummary many = request_of(mset);
  CHECK(many.arg_count == 20);
  CHECK(many.args.size() == Limits{}.kept_args);

  const std::string long_value(500, 'x');
  const RequestSummary big = request_of("*2\r\n$4\r\nECHO\r\n$500\r\n" + long_value + "\r\n");
  CHECK(big.args[0].value.size() == Limits{}.kept_arg_bytes);
  CHECK(big.args[0].truncated);

  const RequestSummary odd = request_of("*1\r\n$100\r\n" + std::string(100, 'Z') + "\r\n");
  CHECK(odd.command.size() == kMaxCommandName);
  CHECK(odd.name_truncated);

  // Binary-safe arguments.
  const RequestSummary binary = request_of(bin("*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n"));
  CHECK(binary.args[0].value == bin("a\0b"));
}

TEST_CASE("Redis RESP: empty requests and requests Redis would refuse") {
  CHECK(request_of("*0\r\n").command.empty());
  CHECK(request_of("*-1\r\n").command.empty());
  check_invalid("*1\r\n:1\r\n", Role::Request);  // elements must be bulk strings
  check_invalid("*1\r\n*1\r\n$1\r\na\r\n", Role::Request);
  check_invalid("*1\r\n$?\r\n;1\r\na\r\n;0\r\n", Role::Request);
  check_invalid("*1\r\n$-1\r\n", Role::Request);
  check_invalid("*?\r\n$1\r\na\r\n.\r\n", Role::Request);
  check_invalid("*-2\r\n", Role::Request);
}

TEST_CASE("Redis RESP: inline commands") {
  const RequestSummary ping = request_of("PING\r\n");
  CHECK(ping.inline_form);
  CHECK(ping.command == "PING");
  CHECK(ping.arg_count == 0);

  const RequestSummary set = request_of("set a b\r\n");
  CHECK(set.command == "SET");
  CHECK(set.arg_count == 2);
  CHECK(set.args[1].value == "b");

  CHECK(request_of("ping\n").command == "PING");  // LF alone, as Redis accepts
  CHECK(request_of("  GET   k  \r\n").args[0].value == "k");

  const RequestSummary quoted = request_of("SET k \"hello world\" 'it\\'s' \"\\x41\\n\"\r\n");
  REQUIRE(quoted.args.size() == 4);
  CHECK(quoted.args[1].value == "hello world");
  CHECK(quoted.args[2].value == "it's");
  CHECK(quoted.args[3].value == "A\n");

  const RequestSummary config = request_of("config get maxmemory\r\n");
  CHECK(config.subcommand == "GET");
  CHECK(config.arg_count == 1);

  const RequestSummary blank = request_of("\r\n");
  CHECK(blank.command.empty());
  CHECK(request_effect(blank).replies == 0);

  check_invalid("SET k \"open\r\n", Role::Request);          // unbalanced quotes
  check_invalid("SET k \"a\"b\r\n", Role::Request);          // a quote must end the word
  check_invalid("\x16\x03\x01\x02\x00\x01", Role::Request);  // TLS, no line end needed to tell
  check_invalid("GET\x01k\r\n", Role::Request);
}

// ---------------------------------------------------------------------------------------------
// Commands

RequestSummary command(std::string_view line) {
  return request_of(std::string(line) + "\r\n");
}

TEST_CASE("Redis commands: the table of known names") {
  for (const char* name :
       {"GET",          "set",     "Incr",   "LPUSH",     "RPUSH",      "LPOP",       "RPOP",
        "SADD",         "HSET",    "SPOP",   "ZADD",      "ZPOPMIN",    "LRANGE",     "MSET",
        "MGET",         "PING",    "ECHO",   "SELECT",    "AUTH",       "HELLO",      "MULTI",
        "EXEC",         "DISCARD", "WATCH",  "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE",
        "PUNSUBSCRIBE", "PUBLISH", "CLIENT", "CONFIG",    "INFO",       "DEL",        "EXISTS",
        "EXPIRE",       "TTL",     "KEYS",   "SCAN",      "HGET",       "HGETALL",    "HINCRBY",
        "XADD",         "XREAD",   "EVAL",   "EVALSHA",   "FLUSHALL",   "FLUSHDB",    "DBSIZE",
        "QUIT",         "RESET",   "MONITOR"}) {
    CAPTURE(name);
    CHECK(known_command(name));
  }
  CHECK_FALSE(known_command("FOOBAR"));
  CHECK_FALSE(known_command(""));
  CHECK_FALSE(known_command(std::string(1000, 'A')));
  CHECK_FALSE(known_command(bin("GET\0")));
  CHECK(has_subcommands("CLIENT"));
  CHECK(has_subcommands("config"));
  CHECK_FALSE(has_subcommands("GET"));
  CHECK(operation_name("get") == "GET");
  CHECK(operation_name("NOSUCHCOMMAND") == kOtherOperation);
  CHECK(kOtherOperation == "_OTHER");
}

TEST_CASE("Redis commands: effects on the connection and replies drawn") {
  CHECK(request_effect(command("GET k")).effect == Effect::None);
  CHECK(request_effect(command("GET k")).replies == 1);
  CHECK(request_effect(command("NOSUCH x")).replies == 1);

  const RequestEffect select = request_effect(command("SELECT 5"));
  CHECK(select.effect == Effect::Select);
  CHECK(select.db == 5);
  CHECK_FALSE(request_effect(command("SELECT five")).db);

  CHECK(request_effect(command("MULTI")).effect == Effect::Multi);
  CHECK(request_effect(command("exec")).effect == Effect::Exec);
  CHECK(request_effect(command("DISCARD")).effect == Effect::Discard);

  const RequestEffect subscribe = request_effect(command("SUBSCRIBE a b c"));
  CHECK(subscribe.effect == Effect::Subscribe);
  CHECK(subscribe.replies == 3);
  CHECK(request_effect(command("PSUBSCRIBE n*")).replies == 1);
  CHECK(request_effect(command("SSUBSCRIBE s1 s2")).replies == 2);
  CHECK(request_effect(command("UNSUBSCRIBE")).effect == Effect::Unsubscribe);
  CHECK(request_effect(command("UNSUBSCRIBE")).replies == kRepliesPerSubscription);
  CHECK(request_effect(command("PUNSUBSCRIBE a b")).replies == 2);

  const RequestEffect hello = request_effect(command("HELLO 3"));
  CHECK(hello.effect == Effect::Hello);
  CHECK(hello.protocol == 3);
  CHECK_FALSE(request_effect(command("HELLO")).protocol);
  CHECK_FALSE(request_effect(command("HELLO 9")).protocol);

  CHECK(request_effect(command("RESET")).effect == Effect::Reset);
  CHECK(request_effect(command("QUIT")).effect == Effect::Quit);
  CHECK(request_effect(command("MONITOR")).effect == Effect::Monitor);

  CHECK(request_effect(command("CLIENT REPLY OFF")).effect == Effect::ClientReplyOff);
  CHECK(request_effect(command("CLIENT REPLY OFF")).replies == 0);
  CHECK(request_effect(command("client reply skip")).effect == Effect::ClientReplySkip);
  CHECK(request_effect(command("CLIENT REPLY SKIP")).replies == 0);
  CHECK(request_effect(command("CLIENT REPLY ON")).effect == Effect::ClientReplyOn);
  CHECK(request_effect(command("CLIENT REPLY ON")).replies == 1);
  CHECK(request_effect(command("CLIENT SETNAME x")).effect == Effect::None);
  CHECK(request_effect(request_of("*0\r\n")).replies == 0);
}

TEST_CASE("Redis commands: query text, redacted unless raw") {
  CHECK(query_text(command("SET key value"), false) == "SET ? ?");
  CHECK(query_text(command("HSET h f v"), false) == "HSET ? ? ?");
  CHECK(query_text(command("CLIENT SETNAME app"), false) == "CLIENT SETNAME ?");
  CHECK(query_text(command("PING"), false) == "PING");
  CHECK(query_text(command("config get maxmemory"), false) == "CONFIG GET ?");
  CHECK(query_text(request_of("*0\r\n"), false).empty());

  CHECK(query_text(command("SET key value"), true) == "SET key value");
  CHECK(query_text(command("SET k \"hello world\""), true) == "SET k \"hello world\"");
  CHECK(query_text(request_of(bin("*2\r\n$4\r\nECHO\r\n$3\r\na\0\n\r\n")), true) ==
        "ECHO \"a\\x00\\n\"");
  CHECK(query_text(request_of("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"), true) == "ECHO \"\"");

  // Bounded: arguments past the kept ones are "...", and so is the end of a long one.
  std::string mset = "MSET";
  for (int i = 0; i < 20; ++i) mset += " k" + std::to_string(i);
  CHECK(query_text(command(mset), false) == "MSET ? ? ? ? ? ? ? ? ...");
  CHECK(query_text(command("ECHO " + std::string(300, 'x')), true) ==
        "ECHO " + std::string(Limits{}.kept_arg_bytes, 'x') + "...");
}

TEST_CASE("Redis commands: credentials never reach the query text, even raw") {
  const std::string secret = "s3cr3t-password";
  for (const bool raw : {false, true}) {
    CAPTURE(raw);
    CHECK(query_text(command("AUTH " + secret), raw) == "AUTH ?");
    CHECK(query_text(command("auth default " + secret), raw) == "AUTH ? ?");
    CHECK(query_text(request_of("*2\r\n$4\r\nAUTH\r\n$15\r\n" + secret + "\r\n"), raw) == "AUTH ?");
  }
  CHECK(query_text(command("HELLO 3 AUTH default " + secret + " SETNAME app"), true) ==
        "HELLO 3 AUTH ? ? SETNAME app");
  CHECK(query_text(command("HELLO 3 auth default " + secret), true) == "HELLO 3 auth ? ?");
  CHECK(query_text(command("CONFIG SET requirepass " + secret), true) ==
        "CONFIG SET requirepass ?");
  CHECK(query_text(command("CONFIG SET maxmemory 1gb masterauth " + secret), true) ==
        "CONFIG SET maxmemory 1gb masterauth ?");
  CHECK(query_text(command("ACL SETUSER alice on >" + secret), true) == "ACL SETUSER alice ? ?");
  CHECK(query_text(command("MIGRATE h 6379 k 0 5000 AUTH " + secret), true) ==
        "MIGRATE h 6379 k 0 5000 AUTH ?");
  CHECK(query_text(command("MIGRATE h 6379 k 0 5000 AUTH2 u " + secret), true) ==
        "MIGRATE h 6379 k 0 5000 AUTH2 ? ?");
  for (const char* line : {"AUTH x", "HELLO 3 AUTH u x", "CONFIG SET requirepass x"}) {
    const std::string text = query_text(command(std::string(line) + secret), true);
    CHECK(text.find(secret) == std::string::npos);
  }
}

TEST_CASE("Redis RESP: mutated messages in random pieces never take more than offered") {
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  auto next = [&seed] {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return seed;
  };
  std::string all;
  for (const auto& s : sample_replies()) all += s;
  for (const auto& s : sample_requests()) all += s;
  size_t completes = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string wire = all;
    for (int m = 0; m < 3; ++m) wire[next() % wire.size()] = static_cast<char>(next() & 0xff);
    const Role role = round % 2 ? Role::Request : Role::Reply;
    Framer framer(role);
    std::string pending;
    size_t pos = 0;
    while (pos < wire.size()) {
      const size_t piece = 1 + next() % 9;
      pending += wire.substr(pos, piece);
      pos += piece;
      FrameResult r = framer.feed(bytes_of(pending));
      REQUIRE(r.consumed <= pending.size());
      pending.erase(0, r.consumed);
      if (r.status == Status::NeedMore && r.skippable > 0 && next() % 4 == 0) {
        r = framer.skip(1 + next() % r.skippable);  // a hole in the capture
      }
      if (r.status == Status::Complete) {
        ++completes;
        CHECK(framer.message_bytes() > 0);
      }
      if (r.status == Status::Invalid) {
        framer.reset();
        pending.clear();
      }
    }
  }
  CHECK(completes > 1000);
}

TEST_CASE("Redis RESP: a huge reply is framed in bounded memory") {
  const size_t n = 200000;
  const std::string wire = "*" + std::to_string(n) + "\r\n" + repeat(":1\r\n", n);
  const ReplySummary r = reply_of(wire);
  CHECK(r.value.length == static_cast<int64_t>(n));
  CHECK(r.head.size() == kReplyHeadElements);
}

}  // namespace
}  // namespace weft::protocols::redis
