// Redis through the connection tracker, as real traffic reaches it: one data event per syscall,
// captured prefixes, both ends of a connection, and the spans its exchanges describe.
#include <doctest/doctest.h>

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "http1_scenarios.h"
#include "protocols/redis/redis.h"
#include "span_description_helpers.h"

namespace weft::test {
namespace {

using protocols::redis::redis_of;
using protocols::redis::Type;

// A RESP request array of bulk strings.
std::string cmd(std::initializer_list<std::string> words) {
  std::string out = "*" + std::to_string(words.size()) + "\r\n";
  for (const auto& w : words) out += "$" + std::to_string(w.size()) + "\r\n" + w + "\r\n";
  return out;
}
std::string bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

const protocols::ProtocolCounters& redis_counters(const Capture& cap) {
  return cap.tracker.protocol_counters().at(
      protocols::registry_index(&protocols::redis::protocol()));
}

TEST_CASE("Redis: commands on both sides become exchanges with database spans") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 3, side);
    s.open();
    s.request(cmd({"SET", "k", "v"}));
    s.response("+OK\r\n");
    s.request(cmd({"GET", "k"}));
    s.response(bulk("v"));
    s.request(cmd({"INCR", "n"}));
    s.response(":1\r\n");
    REQUIRE(cap.exchanges.size() == 3);
    const Exchange& get = cap.exchanges[1];
    CHECK(get.protocol_name() == "redis");
    CHECK(get.side == side);
    CHECK(redis_of(get).request.command == "GET");
    CHECK(redis_of(get).reply_type == Type::BulkString);
    CHECK(redis_of(get).reply_length == 1);
    CHECK(get.request.wire_bytes == cmd({"GET", "k"}).size());
    CHECK(get.response.wire_bytes == bulk("v").size());
    check_time_order(get);
    auto d = describe(get);
    CHECK(d.name == "GET");
    CHECK(d.kind == (side == Role::Server ? SpanKind::Server : SpanKind::Client));
    CHECK(d.status == StatusCode::Unset);
    CHECK(sattr(d, "db.system.name") == "redis");
    CHECK(sattr(d, "db.operation.name") == "GET");
    CHECK(sattr(d, "db.namespace") == "0");
    CHECK(sattr(d, "db.query.text") == "GET ?");
    CHECK(sattr(d, "server.address") == (side == Role::Server ? "10.0.0.1" : "10.0.0.2"));
    CHECK(std::get<int64_t>(*attr(d, "server.port")) == 8080);
    CHECK(sattr(d, "network.peer.address") == "10.0.0.2");
    CHECK(get.protocol->render_text(get) == "GET ? -> $1");
    const auto* family = get.protocol->metric_family(d.kind);
    if (side == Role::Client) {
      REQUIRE(family);
      CHECK(family->name == "db.client.operation.duration");
    } else {
      REQUIRE(family);
      CHECK(family->name == "weft.db.server.operation.duration");
    }
    if (side == Role::Server) CHECK(cap.request_starts.size() == 3);
    s.close();
    CHECK(redis_counters(cap).exchanges == 3);
    CHECK(redis_counters(cap).parse_errors == 0);
    CHECK(redis_counters(cap).unmatched_requests == 0);
  }
}

TEST_CASE("Redis: pipelined commands in one write, replies in another") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 4, side);
    std::string reqs, reps;
    for (int i = 0; i < 10; ++i) {
      reqs += cmd({"INCR", "c" + std::to_string(i)});
      reps += ":" + std::to_string(i) + "\r\n";
    }
    s.request(reqs);
    s.response(reps);
    REQUIRE(cap.exchanges.size() == 10);
    uint64_t pos = 0;
    for (int i = 0; i < 10; ++i) {
      CHECK(redis_of(cap.exchanges[i]).request.args.at(0).value == "c" + std::to_string(i));
      CHECK(cap.exchanges[i].request.stream_pos == pos);
      pos += cmd({"INCR", "c" + std::to_string(i)}).size();
    }
    s.close();
    CHECK(redis_counters(cap).unmatched_requests == 0);
  }
}

TEST_CASE("Redis: MULTI/EXEC queues commands and EXEC answers with an array") {
  Capture cap;
  Socket s(cap, 5, Role::Client);
  s.request(cmd({"MULTI"}) + cmd({"SET", "a", "1"}) + cmd({"INCR", "a"}) + cmd({"EXEC"}));
  s.response("+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n:2\r\n");
  s.request(cmd({"GET", "a"}));
  s.response(bulk("2"));
  REQUIRE(cap.exchanges.size() == 5);
  CHECK_FALSE(redis_of(cap.exchanges[0]).in_transaction);
  CHECK(redis_of(cap.exchanges[1]).in_transaction);
  CHECK(redis_of(cap.exchanges[1]).reply_text == "QUEUED");
  CHECK(redis_of(cap.exchanges[2]).in_transaction);
  CHECK(redis_of(cap.exchanges[3]).request.command == "EXEC");
  CHECK_FALSE(redis_of(cap.exchanges[3]).in_transaction);
  CHECK(redis_of(cap.exchanges[3]).reply_type == Type::Array);
  CHECK(redis_of(cap.exchanges[3]).reply_length == 2);
  CHECK_FALSE(redis_of(cap.exchanges[4]).in_transaction);
}

TEST_CASE("Redis: SUBSCRIBE draws one reply per channel; published messages are not replies") {
  Capture cap;
  Socket s(cap, 6, Role::Client);
  s.request(cmd({"SUBSCRIBE", "a", "b", "c"}));
  s.response("*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n");
  s.response(
      "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:3\r\n");
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(redis_of(cap.exchanges[0]).replies == 3);
  s.response("*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n");
  s.response("*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$5\r\nworld\r\n");
  CHECK(cap.exchanges.size() == 1);
  CHECK(redis_counters(cap).not_replies == 2);
  s.request(cmd({"UNSUBSCRIBE"}));
  s.response("*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n");
  s.response(
      "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:0\r\n");
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(redis_of(cap.exchanges[1]).replies == 3);
  // Not subscribed any more: an array starting "message" is an ordinary reply.
  s.request(cmd({"LRANGE", "l", "0", "-1"}));
  s.response("*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$1\r\ny\r\n");
  CHECK(cap.exchanges.size() == 3);
  s.close();
  CHECK(redis_counters(cap).unmatched_requests == 0);
  CHECK(redis_counters(cap).unmatched_responses == 0);
}

TEST_CASE("Redis: HELLO 3, then pushes are not replies") {
  Capture cap;
  Socket s(cap, 7, Role::Server);
  s.request(cmd({"HELLO", "3"}));
  s.response("%2\r\n$6\r\nserver\r\n$5\r\nredis\r\n$5\r\nproto\r\n:3\r\n");
  s.request(cmd({"SUBSCRIBE", "ch"}));
  s.response(">3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
  s.response(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n");
  s.request(cmd({"PING"}));
  s.response(">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nyo\r\n+PONG\r\n");
  REQUIRE(cap.exchanges.size() == 3);
  CHECK(redis_of(cap.exchanges[0]).reply_type == Type::Map);
  CHECK(redis_of(cap.exchanges[1]).request.command == "SUBSCRIBE");
  CHECK(redis_of(cap.exchanges[2]).reply_text == "PONG");
  CHECK(redis_of(cap.exchanges[2]).resp_version == 3);
  CHECK(redis_counters(cap).not_replies == 2);
}

TEST_CASE("Redis: db.namespace is not assumed on a connection weft did not see open") {
  Capture cap;
  Socket s(cap, 9, Role::Client);  // no handshake seen: open before weft, or met through data
  s.request(cmd({"GET", "k"}));
  s.response("$-1\r\n");
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(sattr(describe(cap.exchanges[0]), "db.namespace") == "<absent>");
}

TEST_CASE("Redis: SELECT sets db.namespace for later commands when it succeeds") {
  Capture cap;
  Socket s(cap, 8, Role::Client);
  s.open();
  s.request(cmd({"SELECT", "3"}) + cmd({"GET", "k"}));
  s.response("+OK\r\n$-1\r\n");
  s.request(cmd({"SELECT", "99"}));
  s.response("-ERR DB index is out of range\r\n");
  s.request(cmd({"GET", "k"}));
  s.response("$-1\r\n");
  REQUIRE(cap.exchanges.size() == 4);
  CHECK(sattr(describe(cap.exchanges[0]), "db.namespace") == "0");
  CHECK(sattr(describe(cap.exchanges[1]), "db.namespace") == "3");
  CHECK(redis_of(cap.exchanges[1]).reply_null);
  CHECK(describe(cap.exchanges[2]).status == StatusCode::Error);
  CHECK(sattr(describe(cap.exchanges[3]), "db.namespace") == "3");
}

TEST_CASE("Redis: an error reply is the span's status with its prefix") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 9, side);
    s.request(cmd({"LPUSH", "str", "x"}));
    s.response("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    REQUIRE(cap.exchanges.size() == 1);
    auto d = describe(cap.exchanges[0]);
    CHECK(d.status == StatusCode::Error);
    CHECK(sattr(d, "db.response.status_code") == "WRONGTYPE");
    CHECK(sattr(d, "error.type") == "WRONGTYPE");
    CHECK(d.outcome == "WRONGTYPE");
    CHECK(cap.exchanges[0].protocol->render_text(cap.exchanges[0]) == "LPUSH ? ? -> -WRONGTYPE");
    nlohmann::json j = nlohmann::json::object();
    cap.exchanges[0].protocol->render_json(cap.exchanges[0], j);
    CHECK(j["error_prefix"] == "WRONGTYPE");
    CHECK(j["command"] == "LPUSH");
  }
}

TEST_CASE("Redis: first seen mid-reply, traced from the next command") {
  Capture cap;
  Socket s(cap, 10, Role::Client);
  // The tail of a bulk reply to a command sent before weft looked.
  s.response("lo world\r\n");
  CHECK(cap.exchanges.empty());
  s.request(cmd({"GET", "k"}));
  s.response(bulk("hello"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(redis_of(cap.exchanges[0]).request.command == "GET");
  // db.namespace cannot be known: SELECT may have happened before.
  CHECK(sattr(describe(cap.exchanges[0]), "db.namespace") == "<absent>");
}

TEST_CASE("Redis: a weak first message whose answer does not parse is dropped") {
  // Reply-looking bytes alone decide nothing: the next request does.
  Capture cap;
  Socket s(cap, 11, Role::Client);
  s.response(":12\r\n");
  CHECK(redis_counters(cap).weak_rejected == 0);
  s.request(cmd({"GET", "k"}));
  s.response(bulk("v"));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(redis_counters(cap).unmatched_responses == 1);  // ":12" answered an unseen command
  // An inline command line is weakly Redis; an answer that is not RESP drops it.
  Capture cap3;
  Socket u(cap3, 13, Role::Client);
  u.request("GET k\r\n");
  u.response(std::string("\x01\x02 not resp\r\n"));
  CHECK(cap3.exchanges.empty());
  CHECK(redis_counters(cap3).weak_rejected == 1);
}

TEST_CASE("Redis: an HTTP request is never taken as Redis") {
  Capture cap;
  Socket s(cap, 14, Role::Server);
  s.request("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  s.response("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(cap.exchanges[0].protocol_name() == "http1");
  CHECK(protocols::redis::detect(
            std::span<const uint8_t>(reinterpret_cast<const uint8_t*>("GET / HTTP/1.1\r\n"), 16))
            .detection == protocols::Detection::No);
}

TEST_CASE("Redis: inline commands are detected weakly and traced") {
  Capture cap;
  Socket s(cap, 15, Role::Server);
  s.request("PING\r\n");
  s.response("+PONG\r\n");
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(redis_of(cap.exchanges[0]).request.inline_form);
  CHECK(redis_of(cap.exchanges[0]).request.command == "PING");
}

TEST_CASE("Redis: db.query.text is redacted unless the user opts in; AUTH never shows") {
  Capture cap;
  Socket s(cap, 16, Role::Client);
  s.request(cmd({"AUTH", "user", "secret"}));
  s.response("+OK\r\n");
  s.request(cmd({"HSET", "h", "f", "value"}));
  s.response(":1\r\n");
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(sattr(describe(cap.exchanges[0], true), "db.query.text") == "AUTH ? ?");
  CHECK(sattr(describe(cap.exchanges[1]), "db.query.text") == "HSET ? ? ?");
  CHECK(sattr(describe(cap.exchanges[1], true), "db.query.text") == "HSET h f value");
}

TEST_CASE("Redis: an uncaptured SET body is skipped by its length; the next command parses") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 17, side);
    std::string big(100'000, 'x');
    std::string set = cmd({"SET", "big", big});
    s.request(set, 4096);
    s.response("+OK\r\n");
    s.request(cmd({"GET", "small"}));
    s.response(bulk("1"));
    REQUIRE(cap.exchanges.size() == 2);
    CHECK(redis_of(cap.exchanges[0]).request.command == "SET");
    CHECK(cap.exchanges[0].request.wire_bytes == set.size());
    CHECK(redis_of(cap.exchanges[1]).request.command == "GET");
    CHECK(redis_counters(cap).skipped_bytes == set.size() - 4096);
    CHECK(redis_counters(cap).parse_errors == 0);
  }
}

TEST_CASE("Redis: CLIENT REPLY OFF and SKIP draw no replies") {
  Capture cap;
  Socket s(cap, 18, Role::Client);
  s.request(cmd({"CLIENT", "REPLY", "SKIP"}) + cmd({"SET", "a", "1"}) + cmd({"GET", "a"}));
  s.response(bulk("1"));
  REQUIRE(cap.exchanges.size() == 3);
  CHECK(redis_of(cap.exchanges[0]).reply_type == Type::None);
  CHECK(redis_of(cap.exchanges[1]).reply_type == Type::None);
  CHECK(redis_of(cap.exchanges[2]).reply_type == Type::BulkString);
  s.close();
  CHECK(redis_counters(cap).unmatched_requests == 0);
}

TEST_CASE("Redis: MONITOR ends the conversation; unanswered requests count at close") {
  Capture cap;
  Socket s(cap, 19, Role::Client);
  s.request(cmd({"GET", "x"}));
  s.close();
  CHECK(redis_counters(cap).unmatched_requests == 1);
  Capture cap2;
  Socket m(cap2, 20, Role::Client);
  m.request(cmd({"MONITOR"}));
  m.response("+OK\r\n");
  m.response("+1700000000.000000 [0 127.0.0.1:1234] \"GET\" \"x\"\r\n");
  CHECK(cap2.exchanges.size() == 1);
  CHECK(cap2.tracker.connection_count() == 1);
}

TEST_CASE("Redis: a hole at a message start resyncs at the next syscall") {
  Capture cap;
  Socket s(cap, 21, Role::Server);
  s.request(cmd({"GET", "a"}));
  s.response(bulk("1"));
  s.lose(s.request_dir(), 10);  // part of a request lost
  s.request("$1\r\nb\r\n");     // its tail
  s.request(cmd({"GET", "c"}));
  s.response("$-1\r\n");
  s.response(bulk("3"));
  REQUIRE(cap.exchanges.size() >= 2);
  CHECK(redis_of(cap.exchanges[1]).request.args.at(0).value == "c");
  CHECK(redis_counters(cap).resyncs >= 1);
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

TEST_CASE("Redis: a reply whose framing is lost past the capture still answers its command") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 22, side);
    // COMMAND DOCS-like: a long array of short elements, one syscall, 64 bytes captured.
    std::string big = "*400\r\n";
    for (int i = 0; i < 400; ++i) big += ":" + std::to_string(i) + "\r\n";
    s.request(cmd({"COMMAND", "DOCS"}));
    s.response(big, 64);
    s.request(cmd({"SET", "k", "v"}));
    s.response("+OK\r\n");
    REQUIRE(cap.exchanges.size() == 2);
    CHECK(redis_of(cap.exchanges[0]).request.command == "COMMAND");
    CHECK(redis_of(cap.exchanges[0]).reply_type == Type::Array);
    CHECK(cap.exchanges[0].response.truncated);
    CHECK(cap.exchanges[0].response.wire_bytes == big.size());
    CHECK(redis_of(cap.exchanges[1]).request.command == "SET");
    CHECK(redis_of(cap.exchanges[1]).reply_text == "OK");
  }
}

// A large value's bulk body is passed over by length: once its header is read, the kernel is
// told to report the rest without copying it, on either side, and the exchange is whole.
TEST_CASE("Redis: a large bulk value is left to the kernel to skip") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    std::vector<CaptureVerdict> verdicts;
    cap.on_verdict = [&](uint64_t, const CaptureVerdict& v) { verdicts.push_back(v); };
    Socket s(cap, 3, side);
    s.open();
    const std::string value(100000, 'v');
    const std::string set = cmd({"SET", "big", value});
    s.request(set.substr(0, 4096));
    REQUIRE(verdicts.size() == 1);
    CHECK(verdicts[0].skip_until[static_cast<int>(s.request_dir())] == set.size());
    s.request(set.substr(4096), 0);  // the rest, not copied
    s.response("+OK\r\n");
    s.request(cmd({"GET", "big"}));
    const std::string reply = bulk(value);
    const uint64_t reply_at = s.pos(s.response_dir());  // after "+OK"
    s.response(reply.substr(0, 4096));
    REQUIRE(verdicts.size() == 2);
    CHECK(verdicts[1].skip_until[static_cast<int>(s.response_dir())] == reply_at + reply.size());
    s.response(reply.substr(4096), 0);
    s.request(cmd({"GET", "small"}));
    s.response(bulk("tiny"));
    REQUIRE(cap.exchanges.size() == 3);
    CHECK(redis_of(cap.exchanges[0]).request.command == "SET");
    CHECK(redis_of(cap.exchanges[1]).request.command == "GET");
    CHECK(redis_of(cap.exchanges[2]).request.command == "GET");
    CHECK(redis_counters(cap).parse_errors == 0);
    CHECK(verdicts.size() == 2);  // a 4-byte value is no skip
  }
}

}  // namespace
}  // namespace weft::test
