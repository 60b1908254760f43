// The Redis protocol object: the contract's entry points, each implemented in this folder.
#include "protocols/redis/redis.h"

namespace weft::protocols::redis {
namespace {

class RedisProtocol : public Protocol {
 public:
  std::string_view name() const override { return "redis"; }
  DetectResult detect(std::span<const uint8_t> bytes) const override {
    return redis::detect(bytes);
  }
  std::unique_ptr<ProtocolHandler> create(std::shared_ptr<const ConnectionInfo> connection,
                                          bool requests_sent,
                                          ProtocolCounters& counters) const override {
    return create_handler(std::move(connection), requests_sent, counters);
  }
  void describe(const Exchange& exchange, const DescribeOptions& options,
                SpanDescription& out) const override {
    redis::describe(exchange, options, out);
  }
  std::vector<const MetricFamily*> metric_families() const override {
    return {&client_duration_family(), &server_duration_family()};
  }
  const MetricFamily* metric_family(SpanKind kind) const override {
    if (kind == SpanKind::Client) return &client_duration_family();
    if (kind == SpanKind::Server) return &server_duration_family();
    return nullptr;
  }
  std::string render_text(const Exchange& exchange) const override {
    return redis::render_text(exchange);
  }
  void render_json(const Exchange& exchange, nlohmann::json& out) const override {
    redis::render_json(exchange, out);
  }
};

}  // namespace

const Protocol& protocol() {
  static const RedisProtocol instance;
  return instance;
}

const RedisExchange& redis_of(const Exchange& exchange) {
  return static_cast<const RedisExchange&>(*exchange.details);
}

}  // namespace weft::protocols::redis
