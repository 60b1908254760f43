// The HTTP/2 and gRPC protocol objects: the contract's parts, each implemented in this folder.
#include "protocols/http2/http2.h"
#include "protocols/http_semantics.h"

namespace weft::protocols::http2 {

const Protocol& protocol() {
  static const Protocol instance({
      .name = "http2",
      .detect = http2::detect,
      .create = create_handler,
      .describe = http2::describe,
      .essentials = http2::essentials,
      .metric_labels = http2::metric_labels,
      .server_family = http::server_duration_family,
      .client_family = http::client_duration_family,
      .render_text = http2::render_text,
      .render_json = http2::render_json,
      .upgrade_token = "h2c",
      .answers_upgrade_request = true,
      .take_over = take_over_upgrade,
  });
  return instance;
}

const Protocol& grpc_protocol() {
  static const Protocol instance({
      .name = "grpc",
      .detect = http2::detect,
      .create = create_handler,
      .describe = describe_grpc,
      .essentials = http2::essentials,
      .metric_labels = http2::metric_labels,
      .server_family = grpc_server_duration_family,
      .client_family = grpc_client_duration_family,
      .render_text = http2::render_text,
      .render_json = http2::render_json,
  });
  return instance;
}

const Http2Exchange& http2_of(const Exchange& exchange) {
  return static_cast<const Http2Exchange&>(*exchange.details);
}

}  // namespace weft::protocols::http2
