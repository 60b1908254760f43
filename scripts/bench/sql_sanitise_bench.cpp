// One statement normalised by PostgreSQL's own parser (libpg_query's pg_query_normalize, Debian
// libpg-query-dev) against weft's SQL lexer (src/protocols/sql/sql_text.h): time per call and
// the text each gives. The figures and the choice are in docs/protocols.md (PostgreSQL).
//
//   g++ -O2 -std=c++20 -Isrc scripts/bench/sql_sanitise_bench.cpp \
//       src/protocols/sql/sql_text.cpp -lpg_query -o /tmp/sql_sanitise_bench
//   /tmp/sql_sanitise_bench
#include <pg_query.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "protocols/sql/sql_text.h"

namespace {

const char* const kStatements[] = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = 42;",
    "UPDATE pgbench_accounts SET abalance = abalance + -3021 WHERE aid = 77621;",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 55, 12, "
    "CURRENT_TIMESTAMP);",
    "SELECT u.id, u.name, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE u.email "
    "= 'someone@example.com' AND o.created_at > '2024-01-01' ORDER BY o.total DESC LIMIT 10",
    "SELECT * FROM t WHERE name = 'never closed",
};

template <typename F>
double ns_per_call(F&& call) {
  constexpr int kRounds = 20000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRounds; ++i) call();
  auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  return static_cast<double>(ns) / kRounds;
}

std::string normalise(const char* s) {
  PgQueryNormalizeResult r = pg_query_normalize(s);
  std::string out =
      r.error ? std::string("(error: ") + r.error->message + ")" : std::string(r.normalized_query);
  pg_query_free_normalize_result(r);
  return out;
}

}  // namespace

int main() {
  using weft::protocols::sql::Dialect;
  for (const char* s : kStatements) {
    double pg_ns = ns_per_call([&] { normalise(s); });
    double weft_ns = ns_per_call([&] {
      weft::protocols::sql::sanitise(s, Dialect::PostgreSQL);
      weft::protocols::sql::read_facts(s, Dialect::PostgreSQL);
    });
    std::printf("%s\n  pg_query_normalize %8.0f ns: %s\n  weft sanitise+facts %7.0f ns: %s\n\n", s,
                pg_ns, normalise(s).c_str(), weft_ns,
                weft::protocols::sql::sanitise(s, Dialect::PostgreSQL).c_str());
  }
  pg_query_exit();
  return 0;
}
