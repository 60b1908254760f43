// The MySQL protocol object: the contract's parts, each implemented in this folder.
#include "protocols/db_semantics.h"
#include "protocols/mysql/mysql.h"

namespace weft::protocols::mysql {

const Protocol& protocol() {
  static const Protocol instance({
      .name = "mysql",
      .detect = mysql::detect,
      .create = create_handler,
      .describe = mysql::describe,
      .essentials = mysql::essentials,
      .metric_labels = mysql::metric_labels,
      .server_family = db::server_duration_family,
      .client_family = db::client_duration_family,
      .render_text = mysql::render_text,
      .render_json = mysql::render_json,
  });
  return instance;
}

const MysqlExchange& mysql_of(const Exchange& exchange) {
  return static_cast<const MysqlExchange&>(*exchange.details);
}

}  // namespace weft::protocols::mysql
