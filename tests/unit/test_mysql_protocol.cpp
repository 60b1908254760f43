// MySQL and MariaDB through the connection tracker, as real traffic reaches it: one data event
// per syscall, both ends of a connection, connections joined late, and the spans their
// exchanges describe.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "conformance_samples.h"
#include "http1_scenarios.h"
#include "mysql_wire.h"
#include "protocols/mysql/mysql.h"
#include "protocols/sql/sql_text.h"
#include "span_description_helpers.h"

namespace weft::test {
namespace {

using namespace my;
using protocols::mysql::mysql_of;

const protocols::ProtocolCounters& my_counters(const Capture& cap) {
  return cap.tracker.protocol_counters().at(
      protocols::registry_index(&protocols::mysql::protocol()));
}

constexpr std::string_view kMariaDb = "5.5.5-10.11.6-MariaDB-0+deb12u1";

// The connection's start: greeting, HandshakeResponse with a database, OK.
void start_session(Socket& s, std::string_view version = kMariaDb,
                   uint32_t client_caps = kClientCaps | kDeprecateEof) {
  s.open();
  s.response(greeting(version, client_caps));
  s.request(handshake_response("app", "scrambled-secret", "shop", client_caps));
  s.response(ok(2));
}

TEST_CASE("MySQL: queries on both sides become database spans") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 3, side);
    start_session(s);
    s.request(query("SELECT name FROM users WHERE id = 42"));
    s.response(result_set({"ann", "bob"}, true));
    s.request(query("INSERT INTO users (id, name) VALUES (7, 'O\\'Brien')"));
    s.response(ok(1, 1));
    REQUIRE(cap.exchanges.size() == 2);
    const Exchange& sel = cap.exchanges[0];
    CHECK(sel.protocol_name() == "mysql");
    CHECK(sel.side == side);
    CHECK(mysql_of(sel).rows == 2);
    check_time_order(sel);
    auto d = describe(sel);
    CHECK(d.name == "SELECT users");
    CHECK(d.kind == (side == Role::Server ? SpanKind::Server : SpanKind::Client));
    CHECK(d.status == StatusCode::Unset);
    CHECK(sattr(d, "db.system.name") == "mariadb");
    CHECK(sattr(d, "db.namespace") == "shop");
    CHECK(sattr(d, "db.operation.name") == "SELECT");
    CHECK(sattr(d, "db.collection.name") == "users");
    CHECK(sattr(d, "db.query.text") == "SELECT name FROM users WHERE id = ?");
    CHECK(iattr(d, "db.response.returned_rows") == 2);
    CHECK(sattr(d, "server.address") == (side == Role::Server ? "10.0.0.1" : "10.0.0.2"));
    CHECK(iattr(d, "server.port") == 8080);
    CHECK(sattr(d, "weft.mysql.command") == "COM_QUERY");
    auto ins = describe(cap.exchanges[1]);
    CHECK(ins.name == "INSERT users");
    CHECK(sattr(ins, "db.query.text") == "INSERT INTO users (id, name) VALUES (?, ?)");
    CHECK(iattr(ins, "weft.mysql.affected_rows") == 1);
    CHECK(sattr(describe(cap.exchanges[1], true), "db.query.text") ==
          "INSERT INTO users (id, name) VALUES (7, 'O\\'Brien')");
    CHECK(sel.protocol->render_text(sel) == "SELECT name FROM users WHERE id = ? -> OK (2 rows)");
    const auto* family = sel.protocol->metric_family(d.kind);
    REQUIRE(family);
    CHECK(family->name == (side == Role::Client ? "db.client.operation.duration"
                                                : "weft.db.server.operation.duration"));
    std::vector<LabelValue> labels;
    sel.protocol->metric_labels(sel, d.kind, labels);
    CHECK(labels.size() == family->label_keys.size());
    if (side == Role::Server) CHECK(cap.request_starts.size() == 2);
    s.close();
    CHECK(my_counters(cap).exchanges == 2);
    CHECK(my_counters(cap).parse_errors == 0);
    CHECK(my_counters(cap).unmatched_requests == 0);
    CHECK(my_counters(cap).unmatched_responses == 0);
  }
}

TEST_CASE("MySQL: credentials from the handshake are never kept or exported") {
  Capture cap;
  Socket s(cap, 4, Role::Client);
  start_session(s);
  s.request(ping());
  s.response(ok(1));
  REQUIRE(cap.exchanges.size() == 1);
  for (bool values : {false, true}) {
    auto d = describe(cap.exchanges[0], values);
    for (const auto& a : d.attributes) {
      if (!std::holds_alternative<std::string>(a.value)) continue;
      CHECK(std::get<std::string>(a.value).find("app") == std::string::npos);
      CHECK(std::get<std::string>(a.value).find("secret") == std::string::npos);
    }
  }
  nlohmann::json j = nlohmann::json::object();
  cap.exchanges[0].protocol->render_json(cap.exchanges[0], j);
  CHECK(j.dump().find("secret") == std::string::npos);
  CHECK(describe(cap.exchanges[0]).name == "PING shop");
}

// An authentication switch: the client's answer (sequence id 3) is authentication data, even
// when its 32 bytes look like capabilities with CLIENT_SSL.
TEST_CASE("MySQL: authentication data after an authentication switch is not a HandshakeResponse") {
  Capture cap;
  Socket s(cap, 19, Role::Client);
  s.open();
  s.response(greeting(kMariaDb));
  s.request(handshake_response("app", "scramble", "shop"));
  s.response(
      packet(2, "\xfe" + std::string("caching_sha2_password") + '\0' + "01234567890123456789"));
  s.request(packet(3, le(kClientCaps | kSsl, 4) + std::string(28, '\0')));
  s.response(ok(4));
  s.request(query("SELECT 1"));
  s.response(result_set({"1"}, true));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(sattr(describe(cap.exchanges[0]), "db.namespace") == "shop");
  CHECK(my_counters(cap).parse_errors == 0);
}

TEST_CASE("MySQL: ERR packets are span errors with the error number") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 5, side);
    start_session(s);
    s.request(query("SELEC 1"));
    s.response(err(1, 1064, "42000", "You have an error in your SQL syntax"));
    s.request(query("INSERT INTO users (id) VALUES (1)"));
    s.response(err(1, 1062, "23000", "Duplicate entry '1' for key 'PRIMARY'"));
    REQUIRE(cap.exchanges.size() == 2);
    auto syntax = describe(cap.exchanges[0]);
    CHECK(syntax.status == StatusCode::Error);
    CHECK(sattr(syntax, "db.response.status_code") == "1064");
    CHECK(sattr(syntax, "error.type") == "1064");
    CHECK(sattr(syntax, "weft.mysql.sqlstate") == "42000");
    CHECK(syntax.outcome == "1064");
    auto dup = describe(cap.exchanges[1]);
    CHECK(dup.name == "INSERT users");
    CHECK(sattr(dup, "db.response.status_code") == "1062");
    protocols::SpanEssentials e;
    cap.exchanges[1].protocol->essentials(cap.exchanges[1], e);
    CHECK(e.status == StatusCode::Error);
    std::vector<LabelValue> labels;
    cap.exchanges[1].protocol->metric_labels(cap.exchanges[1], dup.kind, labels);
    CHECK(labels[4] == LabelValue(std::string("1062")));
    CHECK(cap.exchanges[1].protocol->render_text(cap.exchanges[1]) ==
          "INSERT INTO users (id) VALUES (?) -> ERR 1062 (23000)");
  }
}

// Every cut of a conversation's bytes into two syscalls, in both directions, makes the same
// exchanges as the whole: framing never depends on where a syscall ends.
TEST_CASE("MySQL: packet framing split at every byte") {
  const std::string request = query("SELECT name FROM users WHERE id = 42");
  const std::string response = result_set({"ann", "bob", "cy"}, false);
  const std::string request2 = prepare("SELECT name FROM users WHERE id = ?");
  const std::string response2 = prepare_answer(1, 1, 1, false);
  for (int which = 0; which < 4; ++which) {
    const std::string& cut_bytes = which == 0   ? request
                                   : which == 1 ? response
                                   : which == 2 ? request2
                                                : response2;
    for (size_t at = 1; at < cut_bytes.size(); ++at) {
      CAPTURE(which);
      CAPTURE(at);
      Capture cap;
      Socket s(cap, 6, Role::Client);
      auto send = [&](const std::string& bytes, bool from_client) {
        auto write = [&](std::string_view b) {
          if (from_client)
            s.request(b);
          else
            s.response(b);
        };
        if (&bytes == &cut_bytes) {
          write(std::string_view(bytes).substr(0, at));
          write(std::string_view(bytes).substr(at));
        } else {
          write(bytes);
        }
      };
      send(request, true);
      send(response, false);
      send(request2, true);
      send(response2, false);
      s.request(ping());
      s.response(ok(1));
      REQUIRE(cap.exchanges.size() == 3);
      CHECK(mysql_of(cap.exchanges[0]).rows == 3);
      CHECK(mysql_of(cap.exchanges[1]).operation == "PREPARE");
      CHECK(mysql_of(cap.exchanges[2]).operation == "PING");
      CHECK(my_counters(cap).parse_errors == 0);
      CHECK(my_counters(cap).unmatched_responses == 0);
    }
  }
}

TEST_CASE("MySQL: a 16 MiB statement and a 16 MiB row continue in further packets") {
  // 0xFFFFFF bytes, then 11 more: two packets (sequence ids 0 and 1); the answer starts at 2.
  const std::string sql =
      "INSERT INTO blobs VALUES ('" + std::string(0xFFFFFF + 10 - 29, 'x') + "')";
  const std::string big = query(sql);
  REQUIRE(big.size() == 0xFFFFFF + 11 + 8);
  // A row of exactly 0xFFFFFF bytes: an empty packet ends it.
  const std::string value(0xFFFFFF - 4, 'v');
  const std::string rows = packet(1, lenenc(1)) + column_def(2, "data") +
                           packet(3, lenenc(value.size()) + value) + ok_eof(5);
  REQUIRE(rows.size() > 0xFFFFFF + 8);
  for (size_t captured : {kAll, size_t{4096}}) {
    for (Role side : kBothSides) {
      CAPTURE(side);
      CAPTURE(captured);
      Capture cap;
      Socket s(cap, 7, side);
      start_session(s);
      // Captured in part, the second packet's header is never seen: the answer's sequence id
      // is then taken as it comes.
      s.request(big, captured);
      s.response(ok(2, 1));
      s.request(query("SELECT data FROM blobs"));
      s.response(rows, captured);
      s.request(ping());
      s.response(ok(1));
      REQUIRE(cap.exchanges.size() == 3);
      const auto& ins = mysql_of(cap.exchanges[0]);
      CHECK(ins.operation == "INSERT");
      CHECK(ins.collection == "blobs");
      CHECK(ins.affected_rows == 1);
      if (captured == kAll) CHECK(cap.exchanges[0].request.wire_bytes == big.size());
      CHECK(sattr(describe(cap.exchanges[0]), "db.query.text") == "INSERT INTO blobs VALUES (?");
      CHECK(mysql_of(cap.exchanges[1]).rows == 1);
      // Captured in part, the row's end is unseen: the answer is finished with what was seen.
      CHECK(mysql_of(cap.exchanges[1]).ok == (captured == kAll));
      CHECK(cap.exchanges[1].response.truncated == (captured != kAll));
      CHECK(mysql_of(cap.exchanges[2]).operation == "PING");
      CHECK(my_counters(cap).parse_errors == 0);
      if (captured != kAll) CHECK(my_counters(cap).skipped_bytes > 0xFF0000);
    }
  }
}

TEST_CASE("MySQL: result sets end with a classic EOF or an OK, with or without the handshake") {
  for (bool handshake : {true, false}) {
    for (bool deprecate_eof : {true, false}) {
      CAPTURE(handshake);
      CAPTURE(deprecate_eof);
      Capture cap;
      Socket s(cap, 8, Role::Client);
      if (handshake) start_session(s, "8.0.36", kClientCaps | (deprecate_eof ? kDeprecateEof : 0));
      s.request(query("SELECT name FROM users"));
      s.response(result_set({"a", "b", "c"}, deprecate_eof));
      s.request(query("SELECT name FROM users WHERE 1 = 0"));
      s.response(result_set({}, deprecate_eof));
      s.request(prepare("SELECT id, name FROM users WHERE id = ? AND name = ?"));
      s.response(prepare_answer(3, 2, 2, deprecate_eof));
      s.request(prepare("DELETE FROM users WHERE id = ?"));
      s.response(prepare_answer(4, 0, 1, deprecate_eof));
      s.request(ping());
      s.response(ok(1));
      REQUIRE(cap.exchanges.size() == 5);
      CHECK(mysql_of(cap.exchanges[0]).rows == 3);
      CHECK(mysql_of(cap.exchanges[1]).rows == 0);
      CHECK(mysql_of(cap.exchanges[1]).ok);
      CHECK(mysql_of(cap.exchanges[2]).statement_id == 3);
      CHECK(mysql_of(cap.exchanges[3]).statement_id == 4);
      CHECK(mysql_of(cap.exchanges[4]).operation == "PING");
      if (handshake) CHECK(sattr(describe(cap.exchanges[0]), "db.system.name") == "mysql");
      CHECK(my_counters(cap).parse_errors == 0);
      CHECK(my_counters(cap).unmatched_responses == 0);
      CHECK(my_counters(cap).unmatched_requests == 0);
    }
  }
}

TEST_CASE("MySQL: PREPARE, EXECUTE with binary rows, RESET, CLOSE; an unknown id never guessed") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 9, side);
    start_session(s);
    s.request(prepare("SELECT name FROM users WHERE id = ?"));
    s.response(prepare_answer(7, 1, 1, true));
    s.request(execute(7, {"42"}));
    s.response(result_set({"ann", "bob"}, true, true));
    s.request(send_long_data(7, 0, "long value"));  // answered by nothing: no exchange
    s.request(reset_statement(7));
    s.response(ok(1));
    s.request(execute(7, {"43"}));
    s.response(result_set({"cy"}, true, true));
    s.request(execute(98));  // prepared before weft, while 7 is known: not taken for 7
    s.response(ok(1));
    s.request(close_statement(7));  // answered by nothing
    s.request(execute(7, {"44"}));  // closed: its text is no longer known
    s.response(err(1, 1243, "HY000", "Unknown prepared statement handler"));
    s.request(execute(99));  // prepared before weft
    s.response(ok(1));
    REQUIRE(cap.exchanges.size() == 7);
    CHECK(mysql_of(cap.exchanges[4]).statement_unknown);
    CHECK(mysql_of(cap.exchanges[4]).query.empty());
    cap.exchanges.erase(cap.exchanges.begin() + 4);
    auto prep = describe(cap.exchanges[0]);
    CHECK(prep.name == "PREPARE users");
    CHECK(iattr(prep, "weft.mysql.statement_id") == 7);
    CHECK(sattr(prep, "db.query.text") == "SELECT name FROM users WHERE id = ?");
    auto exec = describe(cap.exchanges[1]);
    CHECK(exec.name == "SELECT users");
    CHECK(sattr(exec, "weft.mysql.command") == "COM_STMT_EXECUTE");
    CHECK(iattr(exec, "weft.mysql.statement_id") == 7);
    CHECK(iattr(exec, "db.response.returned_rows") == 2);
    CHECK(attr(exec, "weft.mysql.statement_unknown") == nullptr);
    CHECK(sattr(describe(cap.exchanges[2]), "db.operation.name") == "STMT_RESET");
    CHECK(mysql_of(cap.exchanges[3]).rows == 1);
    const auto& closed = mysql_of(cap.exchanges[4]);
    CHECK(closed.statement_unknown);
    CHECK(closed.query.empty());
    CHECK(closed.error_code == 1243);
    auto unknown = describe(cap.exchanges[5]);
    CHECK(unknown.name == "shop");
    CHECK(std::get<bool>(*attr(unknown, "weft.mysql.statement_unknown")));
    CHECK(iattr(unknown, "weft.mysql.statement_id") == 99);
    CHECK(sattr(unknown, "db.query.text") == "<absent>");
    CHECK(sattr(unknown, "db.operation.name") == "<absent>");
    CHECK(cap.exchanges[5].protocol->render_text(cap.exchanges[5]) ==
          "COM_STMT_EXECUTE (unknown statement 99) -> OK");
    CHECK(my_counters(cap).parse_errors == 0);
    CHECK(my_counters(cap).unmatched_responses == 0);
  }
}

TEST_CASE("MySQL: several statements in one COM_QUERY are one exchange counting its results") {
  Capture cap;
  Socket s(cap, 10, Role::Client);
  start_session(s);
  s.request(query("SELECT 1; UPDATE t SET a = 2; SELECT 3"));
  // SERVER_MORE_RESULTS_EXISTS (8) chains the results; the sequence ids go on across them.
  std::string first =
      packet(1, lenenc(1)) + column_def(2, "1") + text_row(3, {"1"}) + ok_eof(4, 2 | 8);
  std::string second = ok(5, 3, 2 | 8);
  std::string third = packet(6, lenenc(1)) + column_def(7, "3") + text_row(8, {"3"}) + ok_eof(9, 2);
  s.response(first + second + third);
  s.request(ping());
  s.response(ok(1));
  REQUIRE(cap.exchanges.size() == 2);
  const auto& m = mysql_of(cap.exchanges[0]);
  CHECK(m.results == 3);
  CHECK(m.rows == 2);
  CHECK(m.affected_rows == 3);
  CHECK(m.operation == "BATCH");
  auto d = describe(cap.exchanges[0]);
  CHECK(iattr(d, "weft.mysql.results") == 3);
  CHECK(sattr(d, "db.query.text") == "SELECT ?; UPDATE t SET a = ?; SELECT ?");
  // An error in the second statement ends the command.
  s.request(query("SELECT 1; SELEC 2"));
  s.response(packet(1, lenenc(1)) + column_def(2, "1") + text_row(3, {"1"}) + ok_eof(4, 2 | 8) +
             err(5, 1064, "42000", "syntax"));
  REQUIRE(cap.exchanges.size() == 3);
  CHECK(mysql_of(cap.exchanges[2]).error_code == 1064);
  CHECK(mysql_of(cap.exchanges[2]).results == 1);
  CHECK(my_counters(cap).parse_errors == 0);
}

TEST_CASE("MySQL: COM_INIT_DB and USE change db.namespace; COM_CHANGE_USER too") {
  Capture cap;
  Socket s(cap, 11, Role::Client);
  start_session(s);
  s.request(init_db("sales"));
  s.response(ok(1));
  s.request(query("SELECT 1"));
  s.response(result_set({"1"}, true));
  s.request(query("USE `inventory`"));
  s.response(ok(1));
  s.request(query("SELECT 1"));
  s.response(result_set({"1"}, true));
  s.request(init_db("missing"));
  s.response(err(1, 1049, "42000", "Unknown database 'missing'"));
  s.request(query("SELECT 1"));
  s.response(result_set({"1"}, true));
  s.request(command(0x11, std::string("bob") + '\0' + lenstr("hash") + "hr" + '\0'));
  s.response(packet(1, "\xfe" + std::string("mysql_native_password") + '\0' + "scramble"));
  s.request(packet(2, "authdata"));
  s.response(ok(3));
  s.request(query("SELECT 1"));
  s.response(result_set({"1"}, true));
  REQUIRE(cap.exchanges.size() == 8);
  CHECK(describe(cap.exchanges[0]).name == "INIT_DB sales");
  CHECK(cap.exchanges[0].protocol->render_text(cap.exchanges[0]) == "COM_INIT_DB sales -> OK");
  CHECK(sattr(describe(cap.exchanges[1]), "db.namespace") == "sales");
  CHECK(sattr(describe(cap.exchanges[3]), "db.namespace") == "inventory");
  CHECK(sattr(describe(cap.exchanges[5]), "db.namespace") == "inventory");
  CHECK(mysql_of(cap.exchanges[6]).operation == "CHANGE_USER");
  CHECK(sattr(describe(cap.exchanges[7]), "db.namespace") == "hr");
  CHECK(my_counters(cap).parse_errors == 0);
}

TEST_CASE("MySQL: LOCAL INFILE data is counted, not followed") {
  Capture cap;
  Socket s(cap, 12, Role::Client);
  start_session(s);
  s.request(query("LOAD DATA LOCAL INFILE '/tmp/x.csv' INTO TABLE items"));
  s.response(packet(1, "\xfb/tmp/x.csv"));
  s.request(packet(2, std::string(3000, 'd')) + packet(3, std::string(500, 'e')) + packet(4, ""));
  s.response(ok(5, 2));
  s.request(ping());
  s.response(ok(1));
  REQUIRE(cap.exchanges.size() == 2);
  const auto& m = mysql_of(cap.exchanges[0]);
  CHECK(m.local_infile);
  CHECK(m.infile_bytes == 3500);
  CHECK(m.affected_rows == 2);
  CHECK(iattr(describe(cap.exchanges[0]), "weft.mysql.local_infile_bytes") == 3500);
  CHECK(my_counters(cap).parse_errors == 0);
}

TEST_CASE("MySQL: query attributes (CLIENT_QUERY_ATTRIBUTES) before the text, known or inferred") {
  for (bool handshake : {true, false}) {
    CAPTURE(handshake);
    Capture cap;
    Socket s(cap, 13, Role::Client);
    if (handshake) start_session(s, "8.0.36", kClientCaps | kDeprecateEof | 0x08000000);
    s.request(query_with_attributes("SELECT name FROM users WHERE id = 1"));
    s.response(result_set({"a"}, true));
    // One attribute, a string named "trace" (MySQL 8's query attributes).
    std::string attrs = lenenc(1) + lenenc(1) + std::string(1, '\0') + "\x01" +
                        std::string("\xfd\x00", 2) + lenstr("trace") + lenstr("abc");
    s.request(command(0x03, attrs + "UPDATE users SET name = 'x'"));
    s.response(ok(1, 1));
    REQUIRE(cap.exchanges.size() == 2);
    CHECK(sattr(describe(cap.exchanges[0]), "db.query.text") ==
          "SELECT name FROM users WHERE id = ?");
    CHECK(sattr(describe(cap.exchanges[1]), "db.query.text") == "UPDATE users SET name = ?");
  }
}

TEST_CASE("MySQL: an SSL request: the rest is ciphertext, nothing is made of it") {
  Capture cap;
  Socket s(cap, 14, Role::Client);
  s.open();
  s.response(greeting(kMariaDb));
  s.request(ssl_request());
  s.request(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11) +
            std::string(200, 'z'));
  s.response(std::string("\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03", 11) +
             std::string(100, 'y'));
  s.request(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'q'));
  s.response(std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'r'));
  CHECK(cap.exchanges.empty());
  CHECK(my_counters(cap).parse_errors == 0);
  // The TLS library's plaintext of the same conversation (another stream, as the uprobes give
  // it): the HandshakeResponse (sequence id 2), the login's OK, then commands.
  Socket plain(cap, 17, Role::Client);
  plain.request(handshake_response("app", "secret", "shop", kClientCaps | kDeprecateEof, 2));
  plain.response(ok(3));
  plain.request(query("SELECT 1"));
  plain.response(result_set({"1"}, true));
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(sattr(describe(cap.exchanges[0]), "db.namespace") == "shop");
  CHECK(my_counters(cap).unmatched_responses == 0);
}

TEST_CASE("MySQL: a connection opened before weft is traced from its next command") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 15, side);
    if (side == Role::Server) s.comm = "mariadbd";
    // No handshake seen: the first bytes are the end of a result set weft missed.
    s.response(text_row(5, {"x"}) + text_row(6, {"y"}) + ok_eof(7));
    s.request(query("SELECT * FROM orders WHERE id = 3"));
    s.response(result_set({"3"}, true));
    s.request(execute(5, {"1"}));
    s.response(result_set({"1"}, true, true));
    REQUIRE(cap.exchanges.size() == 2);
    auto d = describe(cap.exchanges[0]);
    CHECK(d.name == "SELECT orders");
    CHECK(sattr(d, "db.namespace") == "<absent>");
    // The server's program says MariaDB; a client cannot know without the greeting.
    CHECK(sattr(d, "db.system.name") == (side == Role::Server ? "mariadb" : "mysql"));
    CHECK(mysql_of(cap.exchanges[1]).statement_unknown);
    CHECK(describe(cap.exchanges[1]).name == (side == Role::Server ? "mariadb" : "mysql"));
  }
}

TEST_CASE("MySQL: detection") {
  using protocols::Confidence;
  using protocols::Detection;
  auto detect = [](const std::string& s) {
    return protocols::mysql::detect({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  };
  CHECK(detect(greeting(kMariaDb)).detection == Detection::Responses);
  CHECK(detect(greeting(kMariaDb)).confidence == Confidence::Strong);
  CHECK(detect(handshake_response("u", "p", "db")).detection == Detection::Requests);
  CHECK(detect(handshake_response("u", "p", "db")).confidence == Confidence::Strong);
  CHECK(detect(ssl_request()).confidence == Confidence::Strong);
  // Inside TLS (sequence id 2), with MariaDB's extended capabilities in the filler's last bytes.
  std::string in_tls = handshake_response("u", "p", "db", kClientCaps, 2);
  in_tls[4 + 32 - 4] = '\x07';
  CHECK(detect(in_tls).detection == Detection::Requests);
  CHECK(detect(in_tls).confidence == Confidence::Strong);
  in_tls[4 + 20] = '\x01';  // a filler byte MySQL and MariaDB both leave zero
  CHECK(detect(in_tls).detection != Detection::Requests);
  CHECK(detect(query("SELECT 1")).detection == Detection::Requests);
  CHECK(detect(query("SELECT 1")).confidence == Confidence::Strong);
  CHECK(detect(query_with_attributes("SELECT 1")).confidence == Confidence::Strong);
  CHECK(detect(prepare("UPDATE t SET a = ?")).confidence == Confidence::Strong);
  CHECK(detect(ping()).detection == Detection::Requests);
  CHECK(detect(ping()).confidence == Confidence::Weak);
  CHECK(detect(execute(3, {"x"})).confidence == Confidence::Weak);
  CHECK(detect(err(1, 1064, "42000", "syntax")).detection == Detection::Responses);
  CHECK(detect(err(1, 1064, "42000", "syntax")).confidence == Confidence::Strong);
  CHECK(detect(result_set({"a"}, true)).confidence == Confidence::Strong);
  CHECK(detect(ok(1)).confidence == Confidence::Weak);
  CHECK(detect(std::string("\x05\x00\x00", 3)).detection == Detection::NeedMore);
  CHECK(detect("GET / HTTP/1.1\r\n\r\n").detection == Detection::No);
  CHECK(detect("*1\r\n$4\r\nPING\r\n").detection == Detection::No);
  CHECK(detect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").detection == Detection::No);
  CHECK(detect("\r\n").detection == Detection::No);
  // A ping of the wrong length, a command byte that is none, a sequence id that starts nothing.
  CHECK(detect(packet(0, std::string("\x0e\x00", 2))).detection == Detection::No);
  CHECK(detect(packet(0, "\x40xyz")).detection == Detection::No);
  CHECK(detect(packet(7, "\x03SELECT 1")).detection == Detection::No);
}

// Every other registered protocol's sample messages: MySQL claims none of them, and through the
// tracker (which asks every protocol in registry order) each conversation stays its own.
TEST_CASE("MySQL: other protocols' traffic is not claimed") {
  for (const protocols::Protocol* p : protocols::registry()) {
    if (p == &protocols::mysql::protocol()) continue;
    const auto* samples = conformance::samples_for(p->name());
    REQUIRE(samples);
    CAPTURE(p->name());
    std::vector<conformance::Pair> pairs = samples->conversation;
    pairs.insert(pairs.end(), samples->bodied.begin(), samples->bodied.end());
    for (const auto& pair : pairs) {
      CAPTURE(pair.label);
      for (const std::string* bytes : {&pair.request.bytes, &pair.response.bytes}) {
        auto r = protocols::mysql::detect(
            {reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()});
        CHECK(r.detection != protocols::Detection::Requests);
        CHECK(r.detection != protocols::Detection::Responses);
      }
    }
    for (Role side : kBothSides) {
      Capture cap;
      Socket s(cap, 16, side);
      for (const auto& pair : pairs) {
        s.request(pair.request.bytes);
        s.response(pair.response.bytes);
      }
      CHECK(cap.exchanges.size() >= pairs.size());
      for (const Exchange& ex : cap.exchanges) CHECK(ex.protocol_name() == p->name());
    }
  }
}

TEST_CASE("MySQL dialect: sanitising what MySQL text holds") {
  using protocols::sql::Dialect;
  using protocols::sql::sanitise;
  CHECK(sanitise("SELECT `order`, \"secret\" FROM `my db`.`t` WHERE a = 'x'", Dialect::MySQL) ==
        "SELECT `order`, ? FROM `my db`.`t` WHERE a = ?");
  CHECK(sanitise("SELECT 1 # comment 'secret'\nFROM t", Dialect::MySQL) == "SELECT ? FROM t");
  CHECK(sanitise("SELECT 1 -- secret\nFROM t", Dialect::MySQL) == "SELECT ? FROM t");
  CHECK(sanitise("SELECT 0xDEADBEEF, b'1010', X'4142', x'00'", Dialect::MySQL) ==
        "SELECT ?, ?, ?, ?");
  CHECK(sanitise("SELECT 'it\\'s', \"say \\\"hi\\\"\"", Dialect::MySQL) == "SELECT ?, ?");
  std::string versioned =
      sanitise("SELECT /*!40001 SQL_NO_CACHE */ a FROM t WHERE b = 5", Dialect::MySQL);
  CHECK(versioned.find('5') == std::string::npos);
}

}  // namespace
}  // namespace weft::test

namespace weft::test {
namespace {

// A row longer than what was seen by more than a few records: the kernel is told to report the
// rest without copying it; the parser passes over it by length and reads the next answer.
TEST_CASE("MySQL: a long row is left to the kernel to skip") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    std::vector<CaptureVerdict> verdicts;
    cap.on_verdict = [&](uint64_t, const CaptureVerdict& v) { verdicts.push_back(v); };
    Socket s(cap, 18, side);
    start_session(s);
    constexpr uint64_t kValue = 1'000'000;
    s.request(query("SELECT data FROM blobs"));
    const std::string head = packet(1, lenenc(1)) + column_def(2, "data");
    const std::string row_header = le(kValue + 4, 3) + '\x03' + lenenc(kValue);
    Direction out = s.response_dir();
    const uint64_t row_start = s.pos(out) + head.size();
    s.response(head + row_header + std::string(4096, 'v'));
    REQUIRE(verdicts.size() == 1);
    CHECK(verdicts[0].skip_until[static_cast<int>(out)] == row_start + 4 + kValue + 4);
    uint64_t left = kValue - 4096;
    while (left > 0) {
      uint64_t n = std::min<uint64_t>(65536, left);
      s.response(std::string(n, 'v'));
      left -= n;
    }
    s.response(ok_eof(4));
    s.request(ping());
    s.response(ok(1));
    REQUIRE(cap.exchanges.size() == 2);
    CHECK(mysql_of(cap.exchanges[0]).rows == 1);
    CHECK(mysql_of(cap.exchanges[0]).ok);
    CHECK(mysql_of(cap.exchanges[1]).operation == "PING");
    CHECK(my_counters(cap).parse_errors == 0);
  }
}

}  // namespace
}  // namespace weft::test
