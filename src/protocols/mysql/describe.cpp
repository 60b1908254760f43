// MySQL exchanges as later stages see them: spans per the OpenTelemetry database semantic
// conventions (client spans where this process sent the command, server spans where mysqld or
// mariadbd received it), labels for the shared database duration families (db_semantics.h), and
// `weft exchanges` lines.
//
// db.system.name: "mariadb" when the server greeting's version says MariaDB ("5.5.5-10.11.6-
// MariaDB-0+deb12u1"), "mysql" when a greeting says otherwise. Without a greeting (a connection
// opened before weft): "mariadb" where this process is the server and its name starts with
// "mariadb" (mariadbd), else "mysql".
#include <nlohmann/json.hpp>

#include "protocols/mysql/mysql.h"
#include "protocols/mysql/wire.h"
#include "protocols/span_attributes.h"
#include "protocols/sql/sql_text.h"

namespace weft::protocols::mysql {
namespace {

const Endpoint& server_endpoint(const Exchange& ex) {
  return ex.side != weft::Role::Client ? ex.connection->local : ex.connection->remote;
}

SpanKind kind_of(const Exchange& ex) {
  return ex.side != weft::Role::Client ? SpanKind::Server : SpanKind::Client;
}

std::string system_name(const MysqlExchange& my) {
  return my.mariadb ? "mariadb" : "mysql";
}

// "{db.operation.name} {target}", the target being the collection, else the database; without
// an operation the target alone; without either, the system's name.
std::string span_name(const MysqlExchange& my) {
  std::string target = !my.collection.empty() ? my.collection : my.database.value_or("");
  if (my.operation.empty()) return target.empty() ? system_name(my) : target;
  return target.empty() ? my.operation : my.operation + " " + target;
}

std::string query_text(const MysqlExchange& my, bool values) {
  return values ? my.query : sql::sanitise(my.query, sql::Dialect::MySQL);
}

std::string command_of(const MysqlExchange& my) {
  const char* name = command_name(my.command);
  return name ? name : "COM_" + std::to_string(my.command);
}

}  // namespace

void describe(const Exchange& ex, const DescribeOptions& options, SpanDescription& out) {
  const MysqlExchange& my = mysql_of(ex);
  out.kind = kind_of(ex);
  out.name = span_name(my);
  auto& a = out.attributes;
  add_attribute(a, "db.system.name", system_name(my));
  if (my.database && !my.database->empty()) add_attribute(a, "db.namespace", *my.database);
  if (!my.operation.empty()) add_attribute(a, "db.operation.name", my.operation);
  if (!my.collection.empty()) add_attribute(a, "db.collection.name", my.collection);
  if (!my.query.empty())
    add_attribute(a, "db.query.text", query_text(my, options.statement_values));
  if (my.columns > 0 && my.command != kStmtPrepare)
    add_attribute(a, "db.response.returned_rows", my.rows);
  const Endpoint& server_end = server_endpoint(ex);
  add_attribute(a, "server.address", server_end.address());
  add_attribute(a, "server.port", static_cast<int64_t>(server_end.port));
  add_connection_attributes(a, *ex.connection);
  add_attribute(a, "weft.mysql.command", command_of(my));
  if (my.prepared || my.command == kStmtPrepare)
    add_attribute(a, "weft.mysql.statement_id", static_cast<int64_t>(my.statement_id));
  if (my.statement_unknown) add_attribute(a, "weft.mysql.statement_unknown", true);
  if (my.affected_rows > 0)
    add_attribute(a, "weft.mysql.affected_rows", static_cast<int64_t>(my.affected_rows));
  if (my.results > 1) add_attribute(a, "weft.mysql.results", static_cast<int64_t>(my.results));
  if (my.local_infile)
    add_attribute(a, "weft.mysql.local_infile_bytes", static_cast<int64_t>(my.infile_bytes));
  if (ex.request.truncated || ex.response.truncated) add_attribute(a, "weft.mysql.truncated", true);
  if (my.is_error()) {
    add_attribute(a, "db.response.status_code", my.status_code());
    add_attribute(a, "error.type", my.status_code());
    if (!my.sqlstate.empty()) add_attribute(a, "weft.mysql.sqlstate", my.sqlstate);
    out.status = StatusCode::Error;
    out.outcome = my.status_code();
  } else {
    out.outcome = "OK";
  }
}

// Both families: db.system.name, db.operation.name, db.namespace, db.collection.name,
// db.response.status_code, server.address, server.port.
void metric_labels(const Exchange& ex, SpanKind, std::vector<LabelValue>& out) {
  const MysqlExchange& my = mysql_of(ex);
  const Endpoint& server_end = server_endpoint(ex);
  out.emplace_back(system_name(my));
  out.push_back(my.operation.empty() ? LabelValue() : LabelValue(my.operation));
  out.push_back(my.database && !my.database->empty() ? LabelValue(*my.database) : LabelValue());
  out.push_back(my.collection.empty() ? LabelValue() : LabelValue(my.collection));
  out.push_back(my.is_error() ? LabelValue(my.status_code()) : LabelValue());
  out.emplace_back(server_end.address());
  out.emplace_back(static_cast<int64_t>(server_end.port));
}

void essentials(const Exchange& ex, SpanEssentials& out) {
  out.kind = kind_of(ex);
  if (mysql_of(ex).is_error()) out.status = StatusCode::Error;
}

std::string render_text(const Exchange& ex) {
  const MysqlExchange& my = mysql_of(ex);
  std::string what;
  if (my.statement_unknown)
    what = command_of(my) + " (unknown statement " + std::to_string(my.statement_id) + ")";
  else if (!my.query.empty())
    what = (my.command == kQuery ? std::string() : command_of(my) + " ") +
           query_text(my, false).substr(0, 200);
  else if (my.command == kInitDb && my.database)
    what = command_of(my) + " " + *my.database;  // the schema selected
  else
    what = command_of(my);
  std::string line = what + " -> ";
  if (my.is_error())
    line += "ERR " + my.status_code() + (my.sqlstate.empty() ? "" : " (" + my.sqlstate + ")");
  else
    line += my.ok || my.results > 0 || my.columns > 0 ? "OK" : "?";
  if (my.columns > 0 && my.command != kStmtPrepare)
    line += " (" + std::to_string(my.rows) + " rows)";
  if (my.affected_rows > 0) line += " (" + std::to_string(my.affected_rows) + " affected)";
  if (my.results > 1) line += " [" + std::to_string(my.results) + " results]";
  if (my.local_infile) line += " [local infile " + std::to_string(my.infile_bytes) + " bytes]";
  return line;
}

void render_json(const Exchange& ex, nlohmann::json& out) {
  const MysqlExchange& my = mysql_of(ex);
  out["command"] = command_of(my);
  out["system"] = system_name(my);
  out["query_text"] = query_text(my, false);
  out["operation"] = my.operation;
  out["collection"] = my.collection;
  out["prepared"] = my.prepared;
  out["statement_id"] = my.statement_id;
  out["statement_unknown"] = my.statement_unknown;
  out["database"] = my.database ? nlohmann::json(*my.database) : nlohmann::json(nullptr);
  out["results"] = my.results;
  out["columns"] = my.columns;
  out["rows"] = my.rows;
  out["affected_rows"] = my.affected_rows;
  out["local_infile"] = my.local_infile;
  out["local_infile_bytes"] = my.infile_bytes;
  out["error_code"] = my.is_error() ? nlohmann::json(my.error_code) : nlohmann::json(nullptr);
  out["sqlstate"] = my.sqlstate;
}

}  // namespace weft::protocols::mysql
