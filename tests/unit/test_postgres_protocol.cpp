// PostgreSQL through the connection tracker, as real traffic reaches it: one data event per
// syscall, both ends of a connection, connections joined late, and the spans its exchanges
// describe.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "http1_scenarios.h"
#include "postgres_wire.h"
#include "protocols/postgres/postgres.h"
#include "span_description_helpers.h"

namespace weft::test {
namespace {

using namespace pg;
using protocols::postgres::postgres_of;

const protocols::ProtocolCounters& pg_counters(const Capture& cap) {
  return cap.tracker.protocol_counters().at(
      protocols::registry_index(&protocols::postgres::protocol()));
}

// The connection's start: startup message, authentication, parameters, ReadyForQuery.
void start_session(Socket& s) {
  s.open();
  s.request(startup({{"user", "app"}, {"database", "shop"}}));
  s.response(auth_ok() + parameter_status("server_version", "15.18") + backend_key() + ready());
}

TEST_CASE("PostgreSQL: simple queries on both sides become database spans") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 3, side);
    start_session(s);
    s.request(query("SELECT name FROM users WHERE id = 42"));
    s.response(row_description("name") + data_row("ann") + data_row("bob") +
               command_complete("SELECT 2") + ready());
    s.request(query("INSERT INTO users (id, name) VALUES (7, 'O''Brien')"));
    s.response(command_complete("INSERT 0 1") + ready());
    REQUIRE(cap.exchanges.size() == 2);
    const Exchange& sel = cap.exchanges[0];
    CHECK(sel.protocol_name() == "postgresql");
    CHECK(sel.side == side);
    CHECK(postgres_of(sel).rows == 2);
    CHECK(postgres_of(sel).command_tag == "SELECT 2");
    check_time_order(sel);
    auto d = describe(sel);
    CHECK(d.name == "SELECT users");
    CHECK(d.kind == (side == Role::Server ? SpanKind::Server : SpanKind::Client));
    CHECK(d.status == StatusCode::Unset);
    CHECK(sattr(d, "db.system.name") == "postgresql");
    CHECK(sattr(d, "db.namespace") == "shop");
    CHECK(sattr(d, "db.operation.name") == "SELECT");
    CHECK(sattr(d, "db.collection.name") == "users");
    CHECK(sattr(d, "db.query.text") == "SELECT name FROM users WHERE id = ?");
    CHECK(std::get<int64_t>(*attr(d, "db.response.returned_rows")) == 2);
    CHECK(sattr(d, "server.address") == (side == Role::Server ? "10.0.0.1" : "10.0.0.2"));
    CHECK(std::get<int64_t>(*attr(d, "server.port")) == 8080);
    auto ins = describe(cap.exchanges[1]);
    CHECK(ins.name == "INSERT users");
    CHECK(sattr(ins, "db.query.text") == "INSERT INTO users (id, name) VALUES (?, ?)");
    CHECK(sattr(describe(cap.exchanges[1], true), "db.query.text") ==
          "INSERT INTO users (id, name) VALUES (7, 'O''Brien')");
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
    CHECK(pg_counters(cap).exchanges == 2);
    CHECK(pg_counters(cap).parse_errors == 0);
    CHECK(pg_counters(cap).unmatched_requests == 0);
    CHECK(pg_counters(cap).unmatched_responses == 0);
  }
}

TEST_CASE("PostgreSQL: pipelined Executes before one Sync are one exchange each, in order") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 4, side);
    start_session(s);
    s.request(parse("upd", "UPDATE accounts SET balance = balance + $1 WHERE id = $2") +
              bind("", "upd", {"5", "1"}) + execute() + bind("", "upd", {"6", "2"}) + execute() +
              parse("", "SELECT balance FROM accounts WHERE id = $1") + bind("", "", {"1"}) +
              execute() + sync());
    s.response(parse_complete() + bind_complete() + command_complete("UPDATE 1") + bind_complete() +
               command_complete("UPDATE 1") + parse_complete() + bind_complete() + data_row("105") +
               command_complete("SELECT 1") + ready());
    REQUIRE(cap.exchanges.size() == 3);
    CHECK(postgres_of(cap.exchanges[0]).extended);
    CHECK(postgres_of(cap.exchanges[0]).statement_name == "upd");
    CHECK(describe(cap.exchanges[0]).name == "UPDATE accounts");
    CHECK(describe(cap.exchanges[1]).name == "UPDATE accounts");
    CHECK(sattr(describe(cap.exchanges[1]), "db.query.text") ==
          "UPDATE accounts SET balance = balance + $1 WHERE id = $2");
    CHECK(describe(cap.exchanges[2]).name == "SELECT accounts");
    CHECK(postgres_of(cap.exchanges[2]).rows == 1);
    for (const Exchange& ex : cap.exchanges) check_time_order(ex);
    CHECK(cap.exchanges[0].request.stream_pos < cap.exchanges[1].request.stream_pos);
    // The prepared statement, executed again in a later batch without a Parse.
    s.request(bind("", "upd", {"7", "3"}) + execute() + sync());
    s.response(bind_complete() + command_complete("UPDATE 1") + ready());
    REQUIRE(cap.exchanges.size() == 4);
    CHECK(describe(cap.exchanges[3]).name == "UPDATE accounts");
    s.close();
    CHECK(pg_counters(cap).unmatched_requests == 0);
    CHECK(pg_counters(cap).unmatched_responses == 0);
  }
}

TEST_CASE("PostgreSQL: errors are span errors with their SQLSTATE") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 5, side);
    start_session(s);
    s.request(query("SELEC 1"));
    s.response(error("42601", "syntax error at or near \"SELEC\"") + ready());
    // Extended: the first Execute fails; the server skips the second up to the Sync.
    s.request(parse("", "INSERT INTO users (id) VALUES ($1)") + bind("", "", {"1"}) + execute() +
              bind("", "", {"2"}) + execute() + sync());
    s.response(parse_complete() + bind_complete() + error("23505", "duplicate key") + ready('I'));
    // A Parse that fails (nothing executes): the span is the Parse's statement.
    s.request(parse("bad", "SELECT FROM WHERE") + sync());
    s.response(error("42601") + ready());
    REQUIRE(cap.exchanges.size() == 3);
    auto syntax = describe(cap.exchanges[0]);
    CHECK(syntax.status == StatusCode::Error);
    CHECK(sattr(syntax, "db.response.status_code") == "42601");
    CHECK(sattr(syntax, "error.type") == "42601");
    CHECK(syntax.outcome == "42601");
    auto dup = describe(cap.exchanges[1]);
    CHECK(dup.status == StatusCode::Error);
    CHECK(sattr(dup, "db.response.status_code") == "23505");
    CHECK(dup.name == "INSERT users");
    CHECK(sattr(describe(cap.exchanges[2]), "db.response.status_code") == "42601");
    protocols::SpanEssentials e;
    cap.exchanges[1].protocol->essentials(cap.exchanges[1], e);
    CHECK(e.status == StatusCode::Error);
    s.close();
    CHECK(pg_counters(cap).unmatched_requests == 1);  // the Execute that never ran
  }
}

// Found by fuzz_postgres_stream: after an extended-protocol error whose Sync was not read yet,
// the server skips what comes before the Sync, and so does the handler (it once wrote through
// a reference to a request it had not queued).
TEST_CASE(
    "PostgreSQL: requests after an error and before its Sync are skipped, as the server does") {
  Capture cap;
  Socket s(cap, 10, Role::Client);
  start_session(s);
  s.request(parse("", "INSERT INTO t VALUES ($1)") + bind("", "", {"1"}) + execute());
  s.response(parse_complete() + bind_complete() + error("23505"));
  s.request(query("SELECT 1") + bind("", "", {"2"}) + execute());
  s.request(sync());
  s.response(ready());
  s.request(query("SELECT 2"));
  s.response(row_description("x") + data_row("2") + command_complete("SELECT 1") + ready());
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(postgres_of(cap.exchanges[0]).sqlstate == "23505");
  CHECK(postgres_of(cap.exchanges[1]).query == "SELECT 2");
  CHECK(pg_counters(cap).unmatched_responses == 0);
}

TEST_CASE("PostgreSQL: a long statement is kept up to 4 KiB, sanitised, on a character boundary") {
  Capture cap;
  Socket s(cap, 11, Role::Client);
  start_session(s);
  std::string text = "SELECT 'secret', \"" + std::string(4093 - 18, 'a') + "\u00e9\u00e9 FROM t";
  s.request(parse("long", text) + bind("", "long") + execute() + sync());
  s.response(parse_complete() + bind_complete() + command_complete("SELECT 0") + ready());
  REQUIRE(cap.exchanges.size() == 1);
  const auto& pg = postgres_of(cap.exchanges[0]);
  CHECK(pg.query.size() == 4095);  // the second two-byte character would end past 4096
  CHECK(pg.operation == "SELECT");
  CHECK(sattr(describe(cap.exchanges[0]), "db.query.text").starts_with("SELECT ?, \"aaa"));
}

TEST_CASE("PostgreSQL: notices, notifications and parameter changes answer nothing") {
  Capture cap;
  Socket s(cap, 6, Role::Client);
  start_session(s);
  s.request(query("LISTEN jobs"));
  s.response(command_complete("LISTEN") + ready());
  s.response(notification("jobs"));
  s.request(query("SET application_name = 'x'"));
  s.response(notice("something") + parameter_status("application_name", "x") +
             command_complete("SET") + ready());
  s.response(notification("jobs"));
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(postgres_of(cap.exchanges[1]).command_tag == "SET");
  CHECK(pg_counters(cap).not_replies >= 4);
  CHECK(pg_counters(cap).unmatched_responses == 0);
}

TEST_CASE("PostgreSQL: COPY in and out are one exchange each, data counted not kept") {
  Capture cap;
  Socket s(cap, 7, Role::Client);
  start_session(s);
  s.request(query("COPY items TO STDOUT"));
  s.response(copy_out_response() + copy_data("1\tapple\n") + copy_data("2\tpear\n") + msg('c', "") +
             command_complete("COPY 2") + ready());
  s.request(query("COPY items FROM STDIN"));
  s.response(copy_in_response());
  s.request(copy_data(std::string(3000, 'x')) + copy_done());
  s.response(command_complete("COPY 1") + ready());
  REQUIRE(cap.exchanges.size() == 2);
  CHECK(postgres_of(cap.exchanges[0]).copy);
  CHECK(postgres_of(cap.exchanges[0]).copy_bytes == 15);
  CHECK(describe(cap.exchanges[0]).name == "COPY items");
  CHECK(postgres_of(cap.exchanges[1]).copy_bytes == 3000);
  CHECK(postgres_of(cap.exchanges[1]).command_tag == "COPY 1");
}

TEST_CASE("PostgreSQL: SSLRequest answered N continues in plaintext") {
  Capture cap;
  Socket s(cap, 8, Role::Client);
  s.open();
  s.request(ssl_request());
  s.response("N");
  s.request(startup({{"user", "app"}}));
  s.response(auth_ok() + ready());
  s.request(query("SELECT 1"));
  s.response(row_description("?column?") + data_row("1") + command_complete("SELECT 1") + ready());
  REQUIRE(cap.exchanges.size() == 1);
  CHECK(postgres_of(cap.exchanges[0]).database == "app");  // the user's name by default
  CHECK(describe(cap.exchanges[0]).name == "SELECT app");
  CHECK(pg_counters(cap).parse_errors == 0);
}

TEST_CASE("PostgreSQL: a connection opened before weft is traced from its next statement") {
  for (Role side : kBothSides) {
    CAPTURE(side);
    Capture cap;
    Socket s(cap, 9, side);
    // No handshake seen: the first bytes are the end of an answer to a query weft missed.
    s.response(data_row("x") + command_complete("SELECT 1") + ready());
    s.request(query("SELECT * FROM orders WHERE id = 3"));
    s.response(row_description("id") + data_row("3") + command_complete("SELECT 1") + ready());
    // A statement prepared before weft: executed, its text unknown, never guessed.
    s.request(bind("", "s_early", {"1"}) + execute() + sync());
    s.response(bind_complete() + data_row("1") + command_complete("SELECT 1") + ready());
    REQUIRE(cap.exchanges.size() == 2);
    auto d = describe(cap.exchanges[0]);
    CHECK(d.name == "SELECT orders");
    CHECK(sattr(d, "db.namespace") == "<absent>");
    const auto& early = postgres_of(cap.exchanges[1]);
    CHECK(early.statement_unknown);
    CHECK(early.query.empty());
    CHECK(early.statement_name == "s_early");
    auto e = describe(cap.exchanges[1]);
    CHECK(e.name == "postgresql");
    CHECK(std::get<bool>(*attr(e, "weft.postgresql.statement_unknown")));
    CHECK(sattr(e, "db.query.text") == "<absent>");
  }
}

TEST_CASE("PostgreSQL: detection") {
  using protocols::Confidence;
  using protocols::Detection;
  auto detect = [](const std::string& s) {
    return protocols::postgres::detect({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  };
  CHECK(detect(startup({{"user", "u"}})).detection == Detection::Requests);
  CHECK(detect(startup({{"user", "u"}})).confidence == Confidence::Strong);
  CHECK(detect(ssl_request()).confidence == Confidence::Strong);
  CHECK(detect(query("SELECT 1")).detection == Detection::Requests);
  CHECK(detect(query("SELECT 1")).confidence == Confidence::Strong);
  CHECK(detect(bind("", "s1") + execute() + sync()).confidence == Confidence::Weak);
  CHECK(detect(command_complete("SELECT 1") + ready()).detection == Detection::Responses);
  CHECK(detect(ready()).detection == Detection::Responses);
  CHECK(detect("GET / HTTP/1.1\r\n\r\n").detection == Detection::No);
  CHECK(detect("*1\r\n$4\r\nPING\r\n").detection == Detection::No);
  CHECK(detect("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").detection == Detection::No);
  CHECK(detect("Q").detection == Detection::NeedMore);
}

}  // namespace
}  // namespace weft::test
