// MySQL packets -> exchanges. The protocol is strictly one command at a time: the client sends a
// command (sequence id 0), the server answers it (sequence ids 1, 2, ...), except COM_QUIT,
// COM_STMT_CLOSE and COM_STMT_SEND_LONG_DATA, which nothing answers and which make no exchange.
// Sequence ids frame the answers: a server packet must carry the id that follows the last one of
// its command, so a packet that does not is not believed (bytes lost, garbage) and the reader
// looks again at the next syscall boundary.
//
// One exchange per command, whatever it returned: a COM_QUERY holding several statements
// (CLIENT_MULTI_STATEMENTS) answers with several results chained by SERVER_MORE_RESULTS_EXISTS,
// all one exchange that counts them (docs/protocols.md says why).
#include <deque>
#include <map>
#include <utility>

#include "protocols/mysql/mysql.h"
#include "protocols/mysql/wire.h"
#include "protocols/sql/sql_text.h"
#include "stream/message_framing.h"

namespace weft::protocols::mysql {
namespace {

// First payload bytes kept: a statement's text (longer ones are cut, still sanitised); of a
// server packet, what an OK, ERR, EOF, column count or greeting needs.
constexpr size_t kKeptRequestBytes = 16384;
constexpr size_t kKeptReplyBytes = 256;
// Commands waiting for answers beyond this are answered by nobody we will see.
constexpr size_t kMaxPending = 64;
// Prepared statements remembered per connection (beyond, the lowest id is forgotten: an EXECUTE
// of a forgotten one is marked unknown, never guessed) and the text kept per statement.
constexpr size_t kMaxStatements = 256;
constexpr size_t kMaxStatementText = 4096;
// Authentication packets are short; a longer one is not believed.
constexpr uint64_t kMaxAuthPacket = 65535;
// Columns of a result set beyond this are not believed.
constexpr uint64_t kMaxColumns = 65536;
constexpr uint16_t kServerStatusCursorExists = 0x0040;
// The statement id MariaDB's execute-direct sends with an EXECUTE pipelined after its PREPARE:
// the statement just prepared.
constexpr uint32_t kLastPrepared = 0xffffffff;

struct Statement {
  std::string text;
  sql::StatementFacts facts;
};

std::shared_ptr<const Statement> make_statement(std::string_view text) {
  auto s = std::make_shared<Statement>();
  if (text.size() > kMaxStatementText) {
    size_t cut = kMaxStatementText;
    while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8
    text = text.substr(0, cut);
  }
  s->text = std::string(text);
  s->facts = sql::read_facts(text, sql::Dialect::MySQL);
  return s;
}

// The schema a "USE name" statement selects, or "".
std::string used_schema(const Statement& s) {
  if (s.facts.operation != "USE") return {};
  std::string_view t = s.text;
  size_t at = t.find_first_not_of(" \t\r\n");
  if (at == std::string_view::npos) return {};
  at += 3;
  at = t.find_first_not_of(" \t\r\n", at);
  if (at == std::string_view::npos) return {};
  std::string_view name = t.substr(at);
  if (!name.empty() && name[0] == '`') {
    size_t end = name.find('`', 1);
    return end == std::string_view::npos ? std::string() : std::string(name.substr(1, end - 1));
  }
  size_t end = name.find_first_of(" \t\r\n;");
  return std::string(name.substr(0, std::min<size_t>(end, 256)));
}

// The EOF packet of the classic style: 0xfe, warnings, status (5 bytes; 1 before protocol 4.1).
// The OK that replaces it with CLIENT_DEPRECATE_EOF also starts 0xfe but is 7 bytes or more.
bool classic_eof(const Packet& p) {
  return !p.head.empty() && static_cast<uint8_t>(p.head[0]) == 0xfe && p.length <= 5;
}

// Where a command's answer is.
enum class Reply {
  First,         // the first packet of a result: OK, ERR, LOCAL INFILE request or column count
  Columns,       // column definitions, columns_left of them
  AfterColumns,  // a classic EOF may end the definitions
  Rows,          // rows until an EOF, an OK with 0xfe, or an ERR
  PrepareDefs,   // a PREPARE's parameter and column definitions
  Infile,        // the client sends the file; the server answers at its end
  Auth,          // COM_CHANGE_USER: authentication until an OK or an ERR
  FieldList,     // column definitions until an EOF
};

struct Pending {
  uint8_t command = 0;
  MessageTiming timing;
  std::shared_ptr<const Statement> statement;
  Reply reply = Reply::First;
  int next_seq = 1;  // the server's next packet's sequence id; -1: unknown
  uint64_t columns_left = 0;
  uint32_t params_left = 0;
  uint32_t prepare_columns_left = 0;
  bool eof_may_follow = false;              // PREPARE: a classic EOF may end the block just read
  std::optional<std::string> new_database;  // COM_INIT_DB, COM_CHANGE_USER, USE
  bool answered = false;
  MessageTiming reply_timing;
  MysqlExchange result;
};

class MysqlHandler : public ProtocolHandler {
 public:
  MysqlHandler(std::shared_ptr<const ConnectionInfo> connection, bool requests_sent,
               ProtocolCounters& counters)
      : connection_(std::move(connection)),
        request_dir_(requests_sent ? Direction::Send : Direction::Recv),
        counters_(counters),
        requests_(kKeptRequestBytes, counters),
        replies_(kKeptReplyBytes, counters) {
    // No greeting seen (yet): the server's own program may say which server it is.
    if (!requests_sent) mariadb_ = connection_->comm.starts_with("mariadb");
  }

  void on_data(Direction dir, Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    stream::DataStream& requests = streams[index(request_dir_)];
    if (dir != request_dir_) stream::peer_moved_on(requests);
    read_requests(requests);
    if (dir != request_dir_) read_replies(streams[index(reply_dir())]);
    out_ = nullptr;
  }

  void on_close(Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    for (auto& s : streams) s.settle();
    read_requests(streams[index(request_dir_)]);
    read_replies(streams[index(reply_dir())]);
    counters_.unmatched_requests += pending_.size();
    pending_.clear();
    out_ = nullptr;
  }

  bool active() const override { return true; }
  bool confirmed() const override { return confirmed_; }
  uint64_t errors() const override { return errors_; }
  uint64_t skipped_until(Direction dir, const Streams& streams) const override {
    const PacketReader& reader = dir == request_dir_ ? requests_ : replies_;
    return reader.skipped_until(streams[index(dir)]);
  }

 private:
  static int index(Direction d) { return static_cast<int>(d); }
  Direction reply_dir() const {
    return request_dir_ == Direction::Send ? Direction::Recv : Direction::Send;
  }

  // What the client may send next.
  Expect request_expect() const {
    Expect e;
    if (!pending_.empty() && pending_.front().reply == Reply::Infile) {
      e.seq = infile_seq_;  // the file's next packet
      return e;
    }
    e.command = true;
    if (!started_) {  // the HandshakeResponse (1; 2 after TLS) or a command
      e.either = true;
      e.seq = 1;
      e.alt_seq = 2;
      e.max_length = kMaxAuthPacket;
    } else if (auth_ || (!pending_.empty() && pending_.front().reply == Reply::Auth)) {
      e.either = true;  // authentication data, any sequence id; a command ends it
      e.max_length = kMaxAuthPacket;
    }
    return e;
  }

  // What the server may send next.
  Expect reply_expect() const {
    Expect e;
    e.alt_seq = maybe_eof_seq_;
    if (pending_.empty()) {
      if (auth_) {
        e.max_length = kMaxAuthPacket;
        return e;
      }
      e.seq = 0;                         // a greeting
      if (e.alt_seq < 0) e.alt_seq = 1;  // an answer to a command weft did not see
      return e;
    }
    const Pending& f = pending_.front();
    if (f.reply == Reply::Auth) {
      e.max_length = kMaxAuthPacket;
      return e;
    }
    e.seq = f.next_seq;
    // A later command waits: its answer may start while this one's end was lost.
    if (pending_.size() > 1) e.alt_seq2 = 1;
    return e;
  }

  void read_requests(stream::DataStream& s) {
    if (tls_) return stream::drain(s);
    for (;;) {
      bool in_step = requests_.in_step();
      auto step = requests_.next(s, request_expect());
      if (step == PacketReader::Step::Waiting) return;
      if (step == PacketReader::Step::Error) {
        if (in_step) ++errors_;
        continue;
      }
      on_request(requests_.packet());
      if (tls_) return stream::drain(s);
    }
  }

  void read_replies(stream::DataStream& s) {
    if (tls_) return stream::drain(s);
    for (;;) {
      bool in_step = replies_.in_step();
      auto step = replies_.next(s, reply_expect());
      if (uint64_t unseen = replies_.take_unseen()) lost_replies(unseen);
      if (step == PacketReader::Step::Waiting) return;
      if (step == PacketReader::Step::Error) {
        if (in_step) ++errors_;
        continue;
      }
      on_reply(replies_.packet());
      if (tls_) return stream::drain(s);
    }
  }

  // --- client ---

  void on_request(const Packet& p) {
    const bool first = !started_;
    started_ = true;
    if (!pending_.empty() && pending_.front().reply == Reply::Infile) return on_infile_data(p);
    if (p.seq != 0) {
      // The HandshakeResponse is the client's first packet of the login (1, or 2 after an SSL
      // request); what follows it (an authentication switch's answer) is authentication data.
      if ((first || (auth_ && !login_seen_)) && (p.seq == 1 || p.seq == 2))
        on_handshake_response(p);
      return;  // authentication data: never kept
    }
    auth_ = false;  // a command: authentication is over (weft may have missed its end)
    on_command(p);
  }

  // HandshakeResponse41: capabilities, max packet, charset, 23 zero bytes, user, auth data,
  // database. The user and the auth data are passed over, never kept.
  void on_handshake_response(const Packet& p) {
    std::string_view b = p.head;
    size_t at = 0;
    auto caps = read_int(b, at, 4);
    if (!caps || !(*caps & kClientProtocol41) || b.size() < 32) return;
    client_caps_ = static_cast<uint32_t>(*caps);
    auth_ = true;
    login_seen_ = p.length > 32;  // an SSL request is followed by the real one (in TLS)
    confirmed_ = true;
    if (p.length == 32 && (*caps & kClientSsl)) {
      tls_ = true;  // an SSL request: TLS follows, ciphertext (its plaintext comes from uprobes)
      return;
    }
    at = 32;
    read_cstring(b, at);  // user
    if (*caps & kClientPluginAuthLenencData) {
      auto n = read_lenenc(b, at);
      if (!n) return;
      at += static_cast<size_t>(std::min<uint64_t>(*n, b.size()));
    } else if (*caps & kClientSecureConnection) {
      if (at >= b.size()) return;
      at += 1 + static_cast<uint8_t>(b[at]);
    } else {
      read_cstring(b, at);
    }
    if ((*caps & kClientConnectWithDb) && at < b.size()) {
      std::string_view db = read_cstring(b, at);
      if (!db.empty()) database_ = std::string(db.substr(0, 256));
    }
  }

  void on_command(const Packet& p) {
    const std::string_view b = p.head;
    const uint8_t c = static_cast<uint8_t>(b[0]);
    size_t at = 1;
    switch (c) {
      case kQuit:
      case kStmtSendLongData:
        return;  // nothing answers them
      case kStmtClose: {
        if (auto id = read_int(b, at, 4)) statements_.erase(static_cast<uint32_t>(*id));
        return;
      }
      default:
        break;
    }
    Pending* f = push(c, p);
    if (!f) return;
    switch (c) {
      case kQuery: {
        std::string_view text = query_text(b, query_attributes());
        f->statement = make_statement(text);
        std::string schema = used_schema(*f->statement);
        if (!schema.empty()) f->new_database = schema;
        break;
      }
      case kStmtPrepare:
        f->statement = make_statement(b.substr(1));
        break;
      case kStmtExecute:
      case kStmtBulkExecute:
      case kStmtFetch:
      case kStmtReset: {
        f->result.prepared = true;
        auto id = read_int(b, at, 4);
        if (!id) {
          f->result.statement_unknown = true;
          break;
        }
        uint32_t sid = static_cast<uint32_t>(*id);
        if (sid == kLastPrepared) sid = last_prepared_;
        f->result.statement_id = sid;
        auto it = statements_.find(sid);
        if (it != statements_.end())
          f->statement = it->second;
        else
          f->result.statement_unknown = true;
        if (c == kStmtFetch) f->reply = Reply::Rows;
        break;
      }
      case kInitDb:
        f->new_database = std::string(b.substr(1, 256));
        break;
      case kChangeUser: {
        f->reply = Reply::Auth;
        read_cstring(b, at);  // user
        uint32_t caps = client_caps_.value_or(kClientSecureConnection);
        if (caps & kClientSecureConnection) {
          if (at < b.size()) at += 1 + static_cast<uint8_t>(b[at]);
        } else {
          read_cstring(b, at);
        }
        if (at < b.size()) f->new_database = std::string(read_cstring(b, at).substr(0, 256));
        break;
      }
      case kFieldList:
        f->reply = Reply::FieldList;
        break;
      default:
        break;
    }
  }

  // LOCAL INFILE data: counted on the statement it feeds, never kept; an empty packet ends it.
  void on_infile_data(const Packet& p) {
    Pending& f = pending_.front();
    f.result.infile_bytes += p.length;
    infile_seq_ = p.packets_unknown ? -1 : static_cast<uint8_t>(p.last_seq + 1);
    if (p.length == 0) {
      f.next_seq = infile_seq_;
      f.reply = Reply::First;  // the server's OK or ERR ends the statement
      f.result.local_infile = true;
    }
  }

  Pending* push(uint8_t command, const Packet& p) {
    if (pending_.size() >= kMaxPending) {
      pending_.pop_front();
      ++counters_.unmatched_requests;
    }
    Pending f;
    f.command = command;
    f.timing = p.timing;
    f.result.command = command;
    // A long command took several packets: the answer's sequence ids follow its last one,
    // unknown when the capture did not hold the headers of its continuations.
    f.next_seq = p.packets_unknown ? -1 : static_cast<uint8_t>(p.last_seq + 1);
    f.result.database = database_;
    pending_.push_back(std::move(f));
    if (request_dir_ == Direction::Recv && out_)
      out_->request_started(*connection_, p.timing.start_tid, p.timing.start_ns);
    return &pending_.back();
  }

  std::optional<bool> query_attributes() const {
    if (client_caps_ && !(*client_caps_ & kClientQueryAttributes)) return false;
    if (client_caps_ && server_caps_)
      return (*client_caps_ & *server_caps_ & kClientQueryAttributes) != 0;
    return std::nullopt;
  }
  std::optional<bool> deprecate_eof() const {
    if (client_caps_ && !(*client_caps_ & kClientDeprecateEof)) return false;
    if (client_caps_ && server_caps_)
      return (*client_caps_ & *server_caps_ & kClientDeprecateEof) != 0;
    return std::nullopt;
  }

  // --- server ---

  void on_reply(const Packet& p) {
    const int optional_eof = maybe_eof_seq_;
    maybe_eof_seq_ = -1;
    if (p.seq == optional_eof && classic_eof(p) &&
        (pending_.empty() || p.seq != pending_.front().next_seq))
      return;  // the EOF that ends a PREPARE's definitions without CLIENT_DEPRECATE_EOF
    if (pending_.empty()) {
      if (p.seq == 0 && !p.head.empty() && p.head[0] == 0x0a) return on_greeting(p);
      if (auth_) return on_auth_reply(p);
      ++counters_.unmatched_responses;
      return;
    }
    skip_lost_answers(p);
    Pending& f = pending_.front();
    if (f.reply == Reply::Infile) {  // the server does not speak during the file
      ++counters_.unmatched_responses;
      return;
    }
    if (p.timing.start_ns != 0 && p.timing.start_ns < f.timing.end_ns) {
      ++counters_.unmatched_responses;  // sent before the command: answers one weft did not see
      return;
    }
    if (!f.answered) {
      f.answered = true;
      f.reply_timing = p.timing;
    } else {
      f.reply_timing.end_ns = p.timing.end_ns;
      f.reply_timing.end_tid = p.timing.end_tid;
      f.reply_timing.wire_bytes += p.timing.wire_bytes;
      f.reply_timing.truncated |= p.timing.truncated;
    }
    f.next_seq = p.packets_unknown ? -1 : static_cast<uint8_t>(p.last_seq + 1);
    answer(f, p);
  }

  // An answer that starts (sequence id 1) where the front's answer should go on, while a later
  // command waits, is the later command's: the end of the front's answer was in bytes weft lost.
  // (Not after a PREPARE, whose answer may be followed by an optional EOF.)
  void skip_lost_answers(const Packet& p) {
    while (pending_.size() > 1 && p.seq == 1 && pending_.front().command != kStmtPrepare) {
      Pending& f = pending_.front();
      if (!f.answered || f.next_seq == 1) return;
      if (f.answered) {
        f.reply_timing.truncated = true;
        finish();
      } else {
        pending_.pop_front();
        ++counters_.unmatched_requests;
      }
    }
  }

  // Protocol 10: version, connection id, scramble, capabilities. The version says MariaDB.
  void on_greeting(const Packet& p) {
    std::string_view b = p.head;
    size_t at = 1;
    std::string_view version = read_cstring(b, at);
    mariadb_ = version.find("MariaDB") != std::string_view::npos;
    at += 4 + 8 + 1;  // connection id, scramble, filler
    auto low = read_int(b, at, 2);
    at += 1 + 2;  // charset, status
    auto high = read_int(b, at, 2);
    if (low) server_caps_ = static_cast<uint32_t>(*low | (high.value_or(0) << 16));
    auth_ = true;
    confirmed_ = true;
  }

  void on_auth_reply(const Packet& p) {
    uint8_t h = p.head.empty() ? 0 : static_cast<uint8_t>(p.head[0]);
    if (h == 0x00 || h == 0xff) auth_ = false;  // OK: logged in; ERR: refused
    confirmed_ = true;
  }

  void answer(Pending& f, const Packet& p) {
    const uint8_t h = p.head.empty() ? 0 : static_cast<uint8_t>(p.head[0]);
    MysqlExchange& r = f.result;
    switch (f.reply) {
      case Reply::First:
        return first_packet(f, p, h);
      case Reply::Columns:
        if (f.columns_left > 0) --f.columns_left;
        if (f.columns_left == 0) f.reply = Reply::AfterColumns;
        return;
      case Reply::AfterColumns:
        f.reply = Reply::Rows;
        if (classic_eof(p)) {
          uint16_t status = eof_status(p);
          // A cursor: the rows come with COM_STMT_FETCH.
          if ((status & kServerStatusCursorExists) && f.command == kStmtExecute) finish();
          return;
        }
        [[fallthrough]];
      case Reply::Rows:
        if (h == 0xff) return error_finish(p);
        if (h == 0xfe && p.length < kMaxPayload) {
          uint16_t status = classic_eof(p) ? eof_status(p) : ok_status(p, r);
          r.ok = true;
          if (status & kServerMoreResultsExists) {
            f.reply = Reply::First;
            return;
          }
          return finish();
        }
        ++r.rows;
        return;
      case Reply::PrepareDefs:
        return prepare_definition(f, p);
      case Reply::Infile:
        return;
      case Reply::Auth:
        if (h == 0xff) return error_finish(p);
        if (h == 0x00) {
          r.ok = true;
          if (f.new_database) database_ = f.new_database;
          return finish();
        }
        return;  // an authentication switch or more data
      case Reply::FieldList:
        if (h == 0xff) return error_finish(p);
        if (h == 0xfe && p.length < kMaxPayload) {
          r.ok = true;
          return finish();
        }
        ++r.columns;
        return;
    }
  }

  void first_packet(Pending& f, const Packet& p, uint8_t h) {
    MysqlExchange& r = f.result;
    if (h == 0xff) return error_finish(p);
    if (f.command == kStmtPrepare) {
      if (h != 0x00 || p.length < 12) return mismatch();
      size_t at = 1;
      uint32_t id = static_cast<uint32_t>(read_int(p.head, at, 4).value_or(0));
      uint32_t columns = static_cast<uint32_t>(read_int(p.head, at, 2).value_or(0));
      uint32_t params = static_cast<uint32_t>(read_int(p.head, at, 2).value_or(0));
      r.statement_id = id;
      r.columns = columns;
      r.ok = true;
      if (f.statement) remember(id, f.statement);
      last_prepared_ = id;
      f.params_left = params;
      f.prepare_columns_left = columns;
      f.reply = Reply::PrepareDefs;
      if (params + columns == 0) finish();
      return;
    }
    if (f.command == kStatistics) {  // a string
      r.ok = true;
      return finish();
    }
    if (h == 0x00 && p.length >= 7) {
      ++r.results;
      r.ok = true;
      if (f.new_database) database_ = f.new_database;
      if (ok_status(p, r) & kServerMoreResultsExists) return;
      return finish();
    }
    if (h == 0xfe && p.length < kMaxPayload) {  // EOF (or OK): COM_SET_OPTION, COM_DEBUG
      r.ok = true;
      return finish();
    }
    if (h == 0xfb && f.command == kQuery) {  // LOCAL INFILE: the client sends the file
      r.local_infile = true;
      f.reply = Reply::Infile;
      infile_seq_ = f.next_seq;
      return;
    }
    if (f.command == kQuery || f.command == kStmtExecute || f.command == kStmtBulkExecute) {
      size_t at = 0;
      auto n = read_lenenc(p.head, at);
      if (!n || *n == 0 || *n > kMaxColumns) return mismatch();
      ++r.results;
      r.columns = static_cast<uint32_t>(*n);
      f.columns_left = *n;
      f.reply = Reply::Columns;
      // MySQL 8's CLIENT_OPTIONAL_RESULTSET_METADATA and MariaDB's cached metadata say after
      // the count whether the definitions follow: 0, they do not.
      if (at < p.head.size() && p.head[at] == 0) {
        f.columns_left = 0;
        f.reply = Reply::AfterColumns;
      }
      return;
    }
    r.ok = h == 0x00 || h == 0xfe;
    finish();  // any other one-packet answer
  }

  // A PREPARE's answer: [parameter definitions, EOF] [column definitions, EOF], each EOF only
  // without CLIENT_DEPRECATE_EOF. When weft does not know the capability, the EOF is recognised
  // by its shape (0xfe, 5 bytes; a definition starts with its catalog, "\x03def"); after the
  // last block the exchange ends at once and a trailing EOF is passed over when it comes.
  void prepare_definition(Pending& f, const Packet& p) {
    if (f.eof_may_follow && classic_eof(p)) {
      f.eof_may_follow = false;
      if (f.params_left == 0 && f.prepare_columns_left == 0) finish();
      return;
    }
    f.eof_may_follow = false;
    std::optional<bool> no_eof = deprecate_eof();
    if (f.params_left > 0) {
      if (--f.params_left == 0) f.eof_may_follow = no_eof != true;
    } else if (f.prepare_columns_left > 0) {
      if (--f.prepare_columns_left == 0) f.eof_may_follow = no_eof != true;
    }
    if (f.params_left > 0 || f.prepare_columns_left > 0) return;
    if (f.eof_may_follow && no_eof == false) return;  // the EOF comes: it ends the answer
    if (f.eof_may_follow) maybe_eof_seq_ = f.next_seq;
    finish();
  }

  static uint16_t eof_status(const Packet& p) {
    size_t at = 3;
    return static_cast<uint16_t>(read_int(p.head, at, 2).value_or(0));
  }
  // An OK packet (header 0x00, or 0xfe ending a result set): affected rows, last insert id,
  // status flags.
  static uint16_t ok_status(const Packet& p, MysqlExchange& r) {
    size_t at = 1;
    auto affected = read_lenenc(p.head, at);
    if (!affected) return 0;
    r.affected_rows += *affected;
    if (!read_lenenc(p.head, at)) return 0;
    return static_cast<uint16_t>(read_int(p.head, at, 2).value_or(0));
  }

  void error_finish(const Packet& p) {
    MysqlExchange& r = pending_.front().result;
    size_t at = 1;
    r.error = true;
    r.error_code = static_cast<uint16_t>(read_int(p.head, at, 2).value_or(0));
    if (at < p.head.size() && p.head[at] == '#') r.sqlstate = p.head.substr(at + 1, 5);
    finish();
  }

  void remember(uint32_t id, std::shared_ptr<const Statement> statement) {
    statements_.insert_or_assign(id, std::move(statement));
    if (statements_.size() <= kMaxStatements) return;
    auto victim = statements_.begin();
    if (victim->first == id) ++victim;
    statements_.erase(victim);
  }

  // Server bytes never seen where packets were: the answer being read ended in them. It is
  // finished with what was seen; the rest of it will not match what is expected next.
  void lost_replies(uint64_t unseen) {
    if (pending_.empty()) return;
    // Unanswered so far: its answer (or its start) was in those bytes; what it said is unknown.
    Pending& f = pending_.front();
    if (!f.answered) {
      f.answered = true;
      f.reply_timing = f.timing;
      f.reply_timing.wire_bytes = 0;
    }
    f.reply_timing.wire_bytes += unseen;
    f.reply_timing.truncated = true;
    finish();
  }

  // An answer that fits no command waiting: weft lost track (bytes lost, joined mid-way).
  void mismatch() {
    ++counters_.unmatched_responses;
    counters_.unmatched_requests += pending_.size();
    pending_.clear();
  }

  void finish() {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    confirmed_ = true;
    emit(std::move(p));
  }

  void emit(Pending&& p) {
    auto my = std::make_shared<MysqlExchange>(std::move(p.result));
    my->mariadb = mariadb_;
    if (p.command == kInitDb && p.new_database) my->database = p.new_database;
    if (p.statement) {
      my->query = p.statement->text;
      my->collection = p.statement->facts.collection;
    }
    switch (p.command) {
      case kQuery:
      case kStmtExecute:
      case kStmtBulkExecute:
      case kStmtFetch:
        // The statement's keyword; an EXECUTE of an unknown statement has none.
        if (p.statement) my->operation = p.statement->facts.operation;
        break;
      case kStmtPrepare:
        my->operation = "PREPARE";
        break;
      default: {
        const char* name = command_name(p.command);
        if (name) my->operation = std::string(name + 4);  // without "COM_": "PING", "INIT_DB"
        break;
      }
    }
    Exchange ex;
    ex.protocol = &protocol();
    ex.side = request_dir_ == Direction::Send ? weft::Role::Client : weft::Role::Server;
    ex.connection = connection_;
    ex.request = p.timing;
    ex.response = p.answered ? p.reply_timing : p.timing;
    if (!p.answered) ex.response.start_ns = ex.response.end_ns = p.reply_timing.end_ns;
    ex.details = std::move(my);
    ++counters_.exchanges;
    if (out_) out_->exchange(std::move(ex));
  }

  std::shared_ptr<const ConnectionInfo> connection_;
  Direction request_dir_;
  ProtocolCounters& counters_;
  PacketReader requests_;
  PacketReader replies_;
  std::deque<Pending> pending_;
  std::map<uint32_t, std::shared_ptr<const Statement>> statements_;
  uint32_t last_prepared_ = 0;
  std::optional<std::string> database_;
  std::optional<uint32_t> server_caps_;
  std::optional<uint32_t> client_caps_;
  HandlerOutput* out_ = nullptr;
  int maybe_eof_seq_ = -1;
  int infile_seq_ = 0;  // the LOCAL INFILE data's next sequence id; -1: unknown
  bool mariadb_ = false;
  bool started_ = false;     // a client packet was read
  bool auth_ = false;        // between the greeting and the login's OK or ERR
  bool login_seen_ = false;  // the HandshakeResponse was read
  bool tls_ = false;
  bool confirmed_ = false;
  uint64_t errors_ = 0;
};

}  // namespace

std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters) {
  return std::make_unique<MysqlHandler>(std::move(connection), requests_sent, counters);
}

}  // namespace weft::protocols::mysql
