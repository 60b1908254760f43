// The HTTP/1 protocol object: the contract's entry points, each implemented in this folder.
#include "protocols/http1/http1.h"

namespace weft::protocols::http1 {
namespace {

class Http1Protocol : public Protocol {
 public:
  std::string_view name() const override { return "http1"; }
  DetectResult detect(std::span<const uint8_t> bytes) const override {
    return http1::detect(bytes);
  }
  std::unique_ptr<ProtocolHandler> create(std::shared_ptr<const ConnectionInfo> connection,
                                          bool requests_sent,
                                          ProtocolCounters& counters) const override {
    return create_handler(std::move(connection), requests_sent, counters);
  }
  void describe(const Exchange& exchange, const DescribeOptions& options,
                SpanDescription& out) const override {
    http1::describe(exchange, options, out);
  }
  std::vector<const MetricFamily*> metric_families() const override {
    return {&server_duration_family(), &client_duration_family()};
  }
  const MetricFamily* metric_family(SpanKind kind) const override {
    if (kind == SpanKind::Server) return &server_duration_family();
    if (kind == SpanKind::Client) return &client_duration_family();
    return nullptr;
  }
  std::string render_text(const Exchange& exchange) const override {
    return http1::render_text(exchange);
  }
  void render_json(const Exchange& exchange, nlohmann::json& out) const override {
    http1::render_json(exchange, out);
  }
};

}  // namespace

const Protocol& protocol() {
  static const Http1Protocol instance;
  return instance;
}

const HttpExchange& http_of(const Exchange& exchange) {
  return static_cast<const HttpExchange&>(*exchange.details);
}

HttpExchange& http_of(Exchange& exchange) {
  return static_cast<HttpExchange&>(*exchange.details);
}

}  // namespace weft::protocols::http1
