// The PostgreSQL protocol object: the contract's parts, each implemented in this folder.
#include "protocols/db_semantics.h"
#include "protocols/postgres/postgres.h"

namespace weft::protocols::postgres {

const Protocol& protocol() {
  static const Protocol instance({
      .name = "postgresql",
      .detect = postgres::detect,
      .create = create_handler,
      .describe = postgres::describe,
      .essentials = postgres::essentials,
      .metric_labels = postgres::metric_labels,
      .server_family = db::server_duration_family,
      .client_family = db::client_duration_family,
      .render_text = postgres::render_text,
      .render_json = postgres::render_json,
  });
  return instance;
}

const PostgresExchange& postgres_of(const Exchange& exchange) {
  return static_cast<const PostgresExchange&>(*exchange.details);
}

}  // namespace weft::protocols::postgres
