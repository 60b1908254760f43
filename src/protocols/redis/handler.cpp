// Redis messages -> exchanges. Requests are framed on the stream that carries them and wait in
// a FIFO; replies are framed on the other stream and each answers the oldest waiting request
// (pipelining). A request may draw several replies (SUBSCRIBE a b c in RESP2) or none (CLIENT
// REPLY OFF/SKIP); pushes and, while subscribed, RESP2 pub/sub messages answer nothing.
#include <deque>
#include <utility>

#include "protocols/redis/commands.h"
#include "protocols/redis/redis.h"
#include "stream/message_framing.h"

namespace weft::protocols::redis {
namespace {

// Requests waiting for replies beyond this are answered by nobody we will see.
constexpr size_t kMaxPendingRequests = 1024;
// Replies (SUBSCRIBE's confirmations) one request may draw before it is closed anyway.
constexpr int64_t kMaxRepliesPerRequest = 1 << 20;

std::string_view as_chars(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool is_confirmation(PubSub kind) {
  return kind >= PubSub::Subscribe && kind <= PubSub::SUnsubscribe;
}
bool is_message(PubSub kind) {
  return kind == PubSub::Message || kind == PubSub::PMessage || kind == PubSub::SMessage;
}

// One direction's messages: a framer over a stream, with holes, resyncs and timing.
class MessageReader {
 public:
  MessageReader(Role role, ProtocolCounters& counters) : framer_(role), counters_(counters) {}

  enum class Step { Message, Lost, Waiting, Error };

  // Frames the next whole message at the stream's head. Message: framer().request()/reply() and
  // timing() describe it. Lost: a message began but its framing was lost (bytes not captured
  // where a header line was, or damaged): lost_request()/lost_reply() say what was seen of it,
  // and the stream was skipped to the next boundary. Error: bytes that are not RESP (skipped to
  // the next boundary).
  // Where the bulk body being read ends in `s`, whose head is where the framer stands: its
  // bytes are passed over by length. 0 outside a body.
  uint64_t skipped_until(const stream::DataStream& s) const {
    uint64_t left = framer_.body_left();
    return left ? s.head() + left : 0;
  }

  Step next(stream::DataStream& s) {
    for (;;) {
      if (framer_.at_boundary()) {
        if (s.readable().empty()) {
          uint64_t gap = stream::skip_unseen(s);
          if (gap == 0) return Step::Waiting;
          // Bytes never seen where a message should start: what follows may be mid-message.
          counters_.skipped_bytes += gap;
          ++counters_.resyncs;
          after_gap_ = true;
          continue;
        }
        // After a gap a request must look like one: an inline line could be the tail of a
        // lost message.
        if (after_gap_ && framer_.role() == Role::Request && s.readable()[0] != '*') {
          resync(s);
          continue;
        }
        timing_ = stream::begin_message(s);
      }
      std::span<const uint8_t> bytes = s.readable();
      if (bytes.empty()) {
        // Inside a message: a bulk body that was not captured is passed over by its length.
        uint64_t gap = s.skippable();
        if (gap == 0) return Step::Waiting;
        FrameResult r = framer_.skip(gap);
        if (r.consumed == 0) {  // not a body: the message's framing is lost
          counters_.skipped_bytes += gap;
          s.consume(gap);
          ++counters_.resyncs;
          lost(s, gap);
          framer_.reset();
          after_gap_ = true;
          return Step::Lost;
        }
        counters_.skipped_bytes += r.consumed;
        s.consume(r.consumed);
        if (r.status == Status::Complete) return complete(s);
        continue;
      }
      FrameResult r = framer_.feed(bytes);
      s.consume(r.consumed);
      if (r.status == Status::Complete) return complete(s);
      if (r.status == Status::Invalid) {
        ++counters_.parse_errors;
        if (framer_.message_bytes() == 0) {
          resync(s);
          return Step::Error;
        }
        lost_invalid_ = true;
        return lose_rest(s);
      }
      if (r.consumed > 0) continue;
      // A partial line: it completes only if its bytes are on their way.
      if (s.missing_after_readable() > 0) {
        // A reply that began (its type byte is here) still answers its command, however little
        // of it was seen: dropping it would pair every later reply with the wrong command.
        if (framer_.message_bytes() > 0 || begins_reply(bytes)) return lose_rest(s);
        ++counters_.truncated_messages;
        resync(s);
        continue;
      }
      return Step::Waiting;
    }
  }

  const Framer& framer() const { return framer_; }
  const RequestSummary& lost_request() const { return lost_request_; }
  // The last Lost message ended in bytes that were not RESP (rather than bytes not seen).
  bool take_lost_invalid() { return std::exchange(lost_invalid_, false); }
  const ReplySummary& lost_reply() const { return lost_reply_; }
  MessageTiming& timing() { return timing_; }

 private:
  Step complete(stream::DataStream& s) {
    timing_.wire_bytes = framer_.message_bytes();
    stream::end_message(timing_, s);
    after_gap_ = false;
    ++counters_.messages;
    return Step::Message;
  }

  // Keeps what was seen of a message whose end will not be found; `more` bytes of it were
  // passed over (or are about to be).
  void lost(stream::DataStream& s, uint64_t more) {
    lost_request_ = framer_.request();
    lost_reply_ = framer_.reply();
    timing_.wire_bytes = framer_.message_bytes() + more;
    timing_.truncated = true;
    stream::end_message(timing_, s);
    ++counters_.truncated_messages;
  }

  // A message whose end will not be found: what was seen of it, up to the next boundary.
  Step lose_rest(stream::DataStream& s) {
    ++counters_.resyncs;
    uint64_t n = s.skip_to_next_boundary();
    counters_.skipped_bytes += n;
    lost(s, n);
    framer_.reset();
    after_gap_ = false;
    return Step::Lost;
  }

  bool begins_reply(std::span<const uint8_t> bytes) const {
    constexpr std::string_view kReplyTypes = "+-:$*_,#!=(%~>|";
    return framer_.role() == Role::Reply && !bytes.empty() &&
           kReplyTypes.find(static_cast<char>(bytes[0])) != std::string_view::npos;
  }

  // Skips to the next syscall boundary, where a message is likeliest to begin.
  void resync(stream::DataStream& s) {
    ++counters_.resyncs;
    counters_.skipped_bytes += s.skip_to_next_boundary();
    framer_.reset();
    after_gap_ = false;
  }

  Framer framer_;
  ProtocolCounters& counters_;
  MessageTiming timing_;
  bool after_gap_ = false;
  bool lost_invalid_ = false;
  RequestSummary lost_request_;
  ReplySummary lost_reply_;
};

class RedisHandler : public ProtocolHandler {
 public:
  RedisHandler(std::shared_ptr<const ConnectionInfo> connection, bool requests_sent,
               ProtocolCounters& counters)
      : connection_(std::move(connection)),
        request_dir_(requests_sent ? Direction::Send : Direction::Recv),
        counters_(counters),
        requests_(Role::Request, counters),
        replies_(Role::Reply, counters) {}

  void on_data(Direction dir, Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    stream::DataStream& requests = streams[index(request_dir_)];
    stream::DataStream& replies = streams[index(reply_dir())];
    if (first_) {
      first_ = false;
      // Seen from the connection's first byte both ways: no SELECT happened before.
      // Database 0 only for a conversation seen from its first byte: positions also start at
      // 0 on a connection opened before weft, which may have run SELECT already.
      if (connection_->seen_from_start && requests.head() == 0 && replies.head() == 0) db_ = 0;
    }
    if (dir != request_dir_) stream::peer_moved_on(requests);
    read_requests(requests);
    if (dir != request_dir_) read_replies(replies);
    out_ = nullptr;
  }

  void on_close(Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    for (auto& s : streams) s.settle();
    read_requests(streams[index(request_dir_)]);
    read_replies(streams[index(reply_dir())]);
    flush_silent();
    counters_.unmatched_requests += pending_.size();
    pending_.clear();
    out_ = nullptr;
  }

  bool active() const override { return !monitor_; }
  bool confirmed() const override { return confirmed_; }
  uint64_t errors() const override { return errors_; }
  uint64_t skipped_until(Direction dir, const Streams& streams) const override {
    const MessageReader& reader = dir == request_dir_ ? requests_ : replies_;
    return reader.skipped_until(streams[index(dir)]);
  }

 private:
  struct Pending {
    RequestSummary request;
    RequestEffect effect;
    MessageTiming timing;
    int64_t replies_left = 1;  // kRepliesPerSubscription: until the count reaches 0
    uint32_t replies_seen = 0;
    MessageTiming reply_timing;
    ReplySummary reply;  // the first reply (the one that describes the outcome)
    bool in_transaction = false;
    std::optional<int64_t> db;
  };

  static int index(Direction d) { return static_cast<int>(d); }
  Direction reply_dir() const {
    return request_dir_ == Direction::Send ? Direction::Recv : Direction::Send;
  }

  void read_requests(stream::DataStream& s) {
    if (monitor_) return stream::drain(s);
    for (;;) {
      auto step = requests_.next(s);
      if (step == MessageReader::Step::Waiting) return;
      if (step == MessageReader::Step::Error) {
        ++errors_;
        continue;
      }
      if (step == MessageReader::Step::Lost && requests_.take_lost_invalid()) ++errors_;
      const RequestSummary& request = step == MessageReader::Step::Lost
                                          ? requests_.lost_request()
                                          : requests_.framer().request();
      // A damaged request counts only when its command name survived (no error: its bytes
      // were lost, not wrong).
      if (step == MessageReader::Step::Lost &&
          (request.name_truncated || !known_command(request.command)))
        continue;
      if (!plausible_request(request)) {
        ++counters_.parse_errors;
        ++errors_;
        continue;
      }
      on_request(request, requests_.timing());
    }
  }

  void read_replies(stream::DataStream& s) {
    if (monitor_) return stream::drain(s);
    for (;;) {
      auto step = replies_.next(s);
      if (step == MessageReader::Step::Waiting) break;
      if (step == MessageReader::Step::Error) {
        ++errors_;
        continue;
      }
      if (step == MessageReader::Step::Lost && replies_.take_lost_invalid()) ++errors_;
      on_reply(
          step == MessageReader::Step::Lost ? replies_.lost_reply() : replies_.framer().reply(),
          replies_.timing());
      if (monitor_) {
        stream::drain(s);
        break;
      }
    }
    flush_silent();
  }

  // Clients never send a line starting with a RESP type byte ("+OK" is a reply); until an
  // exchange confirmed the directions, an unknown command is as suspect (a reply array of
  // bulk strings read as a request, when the first bytes seen were mid-message).
  bool plausible_request(const RequestSummary& request) const {
    if (request.inline_form && !request.command.empty() &&
        std::string_view("+-:$_,#!=(%~|>").find(request.command[0]) != std::string_view::npos)
      return false;
    return confirmed_ || request.command.empty() || known_command(request.command);
  }

  void on_request(const RequestSummary& request, const MessageTiming& timing) {
    if (request_dir_ == Direction::Recv && out_)
      out_->request_started(*connection_, timing.start_tid, timing.start_ns);
    Pending p;
    p.request = request;
    p.effect = request_effect(request);
    p.timing = timing;
    p.replies_left = p.effect.replies;
    // CLIENT REPLY OFF silences everything up to CLIENT REPLY ON; SKIP the next command.
    if (p.effect.effect == Effect::ClientReplyOn) {
      replies_off_ = false;
      skip_next_ = false;
    } else if (replies_off_ || skip_next_) {
      p.replies_left = 0;
      skip_next_ = false;
    }
    if (p.effect.effect == Effect::ClientReplyOff) replies_off_ = true;
    if (p.effect.effect == Effect::ClientReplySkip) skip_next_ = true;
    if (pending_.size() >= kMaxPendingRequests) {
      pending_.pop_front();
      ++counters_.unmatched_requests;
    }
    pending_.push_back(std::move(p));
    flush_silent();
  }

  void on_reply(const ReplySummary& reply, const MessageTiming& timing) {
    PubSub kind = reply.pubsub();
    bool answers_subscription = is_confirmation(kind) && !pending_.empty() &&
                                (pending_.front().effect.effect == Effect::Subscribe ||
                                 pending_.front().effect.effect == Effect::Unsubscribe);
    if (is_confirmation(kind)) {
      if (auto count = reply.subscription_count()) subscribed_ = *count > 0;
    }
    if (reply.is_push() && !answers_subscription) {
      ++counters_.not_replies;  // RESP3 pub/sub messages, invalidations
      return;
    }
    if (resp_ == 2 && subscribed_ && is_message(kind)) {
      ++counters_.not_replies;  // RESP2 pub/sub message on a subscribed connection
      return;
    }
    // A request waiting for "one confirmation per subscription" ends at anything else.
    if (!pending_.empty() && pending_.front().replies_left == kRepliesPerSubscription &&
        pending_.front().replies_seen > 0 && !is_confirmation(kind)) {
      finish_front();
      flush_silent();
    }
    if (pending_.empty()) {
      ++counters_.unmatched_responses;
      return;
    }
    Pending& p = pending_.front();
    if (timing.start_ns != 0 && timing.start_ns < p.timing.end_ns) {
      // Sent before the request was: it answers something weft did not see.
      ++counters_.unmatched_responses;
      return;
    }
    if (p.replies_seen == 0) {
      p.reply = reply;
      p.reply_timing = timing;
      p.in_transaction = in_multi_ && p.effect.effect != Effect::Exec &&
                         p.effect.effect != Effect::Discard && p.effect.effect != Effect::Multi;
      p.db = db_;
    } else {
      p.reply_timing.end_ns = timing.end_ns;
      p.reply_timing.end_tid = timing.end_tid;
      p.reply_timing.wire_bytes += timing.wire_bytes;
      p.reply_timing.truncated |= timing.truncated;
    }
    ++p.replies_seen;
    bool done = false;
    if (p.replies_left == kRepliesPerSubscription) {
      auto count = reply.subscription_count();
      done = !is_confirmation(kind) || (count && *count == 0) ||
             p.replies_seen >= kMaxRepliesPerRequest;
    } else {
      // An error answers a subscribe-family command once, whatever the channels.
      done = --p.replies_left <= 0 || reply.is_error();
    }
    if (done) finish_front();
  }

  // State changes a command makes once its reply says it took effect.
  void apply_effect(const Pending& p) {
    const bool ok = p.replies_seen > 0 && !p.reply.is_error();
    switch (p.effect.effect) {
      case Effect::Select:
        if (ok && p.effect.db) db_ = *p.effect.db;
        break;
      case Effect::Multi:
        if (ok) in_multi_ = true;
        break;
      case Effect::Exec:
      case Effect::Discard:
        if (p.replies_seen > 0) in_multi_ = false;
        break;
      case Effect::Hello:
        if (ok && p.effect.protocol) resp_ = *p.effect.protocol;
        break;
      case Effect::Reset:
        if (ok) {
          in_multi_ = false;
          subscribed_ = false;
          db_ = 0;
          resp_ = 2;
          replies_off_ = false;
          skip_next_ = false;
        }
        break;
      case Effect::Monitor:
        if (ok) monitor_ = true;
        break;
      default:
        break;
    }
  }

  void finish_front() {
    Pending p = std::move(pending_.front());
    pending_.pop_front();
    // A command inside MULTI is only queued: its effect, if any, comes with EXEC.
    if (!p.in_transaction) apply_effect(p);
    emit(std::move(p));
  }

  // Requests that draw no reply are done as soon as everything before them is answered.
  void flush_silent() {
    while (!pending_.empty() && pending_.front().replies_left == 0 &&
           pending_.front().replies_seen == 0) {
      Pending& p = pending_.front();
      p.db = db_;
      p.in_transaction = false;
      p.reply_timing = p.timing;
      p.reply_timing.start_ns = p.reply_timing.end_ns = p.timing.end_ns;
      p.reply_timing.wire_bytes = 0;
      p.reply_timing.body_bytes = 0;
      Pending done = std::move(p);
      pending_.pop_front();
      apply_effect(done);
      emit(std::move(done));
    }
  }

  void emit(Pending&& p) {
    auto redis = std::make_shared<RedisExchange>();
    redis->request = std::move(p.request);
    redis->db = p.db;
    redis->replies = p.replies_seen;
    redis->in_transaction = p.in_transaction;
    redis->resp_version = resp_;
    if (p.replies_seen > 0) {
      const Element& v = p.reply.value;
      redis->reply_type = v.type;
      redis->reply_length = v.length;
      redis->reply_null = v.null;
      if (p.reply.is_error()) {
        redis->error_prefix = std::string(p.reply.error_prefix());
        redis->error_message = v.text;
      } else if (v.type == Type::SimpleString) {
        redis->reply_text = v.text;
      }
    }
    Exchange ex;
    ex.protocol = &protocol();
    ex.side = request_dir_ == Direction::Send ? weft::Role::Client : weft::Role::Server;
    ex.connection = connection_;
    ex.request = p.timing;
    ex.response = p.reply_timing;
    ex.details = std::move(redis);
    ++counters_.exchanges;
    confirmed_ = true;
    if (out_) out_->exchange(std::move(ex));
  }

  std::shared_ptr<const ConnectionInfo> connection_;
  Direction request_dir_;
  ProtocolCounters& counters_;
  MessageReader requests_;
  MessageReader replies_;
  std::deque<Pending> pending_;
  HandlerOutput* out_ = nullptr;
  bool first_ = true;
  std::optional<int64_t> db_;  // unknown when first seen mid-conversation
  int resp_ = 2;
  bool in_multi_ = false;
  bool subscribed_ = false;
  bool replies_off_ = false;
  bool skip_next_ = false;
  bool monitor_ = false;
  bool confirmed_ = false;
  uint64_t errors_ = 0;
};

// "*<n>\r\n$" or a prefix of it: NeedMore, or whether it is one.
Detection request_array(std::string_view text) {
  size_t i = 1;
  while (i < text.size() && i < 12 && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 1 && i < text.size()) return Detection::No;
  constexpr std::string_view kRest = "\r\n$";
  for (size_t k = 0; k < kRest.size(); ++k, ++i) {
    if (i >= text.size()) return Detection::NeedMore;
    if (text[i] != kRest[k]) return Detection::No;
  }
  return Detection::Requests;
}

}  // namespace

DetectResult detect(std::span<const uint8_t> bytes) {
  std::string_view text = as_chars(bytes);
  if (text.empty()) return {Detection::NeedMore};
  if (text[0] == '*') {
    Detection d = request_array(text);
    if (d != Detection::Requests) return {d};
    // A reply can be an array of bulk strings too: only a known command name is sure to be a
    // request.
    Framer framer(Role::Request);
    FrameResult r = framer.feed(bytes);
    if (r.status == Status::Invalid) return {Detection::No};
    const RequestSummary& req = framer.request();
    if (!req.command.empty() && known_command(req.command) && !req.name_truncated)
      return {Detection::Requests, Confidence::Strong};
    if (r.status == Status::NeedMore && req.command.empty() && bytes.size() < 256 &&
        r.skippable == 0)
      return {Detection::NeedMore};
    return {Detection::Requests, Confidence::Weak};
  }
  static constexpr std::string_view kReplyTypes = "+-:$_,#!=(%~|>";
  if (kReplyTypes.find(text[0]) != std::string_view::npos) {
    // Reply-looking bytes (or the middle of a request: "$1\r\nk\r\n") cannot say which way
    // requests go. Wait for the other direction's next request, which decides strongly;
    // when these bytes run into a request of their own, they were a request's tail: look
    // again at the next message boundary.
    Framer framer(Role::Reply);
    size_t at = 0;
    while (at < bytes.size()) {
      std::span<const uint8_t> rest = bytes.subspan(at);
      if (rest[0] == '*' && request_array(as_chars(rest)) == Detection::Requests) {
        Framer request(Role::Request);
        request.feed(rest);
        if (known_command(request.request().command)) return {Detection::No};
      }
      FrameResult r = framer.feed(rest);
      if (r.status == Status::Invalid) return {Detection::No};
      if (r.status == Status::NeedMore) break;
      at += r.consumed;
    }
    return {Detection::NeedMore};
  }
  // An inline command: a known command name, then a line. HTTP request lines start with known
  // Redis words too (GET): never take them.
  size_t end = 0;
  while (end < text.size() && end < 32 && text[end] != ' ' && text[end] != '\r' &&
         text[end] != '\n') {
    char c = text[end];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '-' || c == '|' ||
          c == '.' || (c >= '0' && c <= '9')))
      return {Detection::No};
    ++end;
  }
  if (end == 0 || end >= 32) return {Detection::No};
  size_t eol = text.find('\n');
  if (eol == std::string_view::npos) {
    if (text.size() > 1024) return {Detection::No};
    if (end == text.size()) return {Detection::NeedMore};
    if (!known_command(text.substr(0, end))) return {Detection::No};
    return {Detection::NeedMore};
  }
  std::string_view line = text.substr(0, eol);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!known_command(text.substr(0, end))) return {Detection::No};
  if (line.find(" HTTP/") != std::string_view::npos) return {Detection::No};
  if (frame_message(bytes.first(eol + 1), Role::Request).status != Status::Complete)
    return {Detection::No};
  return {Detection::Requests, Confidence::Weak};
}

std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters) {
  return std::make_unique<RedisHandler>(std::move(connection), requests_sent, counters);
}

}  // namespace weft::protocols::redis
