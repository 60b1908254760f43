// The shared SQL text module (src/protocols/sql/sql_text.h): sanitised statements, operation
// and collection names, for both dialects. The sanitising examples are the ones
// docs/protocols.md shows.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "protocols/sql/sql_text.h"

namespace weft::protocols::sql {
namespace {

std::string pg(std::string_view s) {
  return sanitise(s, Dialect::PostgreSQL);
}
std::string my(std::string_view s) {
  return sanitise(s, Dialect::MySQL);
}

struct Facts {
  std::string operation;
  std::string collection;
};
Facts facts(std::string_view s, Dialect d = Dialect::PostgreSQL) {
  StatementFacts f = read_facts(s, d);
  return {f.operation, f.collection};
}

TEST_CASE("sql sanitise: PostgreSQL literals become ?, everything else stays") {
  CHECK(pg("SELECT * FROM users WHERE id = 42") == "SELECT * FROM users WHERE id = ?");
  CHECK(pg("SELECT * FROM users WHERE name = 'O''Brien' AND age > 3.5e2") ==
        "SELECT * FROM users WHERE name = ? AND age > ?");
  CHECK(pg("INSERT INTO t (a, b) VALUES ($1, $2)") == "INSERT INTO t (a, b) VALUES ($1, $2)");
  CHECK(pg("SELECT E'it\\'s', 'plain\\' , x") == "SELECT ?, ? , x");
  CHECK(pg("SELECT $$it's $ a body$$, $fn$ SELECT 'x' $fn$") == "SELECT ?, ?");
  CHECK(pg("SELECT B'1010', X'ff', U&'d\\0061t', N'nat'") == "SELECT ?, ?, ?, ?");
  CHECK(pg("SELECT 0x1F, 1_000, .5, 12.") == "SELECT ?, ?, ?, ?");
  CHECK(pg("SELECT \"Weird \"\"Name\"\"\" FROM \"Order\"") ==
        "SELECT \"Weird \"\"Name\"\"\" FROM \"Order\"");
  CHECK(pg("SELECT a::text, b -> 'k' FROM t1 WHERE c IN (1, 2, 3)") ==
        "SELECT a::text, b -> ? FROM t1 WHERE c IN (?, ?, ?)");
  CHECK(pg("SELECT date '2024-01-02', interval '1 day'") == "SELECT date ?, interval ?");
  CHECK(pg("SELECT x FROM t WHERE y = -7") == "SELECT x FROM t WHERE y = -?");
  CHECK(pg("SELECT t2.c3 FROM t2") == "SELECT t2.c3 FROM t2");
  CHECK(pg("SELECT TRUE, NULL, now()") == "SELECT TRUE, NULL, now()");
}

TEST_CASE("sql sanitise: comments dropped and white space collapsed") {
  CHECK(pg("  SELECT  1 -- secret 42\n  FROM\tt  ") == "SELECT ? FROM t");
  CHECK(pg("SELECT /* a /* nested 'x' */ still */ 1") == "SELECT ?");
  CHECK(pg("/* app=web */ SELECT 1;") == "SELECT ?;");
}

TEST_CASE("sql sanitise: cut or unterminated literals never leak") {
  CHECK(pg("SELECT 'secret never clos") == "SELECT ?");
  CHECK(pg("SELECT $$ body never clos") == "SELECT ?");
  CHECK(pg("SELECT E'abc\\") == "SELECT ?");
  CHECK(pg("SELECT \"ident never clos") == "SELECT \"ident never clos");
  CHECK(pg("SELECT 1 /* comment never closed 'x'") == "SELECT ?");
  CHECK(pg("") == "");
  CHECK(pg("   ") == "");
}

TEST_CASE("sql sanitise: MySQL dialect") {
  CHECK(my("SELECT * FROM `order` WHERE name = \"bob\" AND note = 'it\\'s'") ==
        "SELECT * FROM `order` WHERE name = ? AND note = ?");
  CHECK(my("SELECT 1 # trailing 42\nFROM t") == "SELECT ? FROM t");
  CHECK(my("SELECT a--b\nFROM t") == "SELECT a--b FROM t");
  CHECK(my("SELECT a -- b 'c'\nFROM t") == "SELECT a FROM t");
  CHECK(my("SELECT x'ff', b'01', 0xFF, 0b01 FROM t WHERE id = ?") ==
        "SELECT ?, ?, ?, ? FROM t WHERE id = ?");
  CHECK(my("SELECT $1, $$x$$") == "SELECT $?, $$x$$");  // no parameters or dollar quoting
}

TEST_CASE("sql facts: operation names") {
  CHECK(facts("select 1").operation == "SELECT");
  CHECK(facts("  (SELECT 1) UNION (SELECT 2)").operation == "SELECT");
  CHECK(facts("BEGIN").operation == "BEGIN");
  CHECK(facts("END;").operation == "END");
  CHECK(facts("WITH x AS (SELECT 1), y AS (DELETE FROM t RETURNING *) INSERT INTO u SELECT * "
              "FROM x")
            .operation == "INSERT");
  CHECK(facts("WITH RECURSIVE r(n) AS (VALUES (1) UNION ALL SELECT n+1 FROM r) SELECT * FROM r")
            .operation == "SELECT");
  CHECK(facts("EXPLAIN ANALYZE SELECT * FROM t").operation == "EXPLAIN");
  CHECK(facts("-- comment\nupdate t set a = 1").operation == "UPDATE");
  CHECK(facts("").operation.empty());
  CHECK(facts("'not a keyword'").operation.empty());
  CHECK(facts("$1").operation.empty());
  CHECK(facts("SELEC 1").operation.empty());  // not a statement keyword: no operation
  CHECK(facts("hello world").operation.empty());
  CHECK(facts("BEGIN; UPDATE t SET a = 1; COMMIT").operation == "BATCH");
  CHECK(facts("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);").operation == "BATCH INSERT");
  CHECK(facts("SELECT 1;").operation == "SELECT");
}

TEST_CASE("sql facts: the collection of single-table statements") {
  CHECK(facts("SELECT abalance FROM pgbench_accounts WHERE aid = $1").collection ==
        "pgbench_accounts");
  CHECK(facts("UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;").collection ==
        "pgbench_tellers");
  CHECK(facts("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, "
              "CURRENT_TIMESTAMP)")
            .collection == "pgbench_history");
  CHECK(facts("DELETE FROM public.users WHERE id = 1").collection == "public.users");
  CHECK(facts("SELECT * FROM \"Order\" o WHERE o.id = 1").collection == "Order");
  CHECK(facts("SELECT * FROM t AS x WHERE x.a IN (SELECT a FROM t)").collection == "t");
  CHECK(facts("SELECT extract(year FROM ts), substring(s FROM 2) FROM events").collection ==
        "events");
  CHECK(facts("SELECT a IS DISTINCT FROM b FROM t").collection == "t");
  CHECK(facts("UPDATE ONLY parts SET x = 1").collection == "parts");
  CHECK(facts("COPY items FROM STDIN").collection == "items");
  CHECK(facts("COPY items (a, b) TO STDOUT").collection == "items");
  CHECK(facts("CREATE TABLE IF NOT EXISTS kv (k text PRIMARY KEY, v text)").collection == "kv");
  CHECK(facts("DROP TABLE IF EXISTS kv").collection == "kv");
  CHECK(facts("TRUNCATE pgbench_history").collection == "pgbench_history");
  CHECK(facts("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2").collection ==
        "t");
  CHECK(facts("SELECT * FROM t WHERE id = 1 FOR UPDATE").collection == "t");
  CHECK(facts("SELECT * FROM `db`.`tbl`", Dialect::MySQL).collection == "db.tbl");
}

TEST_CASE("sql facts: no collection when the table is not one named table") {
  CHECK(facts("SELECT 1").collection.empty());
  CHECK(facts("SELECT * FROM a JOIN b ON a.id = b.id").collection.empty());
  CHECK(facts("SELECT * FROM a, b").collection.empty());
  CHECK(facts("SELECT * FROM a x, b y WHERE x.i = y.i").collection.empty());
  CHECK(facts("SELECT * FROM (SELECT * FROM a) s").collection.empty());
  CHECK(facts("SELECT * FROM generate_series(1, 10)").collection.empty());
  CHECK(facts("SELECT * FROM a WHERE id IN (SELECT id FROM b)").collection.empty());
  CHECK(facts("INSERT INTO a SELECT * FROM b").collection.empty());
  CHECK(facts("DELETE FROM a USING b WHERE a.id = b.id").collection.empty());
  CHECK(facts("UPDATE a SET x = b.x FROM b WHERE a.id = b.id").collection.empty());
  CHECK(facts("SELECT * FROM LATERAL f(1)").collection.empty());
  CHECK(facts("BEGIN; UPDATE t SET a = 1; COMMIT").collection.empty());
  CHECK(facts("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)").collection == "t");
}

// Random bytes drawn from SQL's special characters: every call ends, no literal survives
// whole, and the output is never longer than the input.
TEST_CASE("sql text: bounded on arbitrary input") {
  std::mt19937 rng(15);
  const std::string alphabet = "'\"`$-/*#\\;()., \nEexXbBuU&0123456789abcSELECTFROM?_";
  for (int round = 0; round < 2000; ++round) {
    std::string s;
    size_t n = rng() % 200;
    for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    for (Dialect d : {Dialect::PostgreSQL, Dialect::MySQL}) {
      std::string out = sanitise(s, d);
      CHECK(out.size() <= s.size());
      read_facts(s, d);
    }
  }
  std::string quotes(100000, '\'');
  CHECK(pg(quotes).size() <= quotes.size());
  std::string dollars(100000, '$');
  CHECK(pg(dollars).size() <= dollars.size());
  std::string parens(100000, '(');
  CHECK(facts(parens).operation.empty());
}

// The cost of one sanitise + read_facts call, printed for docs/protocols.md (no assertion on
// time: this machine is shared). scripts/bench/sql_sanitise_bench.cpp measures the same
// statements with libpg_query's pg_query_normalize.
TEST_CASE("sql text: cost per statement (printed)") {
  const char* statements[] = {
      "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
      "UPDATE pgbench_accounts SET abalance = abalance + -3021 WHERE aid = 77621;",
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 55, 12, "
      "CURRENT_TIMESTAMP);",
      "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.email "
      "= 'someone@example.com' AND o.created_at > '2024-01-01' ORDER BY o.total DESC LIMIT 10"};
  for (const char* s : statements) {
    constexpr int kRounds = 20000;
    size_t sink = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {
      sink += sanitise(s, Dialect::PostgreSQL).size();
      sink += read_facts(s, Dialect::PostgreSQL).operation.size();
    }
    auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    MESSAGE("sanitise+facts " << ns / kRounds << " ns: " << std::string(s).substr(0, 40)
                              << std::string(sink ? "" : "?"));
  }
}

}  // namespace
}  // namespace weft::protocols::sql
