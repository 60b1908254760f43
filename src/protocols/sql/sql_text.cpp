// The SQL lexer and what is read from its tokens. Every branch consumes at least one byte and
// nothing looks back, so any input is read in linear time.
#include "protocols/sql/sql_text.h"

#include <cstdint>
#include <vector>

namespace weft::protocols::sql {
namespace {

enum class Kind { Word, QuotedIdent, Literal, Param, Punct, Space };

struct Token {
  Kind kind;
  std::string_view text;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
// Identifier bytes: UTF-8 letters are bytes >= 0x80; '$' is allowed after the first byte.
bool starts_word(char c) {
  return is_letter(c) || c == '_' || static_cast<uint8_t>(c) >= 0x80;
}
bool in_word(char c) {
  return starts_word(c) || is_digit(c) || c == '$';
}
char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

bool equals_upper(std::string_view word, std::string_view keyword) {
  if (word.size() != keyword.size()) return false;
  for (size_t i = 0; i < word.size(); ++i)
    if (upper(word[i]) != keyword[i]) return false;
  return true;
}

class Lexer {
 public:
  Lexer(std::string_view text, Dialect dialect) : s_(text), dialect_(dialect) {}

  // False at the end of the text.
  bool next(Token& out) {
    if (i_ >= s_.size()) return false;
    size_t start = i_;
    out.kind = lex_one(start);
    out.text = s_.substr(start, i_ - start);
    return true;
  }

 private:
  bool at(size_t k, char c) const { return k < s_.size() && s_[k] == c; }
  bool pg() const { return dialect_ == Dialect::PostgreSQL; }

  Kind lex_one(size_t start) {
    char c = s_[i_];
    if (is_space(c)) return spaces();
    if (c == '-' && at(i_ + 1, '-') && (pg() || i_ + 2 >= s_.size() || is_space(s_[i_ + 2])))
      return line_comment();
    if (c == '#' && !pg()) return line_comment();
    if (c == '/' && at(i_ + 1, '*')) return block_comment();
    if (c == '\'') return quoted('\'', !pg());
    if (c == '"') return pg() ? quoted_ident('"') : quoted('"', true);
    if (c == '`' && !pg()) return quoted_ident('`');
    if (c == '$' && pg()) return dollar();
    if (c == '?' && !pg()) return single(Kind::Param);
    if (is_digit(c) || (c == '.' && i_ + 1 < s_.size() && is_digit(s_[i_ + 1]))) return number();
    if (starts_word(c)) return word(start);
    return single(Kind::Punct);
  }

  Kind single(Kind kind) {
    ++i_;
    return kind;
  }

  Kind spaces() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
    return Kind::Space;
  }

  Kind line_comment() {
    while (i_ < s_.size() && s_[i_] != '\n') ++i_;
    return Kind::Space;
  }

  // PostgreSQL comments nest; MySQL's end at the first "*/". Unterminated: to the end.
  Kind block_comment() {
    i_ += 2;
    int depth = 1;
    while (i_ < s_.size() && depth > 0) {
      if (s_[i_] == '*' && at(i_ + 1, '/')) {
        --depth;
        i_ += 2;
      } else if (pg() && s_[i_] == '/' && at(i_ + 1, '*')) {
        ++depth;
        i_ += 2;
      } else {
        ++i_;
      }
    }
    return Kind::Space;
  }

  // A string: a doubled quote is one quote; with backslash escapes, "\x" is one character.
  Kind quoted(char q, bool backslash_escapes) {
    ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (backslash_escapes && c == '\\') {
        i_ += 2;
        continue;
      }
      ++i_;
      if (c != q) continue;
      if (!at(i_, q)) break;
      ++i_;
    }
    if (i_ > s_.size()) i_ = s_.size();
    return Kind::Literal;
  }

  Kind quoted_ident(char q) {
    quoted(q, false);
    return Kind::QuotedIdent;
  }

  // $1 (a parameter), $tag$...$tag$ or $$...$$ (a string), else a '$' operator byte.
  Kind dollar() {
    size_t k = i_ + 1;
    if (k < s_.size() && is_digit(s_[k])) {
      while (k < s_.size() && is_digit(s_[k])) ++k;
      i_ = k;
      return Kind::Param;
    }
    while (k < s_.size() && (starts_word(s_[k]) || (k > i_ + 1 && is_digit(s_[k])))) ++k;
    if (!at(k, '$')) return single(Kind::Punct);
    std::string_view tag = s_.substr(i_, k + 1 - i_);
    size_t end = s_.find(tag, k + 1);
    i_ = end == std::string_view::npos ? s_.size() : end + tag.size();
    return Kind::Literal;
  }

  Kind number() {
    if (s_[i_] == '0' && i_ + 1 < s_.size() &&
        (s_[i_ + 1] == 'x' || s_[i_ + 1] == 'X' || s_[i_ + 1] == 'b' || s_[i_ + 1] == 'B' ||
         s_[i_ + 1] == 'o' || s_[i_ + 1] == 'O')) {
      i_ += 2;
      while (i_ < s_.size() && (is_hex(s_[i_]) || s_[i_] == '_')) ++i_;
      return Kind::Literal;
    }
    while (i_ < s_.size() && (is_digit(s_[i_]) || s_[i_] == '_')) ++i_;
    if (at(i_, '.') && !at(i_ + 1, '.')) {  // "1..2" is no decimal point
      ++i_;
      while (i_ < s_.size() && (is_digit(s_[i_]) || s_[i_] == '_')) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      size_t k = i_ + 1;
      if (k < s_.size() && (s_[k] == '+' || s_[k] == '-')) ++k;
      if (k < s_.size() && is_digit(s_[k])) {
        i_ = k;
        while (i_ < s_.size() && is_digit(s_[i_])) ++i_;
      }
    }
    return Kind::Literal;
  }

  // A word, or the prefix of a string literal: E'..' (escapes), B'..', X'..', N'..', U&'..'.
  Kind word(size_t start) {
    while (i_ < s_.size() && in_word(s_[i_])) ++i_;
    std::string_view w = s_.substr(start, i_ - start);
    if (w.size() == 1 && at(i_, '\'')) {
      char p = upper(w[0]);
      if (p == 'E' && pg()) return quoted('\'', true);
      if (p == 'B' || p == 'X' || p == 'N') return quoted('\'', !pg());
    }
    if (pg() && w.size() == 1 && upper(w[0]) == 'U' && at(i_, '&') && at(i_ + 1, '\'')) {
      ++i_;
      return quoted('\'', false);
    }
    return Kind::Word;
  }

  std::string_view s_;
  Dialect dialect_;
  size_t i_ = 0;
};

// The statement's significant tokens (no spaces, no comments).
std::vector<Token> significant_tokens(std::string_view text, Dialect dialect) {
  std::vector<Token> out;
  Lexer lexer(text, dialect);
  Token t;
  while (lexer.next(t))
    if (t.kind != Kind::Space) out.push_back(t);
  return out;
}

bool is_word(const Token& t, std::string_view keyword) {
  return t.kind == Kind::Word && equals_upper(t.text, keyword);
}
bool is_punct(const Token& t, char c) {
  return t.kind == Kind::Punct && t.text.size() == 1 && t.text[0] == c;
}

// Words that end a table reference's alias position (they begin the next clause).
bool is_clause_word(const Token& t) {
  static constexpr std::string_view kWords[] = {
      "WHERE",   "JOIN",       "INNER",  "LEFT",      "RIGHT",       "FULL",   "CROSS",  "NATURAL",
      "ON",      "USING",      "GROUP",  "ORDER",     "LIMIT",       "OFFSET", "HAVING", "WINDOW",
      "UNION",   "INTERSECT",  "EXCEPT", "RETURNING", "FOR",         "SET",    "VALUES", "SELECT",
      "DEFAULT", "OVERRIDING", "WITH",   "FETCH",     "TABLESAMPLE", "FROM",   "DO"};
  if (t.kind != Kind::Word) return false;
  for (std::string_view w : kWords)
    if (equals_upper(t.text, w)) return true;
  return false;
}

// Words a statement begins with in PostgreSQL or MySQL: anything else (a typo the server
// rejects, bytes that are no SQL) names no operation, so db.operation.name stays a short list.
bool is_statement_keyword(const Token& t) {
  static constexpr std::string_view kWords[] = {
      "SELECT",   "INSERT",  "UPDATE",     "DELETE",   "MERGE",    "WITH",      "VALUES",
      "TABLE",    "CREATE",  "ALTER",      "DROP",     "TRUNCATE", "COPY",      "BEGIN",
      "START",    "COMMIT",  "END",        "ROLLBACK", "ABORT",    "SAVEPOINT", "RELEASE",
      "PREPARE",  "EXECUTE", "DEALLOCATE", "SET",      "RESET",    "SHOW",      "EXPLAIN",
      "ANALYZE",  "ANALYSE", "VACUUM",     "GRANT",    "REVOKE",   "LOCK",      "LISTEN",
      "UNLISTEN", "NOTIFY",  "DECLARE",    "FETCH",    "MOVE",     "CLOSE",     "DISCARD",
      "CALL",     "DO",      "COMMENT",    "CLUSTER",  "REINDEX",  "REFRESH",   "CHECKPOINT",
      "LOAD",     "IMPORT",  "SECURITY",   "REASSIGN", "REPLACE",  "USE",       "DESCRIBE",
      "DESC",     "HANDLER", "RENAME",     "OPTIMIZE", "REPAIR",   "CHECK",     "KILL",
      "FLUSH",    "INSTALL", "UNINSTALL",  "XA",       "UNLOCK"};
  if (t.kind != Kind::Word) return false;
  for (std::string_view w : kWords)
    if (equals_upper(t.text, w)) return true;
  return false;
}

// The text of an identifier token, quotes removed (a doubled quote is one).
std::string identifier_text(const Token& t) {
  if (t.kind != Kind::QuotedIdent || t.text.size() < 2) return std::string(t.text);
  char q = t.text[0];
  std::string out;
  std::string_view body = t.text.substr(1, t.text.size() - 2);
  for (size_t i = 0; i < body.size(); ++i) {
    out += body[i];
    if (body[i] == q && i + 1 < body.size() && body[i + 1] == q) ++i;
  }
  return out;
}

std::string upper_word(std::string_view w) {
  std::string out;
  for (char c : w) out += upper(c);
  return out;
}

bool is_name(const Token& t) {
  return t.kind == Kind::Word || t.kind == Kind::QuotedIdent;
}

// What one statement (tokens [begin, end) of the text) names.
class StatementReader {
 public:
  StatementReader(const std::vector<Token>& tokens, size_t begin, size_t end)
      : t_(tokens), begin_(begin), end_(end) {}

  StatementFacts read() {
    StatementFacts facts;
    size_t op_at = operation_at();
    if (op_at >= end_) return facts;
    facts.operation = upper_word(t_[op_at].text);
    read_tables(op_at, facts.operation);
    if (!ambiguous_ && tables_.size() == 1) facts.collection = tables_[0];
    return facts;
  }

 private:
  // The operation keyword: the first word (past opening parentheses); for WITH, the first
  // statement keyword outside the common table expressions' parentheses.
  size_t operation_at() const {
    size_t i = begin_;
    while (i < end_ && is_punct(t_[i], '(')) ++i;
    if (i >= end_ || !is_statement_keyword(t_[i])) return end_;
    if (!is_word(t_[i], "WITH")) return i;
    int depth = 0;
    for (size_t k = i + 1; k < end_; ++k) {
      if (is_punct(t_[k], '(')) ++depth;
      if (is_punct(t_[k], ')')) --depth;
      if (depth == 0 &&
          (is_word(t_[k], "SELECT") || is_word(t_[k], "INSERT") || is_word(t_[k], "UPDATE") ||
           is_word(t_[k], "DELETE") || is_word(t_[k], "MERGE")))
        return k;
    }
    return i;
  }

  void read_tables(size_t op_at, const std::string& op) {
    if (op == "UPDATE") table_at(op_at + 1, false);
    if (op == "COPY" && op_at + 1 < end_ && is_name(t_[op_at + 1])) table_at(op_at + 1, false);
    if ((op == "CREATE" || op == "ALTER" || op == "DROP" || op == "TRUNCATE") && op_at + 1 < end_)
      ddl_table(op_at + 1, op == "TRUNCATE");
    // One entry per open parenthesis: does it hold a query (whose FROM names tables)?
    std::vector<bool> query_levels;
    for (size_t i = begin_; i < end_; ++i) {
      const Token& t = t_[i];
      if (is_punct(t, '(')) {
        bool query = i + 1 < end_ && (is_word(t_[i + 1], "SELECT") || is_word(t_[i + 1], "WITH") ||
                                      is_word(t_[i + 1], "VALUES"));
        query_levels.push_back(query);
        continue;
      }
      if (is_punct(t, ')')) {
        if (!query_levels.empty()) query_levels.pop_back();
        continue;
      }
      bool query_level = query_levels.empty() || query_levels.back();
      if (!query_level || t.kind != Kind::Word) continue;
      if (is_word(t, "JOIN")) ambiguous_ = true;
      if (is_word(t, "USING") && !(i + 1 < end_ && is_punct(t_[i + 1], '('))) ambiguous_ = true;
      if (is_word(t, "INTO")) table_at(i + 1, false);
      // COPY t FROM STDIN: that FROM names a file, not a table; IS DISTINCT FROM: an operator.
      bool copy_source = op == "COPY" && query_levels.empty();
      bool distinct_from = i > begin_ && is_word(t_[i - 1], "DISTINCT");
      if (is_word(t, "FROM") && !copy_source && !distinct_from) table_at(i + 1, true);
    }
  }

  // CREATE TABLE [IF NOT EXISTS] t, ALTER TABLE [IF EXISTS] [ONLY] t, DROP TABLE [IF EXISTS]
  // t, TRUNCATE [TABLE] [ONLY] t.
  void ddl_table(size_t i, bool table_word_optional) {
    if (i < end_ && is_word(t_[i], "TABLE")) {
      ++i;
    } else if (!table_word_optional) {
      return;
    }
    while (i < end_ && (is_word(t_[i], "IF") || is_word(t_[i], "NOT") || is_word(t_[i], "EXISTS") ||
                        is_word(t_[i], "ONLY")))
      ++i;
    table_at(i, false);
  }

  // A table reference at i: [ONLY] name[.name...] [[AS] alias]; a following comma is another
  // table. `function_possible`: after FROM, name( is a function, not a table.
  void table_at(size_t i, bool function_possible) {
    while (i < end_ && is_word(t_[i], "ONLY")) ++i;
    if (i >= end_ || !is_name(t_[i]) || is_word(t_[i], "LATERAL") || is_clause_word(t_[i])) {
      ambiguous_ = true;  // a subquery, a function, a parameter: no table by name
      return;
    }
    std::string name = identifier_text(t_[i++]);
    while (i + 1 < end_ && is_punct(t_[i], '.') && is_name(t_[i + 1])) {
      name += "." + identifier_text(t_[i + 1]);
      i += 2;
    }
    if (function_possible && i < end_ && is_punct(t_[i], '(')) {
      ambiguous_ = true;
      return;
    }
    if (i < end_ && is_word(t_[i], "AS")) ++i;
    if (i < end_ && is_name(t_[i]) && !is_clause_word(t_[i])) ++i;
    if (function_possible && i < end_ && is_punct(t_[i], ',')) ambiguous_ = true;
    add_table(std::move(name));
  }

  void add_table(std::string name) {
    for (const std::string& seen : tables_)
      if (seen == name) return;
    tables_.push_back(std::move(name));
    if (tables_.size() > 1) ambiguous_ = true;
  }

  const std::vector<Token>& t_;
  size_t begin_;
  size_t end_;
  std::vector<std::string> tables_;
  bool ambiguous_ = false;
};

}  // namespace

std::string sanitise(std::string_view text, Dialect dialect) {
  std::string out;
  out.reserve(text.size());
  Lexer lexer(text, dialect);
  Token t;
  bool space = false;
  while (lexer.next(t)) {
    if (t.kind == Kind::Space) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    if (t.kind == Kind::Literal)
      out += '?';
    else
      out += t.text;
  }
  return out;
}

StatementFacts read_facts(std::string_view text, Dialect dialect) {
  std::vector<Token> tokens = significant_tokens(text, dialect);
  std::vector<StatementFacts> statements;
  int depth = 0;
  size_t begin = 0;
  for (size_t i = 0; i <= tokens.size(); ++i) {
    bool end = i == tokens.size();
    if (!end && is_punct(tokens[i], '(')) ++depth;
    if (!end && is_punct(tokens[i], ')')) --depth;
    if (!end && !(depth <= 0 && is_punct(tokens[i], ';'))) continue;
    if (i > begin) statements.push_back(StatementReader(tokens, begin, i).read());
    begin = i + 1;
  }
  if (statements.empty()) return {};
  if (statements.size() == 1) return statements[0];
  // Several statements: a batch, named after its operation and table when all share them.
  StatementFacts batch = statements[0];
  for (const StatementFacts& s : statements) {
    if (s.operation != batch.operation) batch.operation.clear();
    if (s.collection != batch.collection) batch.collection.clear();
  }
  batch.operation = batch.operation.empty() ? "BATCH" : "BATCH " + batch.operation;
  return batch;
}

}  // namespace weft::protocols::sql
