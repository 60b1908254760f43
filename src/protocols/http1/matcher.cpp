// HTTP/1 messages -> exchanges. Requests wait in arrival order; each final response answers
// the oldest waiting request, which is what keep-alive and pipelining both need.
#include <algorithm>
#include <deque>
#include <optional>

#include "protocols/http1/http1.h"
#include "protocols/http1/parser.h"
#include "protocols/http1/route.h"
#include "stream/message_framing.h"

namespace weft::protocols::http1 {
namespace {

// Requests waiting for responses beyond this are answered by nobody we will see.
constexpr size_t kMaxPendingRequests = 256;

class Http1Handler : public ProtocolHandler {
 public:
  Http1Handler(std::shared_ptr<const ConnectionInfo> connection, bool requests_sent,
               ProtocolCounters& counters)
      : connection_(std::move(connection)),
        request_dir_(requests_sent ? Direction::Send : Direction::Recv),
        counters_(counters),
        requests_(MessageKind::Request, counters),
        responses_(MessageKind::Response, counters),
        request_callbacks_(make_request_callbacks()),
        response_callbacks_(make_response_callbacks()) {}

  void on_data(Direction dir, Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    streams_ = &streams;
    uint64_t errors_before = counters_.parse_errors;
    stream::DataStream& requests = streams[index(request_dir_)];
    if (dir != request_dir_) {
      // Requests stuck behind a hole would otherwise miss their responses and shift every
      // later pairing.
      stream::peer_moved_on(requests);
      requests_.parse(requests, request_callbacks_);
    }
    if (dir == request_dir_)
      requests_.parse(requests, request_callbacks_);
    else
      responses_.parse(streams[index(dir)], response_callbacks_);
    errors_ += counters_.parse_errors - errors_before;
    // Both parsers stop at an upgrade: what they have not read is the next protocol's.
    if (handoff_) handoff_->from = {streams[0].head(), streams[1].head()};
    streams_ = nullptr;
    out_ = nullptr;
  }

  void on_close(Streams& streams, HandlerOutput& out) override {
    out_ = &out;
    streams_ = &streams;
    requests_.finish(streams[index(request_dir_)], request_callbacks_);
    Direction response_dir = request_dir_ == Direction::Send ? Direction::Recv : Direction::Send;
    responses_.finish(streams[index(response_dir)], response_callbacks_);
    counters_.unmatched_requests += pending_.size();
    pending_.clear();
    streams_ = nullptr;
    out_ = nullptr;
  }

  bool active() const override { return !requests_.stopped() || !responses_.stopped(); }
  const Handoff* handoff() const override { return handoff_ ? &*handoff_ : nullptr; }
  uint64_t skipped_until(Direction dir, const Streams& streams) const override {
    const MessageParser& parser = dir == request_dir_ ? requests_ : responses_;
    return parser.skipped_until(streams[index(dir)]);
  }
  bool confirmed() const override { return confirmed_; }
  uint64_t errors() const override { return errors_; }

 private:
  struct Pending {
    uint64_t number;  // the request's place on the connection, to match its completion
    Message request;  // taken at its head; timing final once complete
    bool complete;
  };

  static int index(Direction d) { return static_cast<int>(d); }

  ParserCallbacks make_request_callbacks() {
    return {
        [this](Message& head) {
          if (pending_.size() >= kMaxPendingRequests) {
            pending_.pop_front();
            ++counters_.unmatched_requests;
          }
          if (request_dir_ == Direction::Recv && out_)
            out_->request_started(*connection_, head.timing.start_tid, head.timing.start_ns);
          // Taken, not copied: the parser keeps framing and timing, handed back at the end.
          pending_.push_back({heads_++, std::move(head), false});
        },
        [this](Message&& done) {
          // Requests complete in the order they started; one answered early is gone already.
          uint64_t number = completions_++;
          confirmed_ = true;
          for (auto& p : pending_) {
            if (p.number == number) {
              // What the parser learnt after the head: where and when the message ended.
              p.request.timing = done.timing;
              p.request.end_inferred = done.end_inferred;
              p.complete = true;
              break;
            }
          }
        },
        nullptr,
    };
  }

  ParserCallbacks make_response_callbacks() {
    return {
        nullptr,
        [this](Message&& response) { on_response(std::move(response)); },
        [this]() -> std::string_view {
          return pending_.empty() ? std::string_view() : pending_.front().request.method;
        },
    };
  }

  void on_response(Message&& response) {
    confirmed_ = true;
    if (response.status >= 100 && response.status < 200 && response.status != 101)
      return;  // informational (100 Continue): the final response follows
    if (pending_.empty() && streams_) {
      // The request may be waiting for the end of a header section whose bytes were lost.
      requests_.end_partial_head((*streams_)[index(request_dir_)], request_callbacks_);
    }
    if (pending_.empty()) {
      ++counters_.unmatched_responses;
      return;
    }
    Pending answered = std::move(pending_.front());
    pending_.pop_front();
    if (!answered.complete && streams_) {
      // Answered before it was all read (an early 413, headers beyond the capture limit):
      // it ends, as far as anyone can tell, with what has been read of it so far.
      requests_.progress(answered.request.timing, (*streams_)[index(request_dir_)]);
    }
    bool tunnel = response.status == 101 || (answered.request.method == "CONNECT" &&
                                             response.status >= 200 && response.status < 300);
    if (!(response.status == 101 && upgrade(answered.request, response)))
      emit(std::move(answered.request), std::move(response));
    if (tunnel) {  // the connection now carries another protocol
      requests_.stop();
      responses_.stop();
    }
  }

  // 101 Switching Protocols: the rest of the connection is the protocol the Upgrade token names.
  // When that protocol answers the request itself (h2c: stream 1), the request goes with the
  // connection and makes no exchange here (true).
  bool upgrade(Message& request, const Message& response) {
    const std::string* token = response.header("upgrade");
    handoff_.emplace();
    handoff_->token = token ? *token : "";
    std::transform(handoff_->token.begin(), handoff_->token.end(), handoff_->token.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    handoff_->requests_sent = request_dir_ == Direction::Send;
    const Protocol* next = protocol_for_upgrade(handoff_->token);
    if (!next || !next->answers_upgrade_request()) return false;
    handoff_->request = UpgradeRequest{std::move(request.method), std::move(request.target),
                                       std::move(request.headers), request.timing};
    return true;
  }

  void emit(Message&& request, Message&& response) {
    auto http = std::make_shared<HttpExchange>();
    http->method = std::move(request.method);
    http->target = std::move(request.target);
    http->route = route_of_target(http->target);
    http->version = std::move(request.version);
    http->status = response.status;
    http->request_headers = std::move(request.headers);
    http->response_headers = std::move(response.headers);
    http->response_end_inferred = response.end_inferred;
    Exchange ex;
    ex.protocol = &protocol();
    ex.side = request_dir_ == Direction::Send ? Role::Client : Role::Server;
    ex.connection = connection_;
    ex.request = request.timing;
    ex.response = response.timing;
    ex.details = std::move(http);
    ++counters_.exchanges;
    if (out_) out_->exchange(std::move(ex));
  }

  std::shared_ptr<const ConnectionInfo> connection_;
  Direction request_dir_;
  ProtocolCounters& counters_;
  MessageParser requests_;
  MessageParser responses_;
  // Built once: they capture `this` and would otherwise be rebuilt for every event.
  ParserCallbacks request_callbacks_;
  ParserCallbacks response_callbacks_;
  std::deque<Pending> pending_;
  uint64_t heads_ = 0;
  uint64_t completions_ = 0;
  Streams* streams_ = nullptr;  // set while parsing
  HandlerOutput* out_ = nullptr;
  std::optional<Handoff> handoff_;  // after a 101
  bool confirmed_ = false;          // a whole message parsed on this connection
  uint64_t errors_ = 0;             // parse errors on this connection
};

}  // namespace

DetectResult detect(std::span<const uint8_t> first_bytes) {
  std::string_view text(reinterpret_cast<const char*>(first_bytes.data()), first_bytes.size());
  size_t eol = text.find('\n');
  if (eol == std::string_view::npos) {
    // Wait for a whole start line, but not forever.
    if (text.size() > 8192) return {Detection::No};
    constexpr std::string_view kResponse = "HTTP/1.";
    size_t n = std::min(text.size(), kResponse.size());
    if (text.substr(0, n) == kResponse.substr(0, n)) return {Detection::NeedMore};
    size_t sp = text.find(' ');
    std::string_view method = text.substr(0, sp);
    if (method.size() > 20) return {Detection::No};
    for (char c : method)
      if (!(c >= 'A' && c <= 'Z') && c != '-' && c != '_') return {Detection::No};
    return {Detection::NeedMore};
  }
  std::string_view line = text.substr(0, eol);
  if (valid_start_line(line, MessageKind::Request, true)) return {Detection::Requests};
  if (valid_start_line(line, MessageKind::Response, false)) return {Detection::Responses};
  return {Detection::No};
}

std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters) {
  return std::make_unique<Http1Handler>(std::move(connection), requests_sent, counters);
}

}  // namespace weft::protocols::http1
