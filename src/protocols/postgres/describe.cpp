// PostgreSQL exchanges as later stages see them: spans per the OpenTelemetry database semantic
// conventions (client spans where this process sent the statement, server spans where the
// postgres backend received it), labels for the shared database duration families
// (db_semantics.h), and `weft exchanges` lines.
#include <nlohmann/json.hpp>

#include "protocols/postgres/postgres.h"
#include "protocols/span_attributes.h"
#include "protocols/sql/sql_text.h"

namespace weft::protocols::postgres {
namespace {

// Where the server listens: this process's end when it serves, the peer's when it calls.
const Endpoint& server_endpoint(const Exchange& ex) {
  return ex.side != weft::Role::Client ? ex.connection->local : ex.connection->remote;
}

SpanKind kind_of(const Exchange& ex) {
  return ex.side != weft::Role::Client ? SpanKind::Server : SpanKind::Client;
}

// "{db.operation.name} {target}", the target being the collection, else the database; without
// an operation the target alone; without either, "postgresql".
std::string span_name(const PostgresExchange& pg) {
  std::string target = !pg.collection.empty() ? pg.collection : pg.database.value_or("");
  if (pg.operation.empty()) return target.empty() ? std::string("postgresql") : target;
  return target.empty() ? pg.operation : pg.operation + " " + target;
}

std::string query_text(const PostgresExchange& pg, bool values) {
  return values ? pg.query : sql::sanitise(pg.query, sql::Dialect::PostgreSQL);
}

}  // namespace

void describe(const Exchange& ex, const DescribeOptions& options, SpanDescription& out) {
  const PostgresExchange& pg = postgres_of(ex);
  out.kind = kind_of(ex);
  out.name = span_name(pg);
  auto& a = out.attributes;
  add_attribute(a, "db.system.name", std::string("postgresql"));
  if (pg.database) add_attribute(a, "db.namespace", *pg.database);
  if (!pg.operation.empty()) add_attribute(a, "db.operation.name", pg.operation);
  if (!pg.collection.empty()) add_attribute(a, "db.collection.name", pg.collection);
  if (!pg.query.empty())
    add_attribute(a, "db.query.text", query_text(pg, options.statement_values));
  if (pg.rows > 0 || !pg.command_tag.empty())
    add_attribute(a, "db.response.returned_rows", pg.rows);
  const Endpoint& server_end = server_endpoint(ex);
  add_attribute(a, "server.address", server_end.address());
  add_attribute(a, "server.port", static_cast<int64_t>(server_end.port));
  add_connection_attributes(a, *ex.connection);
  if (pg.extended && !pg.statement_name.empty())
    add_attribute(a, "weft.postgresql.statement_name", pg.statement_name);
  if (pg.statement_unknown) add_attribute(a, "weft.postgresql.statement_unknown", true);
  if (!pg.command_tag.empty()) add_attribute(a, "weft.postgresql.command_tag", pg.command_tag);
  if (pg.copy) add_attribute(a, "weft.postgresql.copy_bytes", static_cast<int64_t>(pg.copy_bytes));
  if (ex.request.truncated || ex.response.truncated)
    add_attribute(a, "weft.postgresql.truncated", true);
  if (pg.is_error()) {
    add_attribute(a, "db.response.status_code", pg.sqlstate);
    add_attribute(a, "error.type", pg.sqlstate);
    out.status = StatusCode::Error;
    out.outcome = pg.sqlstate;
  } else {
    out.outcome = "OK";
  }
}

// Both families: db.system.name, db.operation.name, db.namespace, db.collection.name,
// db.response.status_code, server.address, server.port.
void metric_labels(const Exchange& ex, SpanKind, std::vector<LabelValue>& out) {
  const PostgresExchange& pg = postgres_of(ex);
  const Endpoint& server_end = server_endpoint(ex);
  out.emplace_back(std::string("postgresql"));
  out.push_back(pg.operation.empty() ? LabelValue() : LabelValue(pg.operation));
  out.push_back(pg.database ? LabelValue(*pg.database) : LabelValue());
  out.push_back(pg.collection.empty() ? LabelValue() : LabelValue(pg.collection));
  out.push_back(pg.is_error() ? LabelValue(pg.sqlstate) : LabelValue());
  out.emplace_back(server_end.address());
  out.emplace_back(static_cast<int64_t>(server_end.port));
}

void essentials(const Exchange& ex, SpanEssentials& out) {
  out.kind = kind_of(ex);
  if (postgres_of(ex).is_error()) out.status = StatusCode::Error;
}

std::string render_text(const Exchange& ex) {
  const PostgresExchange& pg = postgres_of(ex);
  std::string query = pg.statement_unknown ? "(unknown statement " + pg.statement_name + ")"
                      : pg.query.empty()   ? std::string("(empty)")
                                           : query_text(pg, false).substr(0, 200);
  // Not the command tag: it comes last, and a cut capture loses it.
  std::string line = query + " -> ";
  if (pg.is_error())
    line += pg.severity + " " + pg.sqlstate;
  else
    line += pg.empty_query ? "(empty query)" : pg.suspended ? "(suspended)" : "OK";
  if (pg.rows > 0) line += " (" + std::to_string(pg.rows) + " rows)";
  if (pg.copy) line += " [copy " + std::to_string(pg.copy_bytes) + " bytes]";
  return line;
}

void render_json(const Exchange& ex, nlohmann::json& out) {
  const PostgresExchange& pg = postgres_of(ex);
  out["query_text"] = query_text(pg, false);
  out["operation"] = pg.operation;
  out["collection"] = pg.collection;
  out["extended"] = pg.extended;
  out["statement_name"] = pg.statement_name;
  out["statement_unknown"] = pg.statement_unknown;
  out["database"] = pg.database ? nlohmann::json(*pg.database) : nlohmann::json(nullptr);
  out["command_tag"] = pg.command_tag;
  out["rows"] = pg.rows;
  out["copy"] = pg.copy;
  out["copy_bytes"] = pg.copy_bytes;
  out["sqlstate"] = pg.is_error() ? nlohmann::json(pg.sqlstate) : nlohmann::json(nullptr);
  out["severity"] = pg.severity;
}

}  // namespace weft::protocols::postgres
