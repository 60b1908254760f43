// The HTTP/1 protocol object: the contract's parts, each implemented in this folder.
#include "protocols/http1/http1.h"
#include "protocols/http_semantics.h"

namespace weft::protocols::http1 {

const Protocol& protocol() {
  static const Protocol instance({
      .name = "http1",
      .detect = http1::detect,
      .create = create_handler,
      .describe = http1::describe,
      .essentials = http1::essentials,
      .metric_labels = http1::metric_labels,
      .server_family = http::server_duration_family,
      .client_family = http::client_duration_family,
      .render_text = http1::render_text,
      .render_json = http1::render_json,
  });
  return instance;
}

const HttpExchange& http_of(const Exchange& exchange) {
  return static_cast<const HttpExchange&>(*exchange.details);
}

HttpExchange& http_of(Exchange& exchange) {
  return static_cast<HttpExchange&>(*exchange.details);
}

}  // namespace weft::protocols::http1
