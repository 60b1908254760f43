// PostgreSQL messages -> exchanges. Frontend messages that draw an answer wait in a FIFO (the
// protocol answers in order); backend messages answer its front. One exchange per simple Query
// (ended by ReadyForQuery) and per extended-protocol Execute (ended by CommandComplete,
// EmptyQueryResponse, PortalSuspended or ErrorResponse), so several Executes pipelined before
// one Sync are several exchanges, each with its statement's text when weft saw its Parse.
#include <deque>
#include <map>
#include <utility>

#include "protocols/postgres/postgres.h"
#include "protocols/postgres/wire.h"
#include "protocols/sql/sql_text.h"
#include "stream/message_framing.h"

namespace weft::protocols::postgres {
namespace {

// Requests waiting for answers beyond this are answered by nobody we will see.
constexpr size_t kMaxPending = 1024;
// Prepared statements and portals remembered per connection (beyond, one is forgotten: an
// Execute of a forgotten one is marked unknown, never guessed).
constexpr size_t kMaxStatements = 256;
// Statement text kept per statement (the rest is cut, still sanitised): with the limit above,
// at most 1 MiB of remembered statements per connection.
constexpr size_t kMaxStatementText = 4096;

enum class Item { Startup, SslRequest, Query, Parse, Bind, Describe, Execute, Close, Sync, Call };

// What a statement's text says, read once per Parse or Query.
struct Statement {
  std::string text;
  sql::StatementFacts facts;
};

struct Pending {
  Item item;
  MessageTiming timing;  // from the first message of its unit (Parse/Bind before an Execute)
  std::shared_ptr<const Statement> statement;  // Query, Execute: what runs (null: unknown)
  std::string statement_name;                  // Execute: the prepared statement
  std::string portal;                          // Bind: the portal it creates
  // The answer so far.
  bool answered = false;
  MessageTiming reply_timing;
  PostgresExchange result;
};

std::shared_ptr<const Statement> make_statement(std::string_view text) {
  auto s = std::make_shared<Statement>();
  if (text.size() > kMaxStatementText) {
    size_t cut = kMaxStatementText;
    while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8
    text = text.substr(0, cut);
  }
  s->text = std::string(text);
  s->facts = sql::read_facts(text, sql::Dialect::PostgreSQL);
  return s;
}

class PostgresHandler : public ProtocolHandler {
 public:
  PostgresHandler(std::shared_ptr<const ConnectionInfo> connection, bool requests_sent,
                  ProtocolCounters& counters)
      : connection_(std::move(connection)),
        request_dir_(requests_sent ? Direction::Send : Direction::Recv),
        counters_(counters),
        requests_(true, counters),
        replies_(false, counters) {}

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
    for (const Pending& p : pending_)
      if (p.item == Item::Query || p.item == Item::Execute) ++counters_.unmatched_requests;
    pending_.clear();
    out_ = nullptr;
  }

  bool active() const override { return true; }
  bool confirmed() const override { return confirmed_; }
  uint64_t errors() const override { return errors_; }
  uint64_t skipped_until(Direction dir, const Streams& streams) const override {
    const MessageReader& reader = dir == request_dir_ ? requests_ : replies_;
    return reader.skipped_until(streams[index(dir)]);
  }

 private:
  static int index(Direction d) { return static_cast<int>(d); }
  Direction reply_dir() const {
    return request_dir_ == Direction::Send ? Direction::Recv : Direction::Send;
  }

  void read_requests(stream::DataStream& s) {
    if (tls_) return stream::drain(s);
    for (;;) {
      bool in_step = requests_.in_step();
      auto step = requests_.next(s);
      if (step == MessageReader::Step::Waiting) return;
      if (step == MessageReader::Step::Error) {
        if (in_step) ++errors_;
        continue;
      }
      on_request(requests_.message());
    }
  }

  void read_replies(stream::DataStream& s) {
    if (tls_) return stream::drain(s);
    for (;;) {
      bool in_step = replies_.in_step();
      auto step = replies_.next(s);
      if (uint64_t unseen = replies_.take_unseen()) lost_replies(unseen);
      if (step == MessageReader::Step::Waiting) return;
      if (step == MessageReader::Step::Error) {
        if (in_step) ++errors_;
        continue;
      }
      on_reply(replies_.message());
      if (tls_) return stream::drain(s);
    }
  }

  // --- frontend ---

  void on_request(const Message& m) {
    if (m.type == 0) return on_startup(m);
    switch (m.type) {
      case 'Q':
        return on_query(m);
      case 'P':
        return on_parse(m);
      case 'B':
        return on_bind(m);
      case 'E':
        return on_execute(m);
      case 'D':
        push(Item::Describe, m);
        return;
      case 'C':
        return on_close_message(m);
      case 'S':
        push(Item::Sync, m);
        unit_open_ = false;
        return;
      case 'F':
        push(Item::Call, m);
        return;
      case 'd':
        // COPY FROM STDIN data: counted on the statement it feeds, never kept.
        if (!pending_.empty()) pending_.back().result.copy_bytes += m.body_length;
        return;
      default:
        return;  // Flush, Terminate, CopyDone/Fail, password: nothing answers them alone
    }
  }

  void on_startup(const Message& m) {
    if (m.code == kSslRequest || m.code == kGssEncRequest) {
      push(Item::SslRequest, m);
      replies_.expect_ssl_answer();
      return;
    }
    if (m.code == kCancelRequest) return;  // its own connection, closed without an answer
    // user\0name\0database\0name\0...\0: the database defaults to the user name.
    std::string_view body = m.body;
    size_t at = 0;
    std::string user;
    while (at < body.size() && body[at] != '\0') {
      std::string_view key = read_cstring(body, at);
      std::string_view value = read_cstring(body, at);
      if (key == "user") user = std::string(value);
      if (key == "database") database_ = std::string(value);
    }
    if (!database_ && !user.empty()) database_ = user;
    push(Item::Startup, m);
  }

  void on_query(const Message& m) {
    size_t at = 0;
    std::string_view text = read_cstring(m.body, at);
    Pending* p = push(Item::Query, m);
    if (!p) return;
    p->statement = make_statement(text);
    if (request_dir_ == Direction::Recv && out_)
      out_->request_started(*connection_, m.timing.start_tid, m.timing.start_ns);
  }

  void on_parse(const Message& m) {
    size_t at = 0;
    std::string name(read_cstring(m.body, at));
    std::string_view text = read_cstring(m.body, at);
    auto statement = make_statement(text);
    remember(statements_, name, statement);
    // A Parse that fails is the span: its statement names it.
    if (Pending* p = push(Item::Parse, m)) p->statement = std::move(statement);
  }

  void on_bind(const Message& m) {
    size_t at = 0;
    std::string portal(read_cstring(m.body, at));
    std::string name(read_cstring(m.body, at));
    auto it = statements_.find(name);
    std::shared_ptr<const Statement> statement = it == statements_.end() ? nullptr : it->second;
    remember(portals_, portal, PortalStatement{name, statement});
    if (Pending* p = push(Item::Bind, m)) {
      p->statement = std::move(statement);
      p->statement_name = name;
    }
  }

  void on_execute(const Message& m) {
    size_t at = 0;
    std::string portal(read_cstring(m.body, at));
    Pending* p = push(Item::Execute, m);
    unit_open_ = false;
    if (!p) return;
    auto it = portals_.find(portal);
    if (it != portals_.end()) {
      p->statement_name = it->second.name;
      p->statement = it->second.statement;
    }
    if (request_dir_ == Direction::Recv && out_)
      out_->request_started(*connection_, p->timing.start_tid, p->timing.start_ns);
  }

  void on_close_message(const Message& m) {
    size_t at = 1;
    std::string name(read_cstring(m.body, at));
    if (!m.body.empty() && m.body[0] == 'S') statements_.erase(name);
    if (!m.body.empty() && m.body[0] == 'P') portals_.erase(name);
    push(Item::Close, m);
  }

  // A request that draws an answer, now at the back of the queue; null when the server will
  // not read it (after an extended-protocol error, up to the Sync). An Execute's request starts
  // at the first message of its unit (the Parse or Bind sent with it).
  Pending* push(Item item, const Message& m) {
    if (discarding_ && item != Item::Sync) return nullptr;
    if (item == Item::Sync) discarding_ = false;
    if (pending_.size() >= kMaxPending) {
      pending_.pop_front();
      ++counters_.unmatched_requests;
    }
    Pending p;
    p.item = item;
    p.timing = m.timing;
    bool unit_part = item == Item::Parse || item == Item::Bind || item == Item::Describe ||
                     item == Item::Execute;
    if (unit_part && unit_open_) {
      p.timing.start_ns = unit_start_.start_ns;
      p.timing.start_tid = unit_start_.start_tid;
      p.timing.stream_pos = unit_start_.stream_pos;
      p.timing.tcp_seq = unit_start_.tcp_seq;
      p.timing.wire_bytes += unit_bytes_;
    } else if (unit_part) {
      unit_open_ = true;
      unit_start_ = m.timing;
      unit_bytes_ = 0;
    }
    if (unit_part) unit_bytes_ += m.timing.wire_bytes;
    p.result.database = database_;
    pending_.push_back(std::move(p));
    return &pending_.back();
  }

  struct PortalStatement {
    std::string name;
    std::shared_ptr<const Statement> statement;
  };
  template <typename V>
  void remember(std::map<std::string, V>& map, const std::string& key, V value) {
    map.insert_or_assign(key, std::move(value));
    if (map.size() <= kMaxStatements) return;
    auto victim = map.begin();
    if (victim->first == key) ++victim;
    map.erase(victim);
  }

  // --- backend ---

  void on_reply(const Message& m) {
    if (m.code == kSslRequest) return on_ssl_answer(m);
    switch (m.type) {
      case 'N':  // NoticeResponse
      case 'A':  // NotificationResponse
      case 'S':  // ParameterStatus
        ++counters_.not_replies;
        return;
      case 'R':  // authentication, BackendKeyData, NegotiateProtocolVersion: startup talk
      case 'K':
      case 'v':
        return;
      default:
        break;
    }
    if (pending_.empty()) {
      ++counters_.unmatched_responses;
      return;
    }
    Pending& front = pending_.front();
    if (m.timing.start_ns != 0 && m.timing.start_ns < front.timing.end_ns) {
      ++counters_.unmatched_responses;  // sent before the request: answers one weft did not see
      return;
    }
    if (!front.answered) {
      front.answered = true;
      front.reply_timing = m.timing;
    } else {
      front.reply_timing.end_ns = m.timing.end_ns;
      front.reply_timing.end_tid = m.timing.end_tid;
      front.reply_timing.wire_bytes += m.timing.wire_bytes;
    }
    answer(m);
  }

  void on_ssl_answer(const Message& m) {
    if (!pending_.empty() && pending_.front().item == Item::SslRequest) pending_.pop_front();
    // 'S': TLS follows (its plaintext, when a TLS library's is read, restarts the connection's
    // parsing); 'N': the startup message follows in plaintext.
    if (m.type == 'S' || m.type == 'G') tls_ = true;
    confirmed_ = true;
  }

  void answer(const Message& m) {
    Pending& front = pending_.front();
    PostgresExchange& r = front.result;
    switch (m.type) {
      case 'D':
        ++r.rows;
        return;
      case 'C': {
        size_t at = 0;
        r.command_tag = std::string(read_cstring(m.body, at).substr(0, 64));
        ++r.commands;
        if (front.item == Item::Execute) finish_front();
        return;
      }
      case 'I':
        r.empty_query = true;
        if (front.item == Item::Execute) finish_front();
        return;
      case 's':
        r.suspended = true;
        if (front.item == Item::Execute) finish_front();
        return;
      case 'G':
      case 'H':
      case 'W':
        r.copy = true;
        return;
      case 'd':
        r.copy_bytes += m.body_length;
        return;
      case 'E':
        return on_error(m);
      case 'Z':
        return on_ready();
      case '1':
      case '2':
      case '3':
      case 'n':
      case 'T':
      case 't':
        return on_step_done(m.type);
      default:
        return;  // CopyDone, FunctionCallResponse: part of the front's answer
    }
  }

  // ParseComplete, BindComplete, CloseComplete, NoData, RowDescription, ParameterDescription.
  void on_step_done(uint8_t type) {
    Item item = pending_.front().item;
    bool done = (type == '1' && item == Item::Parse) || (type == '2' && item == Item::Bind) ||
                (type == '3' && item == Item::Close) ||
                ((type == 'n' || type == 'T') && item == Item::Describe);
    if (done) {
      confirmed_ = true;
      pending_.pop_front();
    } else if (type != 'T' && type != 't') {
      mismatch();
    }
  }

  // ErrorResponse: a Query's is part of its answer (ReadyForQuery ends it). In the extended
  // protocol the server skips everything up to the next Sync: the error belongs to the first
  // Execute before it (the statement that did not run), or to the message that failed when
  // none (a Parse alone); the other Executes never ran.
  void on_error(const Message& m) {
    ErrorFields e = read_error(m.body);
    Pending& front = pending_.front();
    if (front.item == Item::Query || front.item == Item::Call || front.item == Item::Startup) {
      if (front.result.sqlstate.empty()) {
        front.result.sqlstate = e.code.empty() ? "XX000" : e.code;
        front.result.severity = e.severity;
      }
      return;
    }
    if (front.item == Item::Sync || front.item == Item::SslRequest) return;
    size_t sync = 0;
    while (sync < pending_.size() && pending_[sync].item != Item::Sync) ++sync;
    size_t failed = 0;
    while (failed < sync && pending_[failed].item != Item::Execute) ++failed;
    if (failed == sync) failed = 0;
    // The Sync not read yet: the server skips what comes before it too.
    if (sync == pending_.size()) discarding_ = true;
    Pending p = std::move(pending_[failed]);
    for (size_t i = 0; i < sync; ++i)
      if (i != failed && pending_[i].item == Item::Execute) ++counters_.unmatched_requests;
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<long>(sync));
    p.result.sqlstate = e.code.empty() ? "XX000" : e.code;
    p.result.severity = e.severity;
    p.reply_timing.end_ns = m.timing.end_ns;
    p.reply_timing.end_tid = m.timing.end_tid;
    if (p.item == Item::Startup || p.item == Item::Close || p.item == Item::Describe) return;
    emit(std::move(p));
  }

  // ReadyForQuery: a Query or a Sync is done; anything still before it was never answered.
  void on_ready() {
    while (!pending_.empty()) {
      Pending p = std::move(pending_.front());
      pending_.pop_front();
      if (p.item == Item::Query || p.item == Item::Call) {
        confirmed_ = true;
        return emit(std::move(p));
      }
      if (p.item == Item::Sync || p.item == Item::Startup) {
        confirmed_ = true;
        return;
      }
      if (p.item == Item::Execute) ++counters_.unmatched_requests;
    }
  }

  // Backend bytes never seen where messages were: the answer being read ended in them (its
  // CommandComplete and ReadyForQuery unseen). It is finished with what was seen; the rest of
  // its Sync's batch was answered in those bytes too, or will be found unanswered.
  void lost_replies(uint64_t unseen) {
    if (pending_.empty() || !pending_.front().answered) return;
    Pending& front = pending_.front();
    front.reply_timing.wire_bytes += unseen;
    front.reply_timing.truncated = true;
    if (front.item != Item::Query && front.item != Item::Execute && front.item != Item::Call) {
      pending_.pop_front();
      return;
    }
    bool execute = front.item == Item::Execute;
    finish_front();
    while (execute && !pending_.empty()) {
      Item item = pending_.front().item;
      if (item == Item::Query || item == Item::Startup || item == Item::SslRequest) break;
      if (item == Item::Execute) ++counters_.unmatched_requests;
      pending_.pop_front();
      if (item == Item::Sync) break;
    }
  }

  // An answer that fits no request waiting: weft lost track (bytes lost, joined mid-way).
  void mismatch() {
    ++counters_.unmatched_responses;
    for (const Pending& p : pending_)
      if (p.item == Item::Query || p.item == Item::Execute) ++counters_.unmatched_requests;
    pending_.clear();
    unit_open_ = false;
  }

  void finish_front() {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    confirmed_ = true;
    emit(std::move(p));
  }

  void emit(Pending&& p) {
    auto pg = std::make_shared<PostgresExchange>(std::move(p.result));
    pg->extended = p.item != Item::Query;
    pg->statement_name = std::move(p.statement_name);
    if (p.statement) {
      pg->query = p.statement->text;
      pg->operation = p.statement->facts.operation;
      pg->collection = p.statement->facts.collection;
    } else {
      pg->statement_unknown = p.item == Item::Execute || p.item == Item::Bind;
    }
    Exchange ex;
    ex.protocol = &protocol();
    ex.side = request_dir_ == Direction::Send ? weft::Role::Client : weft::Role::Server;
    ex.connection = connection_;
    ex.request = p.timing;
    ex.response = p.answered ? p.reply_timing : p.timing;
    if (!p.answered) ex.response.start_ns = ex.response.end_ns = p.reply_timing.end_ns;
    ex.details = std::move(pg);
    ++counters_.exchanges;
    if (out_) out_->exchange(std::move(ex));
  }

  std::shared_ptr<const ConnectionInfo> connection_;
  Direction request_dir_;
  ProtocolCounters& counters_;
  MessageReader requests_;
  MessageReader replies_;
  std::deque<Pending> pending_;
  std::map<std::string, std::shared_ptr<const Statement>> statements_;
  std::map<std::string, PortalStatement> portals_;
  std::optional<std::string> database_;
  HandlerOutput* out_ = nullptr;
  bool unit_open_ = false;
  MessageTiming unit_start_;
  uint64_t unit_bytes_ = 0;
  bool discarding_ = false;
  bool tls_ = false;
  bool confirmed_ = false;
  uint64_t errors_ = 0;
};

}  // namespace

std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters) {
  return std::make_unique<PostgresHandler>(std::move(connection), requests_sent, counters);
}

}  // namespace weft::protocols::postgres
