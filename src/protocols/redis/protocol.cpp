// The Redis protocol object: the contract's parts, each implemented in this folder.
#include "protocols/db_semantics.h"
#include "protocols/redis/redis.h"

namespace weft::protocols::redis {

const Protocol& protocol() {
  static const Protocol instance({
      .name = "redis",
      .detect = redis::detect,
      .create = create_handler,
      .describe = redis::describe,
      .essentials = redis::essentials,
      .metric_labels = redis::metric_labels,
      .server_family = db::server_duration_family,
      .client_family = db::client_duration_family,
      .render_text = redis::render_text,
      .render_json = redis::render_json,
  });
  return instance;
}

const RedisExchange& redis_of(const Exchange& exchange) {
  return static_cast<const RedisExchange&>(*exchange.details);
}

}  // namespace weft::protocols::redis
