// The protocol contract. A protocol is one folder plus one line in registry.cpp: it detects its
// bytes, parses and matches its messages into exchanges, and says everything later stages need
// about those exchanges (span name, kind, attributes, status, wire context, duration metric,
// rendering for `weft exchanges`). The connection tracker, span builder, metrics, exporters and
// CLI call through this contract; nothing outside a protocol's folder names a protocol.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stream/data_stream.h"
#include "weft/exchange.h"
#include "weft/telemetry.h"

namespace weft::protocols {

// A connection's two directions, indexed by weft::Direction: [Send] holds what this process
// wrote, [Recv] what it read.
using Streams = std::array<stream::DataStream, 2>;

// Counters every protocol feeds; shown by `weft exchanges` and kept per protocol.
struct ProtocolCounters {
  uint64_t messages = 0;
  uint64_t exchanges = 0;
  uint64_t parse_errors = 0;         // bytes that were not a valid message
  uint64_t resyncs = 0;              // times a parser skipped ahead to find a message start
  uint64_t unmatched_requests = 0;   // requests never answered (connection ended first)
  uint64_t unmatched_responses = 0;  // responses without a request
  uint64_t truncated_messages = 0;   // headers longer than the capture limit
  uint64_t skipped_bytes = 0;        // uncaptured or lost bytes skipped by length
  uint64_t not_replies = 0;          // server messages that answer no request (pushes)
  uint64_t weak_rejected = 0;        // weak detections dropped because nothing parsed
};

// What a look at bytes at a message boundary found.
enum class Detection { NeedMore, No, Requests, Responses };
// How sure a match is. A strong one (an HTTP start line) decides at once; a weak one (a type
// byte and a length, which other binary protocols share) is taken only when no protocol could
// still match strongly, and is dropped again when its first messages do not parse, so it
// cannot hold a connection hostage.
enum class Confidence { Weak, Strong };
struct DetectResult {
  Detection detection = Detection::No;
  Confidence confidence = Confidence::Strong;
};

// Where a handler's results go.
class HandlerOutput {
 public:
  virtual ~HandlerOutput() = default;
  virtual void exchange(Exchange&& exchange) = 0;
  // This process has begun receiving a request (its head is parsed) on thread `tid`: the trace
  // stage then knows a server span is open on that thread and waits for it before judging the
  // calls made inside it.
  virtual void request_started(const ConnectionInfo& connection, uint32_t tid,
                               uint64_t start_mono_ns) = 0;
};

// The HTTP request that asked a connection to switch protocols, when the next protocol answers
// it: HTTP/1.1's request for an Upgrade to h2c is HTTP/2's stream 1, answered in HTTP/2
// (RFC 7540, 3.2; RFC 9113, 3.1).
struct UpgradeRequest {
  std::string method;
  std::string target;
  HeaderList headers;  // the fields the first protocol kept (host, trace context...)
  MessageTiming timing;
};

// A protocol leaving a connection to another on the same bytes (an HTTP Upgrade the server
// accepted with 101 Switching Protocols): from `from`, each direction is the protocol `token`
// names. The tracker gives the connection to the registered protocol whose upgrade_token that
// is (Protocol::Parts::take_over), or, when none is, stops reading it.
struct Handoff {
  std::string token;               // lowercase: "h2c", "websocket"
  std::array<uint64_t, 2> from{};  // stream positions by Direction where the new protocol begins
  bool requests_sent = false;      // this process is the client
  std::optional<UpgradeRequest> request;  // set when the next protocol answers the request
};

// One connection's protocol state.
class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;
  // Parses what is available on streams[dir] and emits finished exchanges.
  virtual void on_data(Direction dir, Streams& streams, HandlerOutput& out) = 0;
  // The connection ended (closed, idle or evicted): finish what can be, count the rest.
  virtual void on_close(Streams& streams, HandlerOutput& out) = 0;
  // False once the protocol left the conversation (e.g. after an HTTP Upgrade): the tracker
  // then stops buffering the connection's bytes and tells the kernel to stop copying them.
  virtual bool active() const = 0;
  // Once inactive: where the connection went, when another protocol takes the same bytes on
  // (an Upgrade); null when the bytes just stopped being this protocol (a CONNECT tunnel).
  virtual const Handoff* handoff() const { return nullptr; }
  // True once a whole valid message was parsed: a weak detection is confirmed.
  virtual bool confirmed() const = 0;
  // Parse errors since the handler was created (a weak detection with errors and nothing
  // confirmed is dropped).
  virtual uint64_t errors() const = 0;
  // The stream position where bytes of `dir` that the parser will pass over unread, by their
  // declared length (the rest of a body), end: the kernel need not copy them. 0: none known.
  virtual uint64_t skipped_until(Direction /*dir*/, const Streams& /*streams*/) const { return 0; }
};

// What the user chose to export that protocols would otherwise redact.
struct DescribeOptions {
  bool query_values = false;      // url.query values (else each value reads "REDACTED")
  bool statement_values = false;  // literal arguments in db.query.text (else "?")
};

// What a span says about its exchange.
struct SpanDescription {
  std::string name;
  SpanKind kind = SpanKind::Internal;
  StatusCode status = StatusCode::Unset;
  std::vector<Attribute> attributes;
  // Trace-context fields the request carried (traceparent, tracestate, b3, x-b3-*,
  // uber-trace-id; lowercase names), inside the exchange; null when the protocol has none.
  const HeaderList* context_carrier = nullptr;
  // One short word for consoles and summaries: "200", "OK", "ERR".
  std::string outcome;
};

// What the trace stage needs of every exchange before sampling, cheaply (no attribute is
// built): the span's kind and status and the trace context the request carried.
struct SpanEssentials {
  SpanKind kind = SpanKind::Internal;
  StatusCode status = StatusCode::Unset;
  const HeaderList* context_carrier = nullptr;  // as in SpanDescription
};

// A protocol: the parts its folder implements, called by every later stage through the members
// below. Each folder builds one (a function-local static) from its own functions.
class Protocol {
 public:
  struct Parts {
    std::string_view name;  // "http1": the registry key, shown in output
    // Looks at bytes that begin at a message boundary of one direction (the first captured
    // bytes, or a later syscall boundary when earlier bytes matched nothing).
    DetectResult (*detect)(std::span<const uint8_t> bytes);
    // `requests_sent`: this process writes the requests (it is the client).
    std::unique_ptr<ProtocolHandler> (*create)(std::shared_ptr<const ConnectionInfo> connection,
                                               bool requests_sent, ProtocolCounters& counters);
    // Span name, kind, attributes (per the protocol's semantic conventions), status, context.
    void (*describe)(const Exchange& exchange, const DescribeOptions& options,
                     SpanDescription& out);
    // The same kind, status and context as describe() gives, without the rest: describe() is
    // then called only for spans that are exported. Optional (null: describe() every span).
    void (*essentials)(const Exchange& exchange, SpanEssentials& out) = nullptr;
    // The values of the duration family's labels for a span of `kind` (in its label_keys order),
    // the very values describe() gives those attributes, without describing the rest: metrics
    // count every request, while only exported spans are described. Optional (null: every span
    // is described before metrics read its attributes). The conformance suite checks both agree.
    void (*metric_labels)(const Exchange& exchange, SpanKind kind,
                          std::vector<LabelValue>& out) = nullptr;
    // The duration families server and client spans record into (null: none).
    const MetricFamily& (*server_family)();
    const MetricFamily& (*client_family)();
    // One line for `weft exchanges`: what was asked and answered ("GET /a -> 200").
    std::string (*render_text)(const Exchange& exchange);
    // The protocol's fields for `weft exchanges --json`, added to `out` (an object).
    void (*render_json)(const Exchange& exchange, nlohmann::json& out);
    // HTTP Upgrade: the token that switches a connection to this protocol ("h2c"), whether this
    // protocol answers the request that asked for it (then the first protocol leaves that
    // request to it instead of making an exchange of it), and the handler of such a connection,
    // which begins at the handoff's positions. Optional (an empty token: no upgrade leads here;
    // a token requires take_over).
    std::string_view upgrade_token = {};
    bool answers_upgrade_request = false;
    std::unique_ptr<ProtocolHandler> (*take_over)(std::shared_ptr<const ConnectionInfo> connection,
                                                  ProtocolCounters& counters,
                                                  Handoff&& handoff) = nullptr;
  };

  explicit Protocol(Parts parts) : parts_(parts) {}

  std::string_view name() const { return parts_.name; }
  DetectResult detect(std::span<const uint8_t> bytes) const { return parts_.detect(bytes); }
  std::unique_ptr<ProtocolHandler> create(std::shared_ptr<const ConnectionInfo> connection,
                                          bool requests_sent, ProtocolCounters& counters) const {
    return parts_.create(std::move(connection), requests_sent, counters);
  }
  void describe(const Exchange& exchange, const DescribeOptions& options,
                SpanDescription& out) const {
    parts_.describe(exchange, options, out);
  }
  // False when the protocol has no essentials part.
  bool essentials(const Exchange& exchange, SpanEssentials& out) const {
    if (!parts_.essentials) return false;
    parts_.essentials(exchange, out);
    return true;
  }
  bool has_metric_labels() const { return parts_.metric_labels != nullptr; }
  // False when the protocol has no metric_labels part.
  bool metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out) const {
    if (!parts_.metric_labels) return false;
    parts_.metric_labels(exchange, kind, out);
    return true;
  }
  // Every duration family this protocol records, and the one spans of `kind` record into
  // (null: none).
  std::vector<const MetricFamily*> metric_families() const;
  const MetricFamily* metric_family(SpanKind kind) const;
  std::string render_text(const Exchange& exchange) const { return parts_.render_text(exchange); }
  void render_json(const Exchange& exchange, nlohmann::json& out) const {
    parts_.render_json(exchange, out);
  }
  bool answers_upgrade_request() const { return parts_.answers_upgrade_request; }
  std::unique_ptr<ProtocolHandler> take_over(std::shared_ptr<const ConnectionInfo> connection,
                                             ProtocolCounters& counters, Handoff&& handoff) const {
    return parts_.take_over(std::move(connection), counters, std::move(handoff));
  }
  std::string_view upgrade_token() const { return parts_.upgrade_token; }

 private:
  Parts parts_;
};

// Every protocol weft knows, in detection order.
const std::vector<const Protocol*>& registry();
// The registered protocol of that name, or null.
const Protocol* find_protocol(std::string_view name);
// Its index in registry(): counters are kept per protocol in registry order.
size_t registry_index(const Protocol* protocol);
// The registered protocol an HTTP Upgrade to `token` (lowercase) switches to, or null.
const Protocol* protocol_for_upgrade(std::string_view token);

}  // namespace weft::protocols
