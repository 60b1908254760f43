// HTTP/1.0 and HTTP/1.1: the protocol object the registry lists, and the HTTP part of an
// exchange, which only this folder (and its tests) reads.
#pragma once

#include <string>

#include "protocols/protocol.h"

namespace weft::protocols::http1 {

struct HttpExchange : ExchangeDetails {
  std::string method;
  std::string target;
  std::string version;  // "1.0" or "1.1"
  // The route template of an origin-form target ("/users/{id}"), "" for any other form: made
  // once here, read by the span (http.route, url.template) and the duration metrics alike.
  std::string route;
  int status = 0;
  HeaderList request_headers;  // only those later stages use (see kKeptHeaders, parser.cpp)
  HeaderList response_headers;
  // The response's end was not framed by a length (read until close, or framing lost after
  // uncaptured chunked bytes): its end is where the connection or the next response began.
  bool response_end_inferred = false;
};

const Protocol& protocol();

// The HTTP part of an exchange this protocol produced.
const HttpExchange& http_of(const Exchange& exchange);
HttpExchange& http_of(Exchange& exchange);

// Parts of the contract, each in its own file.
DetectResult detect(std::span<const uint8_t> bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters);
void describe(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
void essentials(const Exchange& exchange, SpanEssentials& out);
void metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out);
std::string render_text(const Exchange& exchange);
void render_json(const Exchange& exchange, nlohmann::json& out);

// "a=1&b=2" -> "a=REDACTED&b=REDACTED" (keys kept: they say what was asked, not who asked).
std::string redact_query(std::string_view query);

}  // namespace weft::protocols::http1
