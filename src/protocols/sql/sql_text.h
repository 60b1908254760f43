// SQL statement text as database spans show it, for every SQL protocol (PostgreSQL, MySQL):
// the statement with its literals replaced by "?" (db.query.text), its operation
// (db.operation.name) and the one table it names (db.collection.name). One lexer, one pass,
// time linear in the input whatever its bytes (unterminated quotes and comments included).
#pragma once

#include <string>
#include <string_view>

namespace weft::protocols::sql {

// Where dialects lex differently: PostgreSQL has "..." identifiers, E'' escapes, $$dollar$$
// quoting, $1 parameters and nested /* */ comments; MySQL has `...` identifiers, "..." strings,
// backslash escapes in every string, # comments and ? parameters.
enum class Dialect { PostgreSQL, MySQL };

// The statement with every string, number, hex and bit literal replaced by "?", comments
// dropped and runs of white space made one space. Identifiers, keywords, operators and
// parameters ($1, ?) are kept. A literal cut by the end of the text (a truncated capture) is
// still replaced: no literal byte is ever returned.
std::string sanitise(std::string_view text, Dialect dialect);

struct StatementFacts {
  // The statement's first keyword, upper case ("SELECT", "BEGIN"); for WITH, the main
  // statement's (SELECT, INSERT, UPDATE, DELETE, MERGE); for EXPLAIN, "EXPLAIN". Several
  // statements: "BATCH <op>" when all have the same operation, else "BATCH". Empty when the
  // text starts with no keyword.
  std::string operation;
  // The table a single-table statement reads or writes, as written (schema prefix kept, quotes
  // removed). Empty when none, or when the statement names several tables, joins, reads a
  // subquery or a function in FROM, or anything else that makes "the" table ambiguous.
  std::string collection;
};

StatementFacts read_facts(std::string_view text, Dialect dialect);

}  // namespace weft::protocols::sql
