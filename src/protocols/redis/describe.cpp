// Redis exchanges as later stages see them: spans per the OpenTelemetry database semantic
// conventions for Redis (client spans where this process sent the command, server spans where
// it received it), labels for the shared database duration families (db_semantics.h), and
// `weft exchanges` lines.
#include <nlohmann/json.hpp>

#include "protocols/redis/commands.h"
#include "protocols/redis/redis.h"
#include "protocols/span_attributes.h"

namespace weft::protocols::redis {
namespace {

std::string error_code(const RedisExchange& redis) {
  return redis.error_prefix.empty() ? std::string("ERR") : redis.error_prefix;
}

std::string operation(const RedisExchange& redis) {
  if (redis.request.command.empty()) return {};
  return std::string(operation_name(redis.request.command));
}

// "$5", "+OK", ":3", "*2", "(nil)", "-WRONGTYPE", "(no reply)".
std::string reply_text(const RedisExchange& redis) {
  if (redis.reply_type == Type::None) return "(no reply)";
  if (redis.is_error()) return "-" + error_code(redis);
  if (redis.reply_null || redis.reply_type == Type::Null) return "(nil)";
  const char type = static_cast<char>(redis.reply_type);
  switch (redis.reply_type) {
    case Type::SimpleString:
      return "+" + redis.reply_text.substr(0, 32);
    case Type::Integer:
    case Type::Boolean:
    case Type::Double:
    case Type::BigNumber:
      return std::string(1, type);
    default:
      return std::string(1, type) + std::to_string(redis.reply_length);
  }
}

// Where the server listens: this process's end when it serves, the peer's when it calls.
const Endpoint& server_endpoint(const Exchange& ex) {
  return ex.side != weft::Role::Client ? ex.connection->local : ex.connection->remote;
}

}  // namespace

void describe(const Exchange& ex, const DescribeOptions& options, SpanDescription& out) {
  const ConnectionInfo& c = *ex.connection;
  const RedisExchange& redis = redis_of(ex);
  out.kind = ex.side != weft::Role::Client ? SpanKind::Server : SpanKind::Client;

  std::string op = operation(redis);
  // The database span name is "{db.operation.name} {target}", but the Redis conventions keep
  // db.namespace (a number) out of it: the command alone.
  out.name = op.empty() ? std::string("redis") : op;

  auto& a = out.attributes;
  add_attribute(a, "db.system.name", std::string("redis"));
  if (!op.empty()) add_attribute(a, "db.operation.name", op);
  if (redis.db) add_attribute(a, "db.namespace", std::to_string(*redis.db));
  std::string query = query_text(redis.request, options.statement_values);
  if (!query.empty()) add_attribute(a, "db.query.text", query);
  const Endpoint& server_end = server_endpoint(ex);
  add_attribute(a, "server.address", server_end.address());
  add_attribute(a, "server.port", static_cast<int64_t>(server_end.port));
  add_connection_attributes(a, c);
  if (redis.in_transaction) add_attribute(a, "weft.redis.queued", true);
  if (redis.resp_version == 3) add_attribute(a, "weft.redis.resp", static_cast<int64_t>(3));
  if (ex.request.truncated || ex.response.truncated) add_attribute(a, "weft.redis.truncated", true);

  if (redis.is_error()) {
    // The command failed, on either side of the connection.
    std::string code = error_code(redis);
    add_attribute(a, "db.response.status_code", code);
    add_attribute(a, "error.type", code);
    out.status = StatusCode::Error;
    out.outcome = code;
  } else {
    out.outcome = redis.reply_type == Type::None ? "-" : "OK";
  }
}

// Both families (shared with every database protocol): db.system.name, db.operation.name,
// db.namespace, db.collection.name, db.response.status_code, server.address, server.port.
void metric_labels(const Exchange& ex, SpanKind, std::vector<LabelValue>& out) {
  const RedisExchange& redis = redis_of(ex);
  std::string op = operation(redis);
  const Endpoint& server_end = server_endpoint(ex);
  out.emplace_back(std::string("redis"));
  out.push_back(op.empty() ? LabelValue() : LabelValue(std::move(op)));
  out.push_back(redis.db ? LabelValue(std::to_string(*redis.db)) : LabelValue());
  out.emplace_back();  // db.collection.name: Redis has none
  out.push_back(redis.is_error() ? LabelValue(error_code(redis)) : LabelValue());
  out.emplace_back(server_end.address());
  out.emplace_back(static_cast<int64_t>(server_end.port));
}

void essentials(const Exchange& ex, SpanEssentials& out) {
  out.kind = ex.side != weft::Role::Client ? SpanKind::Server : SpanKind::Client;
  if (redis_of(ex).is_error()) out.status = StatusCode::Error;
}

std::string render_text(const Exchange& ex) {
  const RedisExchange& redis = redis_of(ex);
  std::string query = query_text(redis.request, false);
  std::string line = (query.empty() ? std::string("(empty)") : query) + " -> " + reply_text(redis);
  if (redis.replies > 1) line += " (" + std::to_string(redis.replies) + " replies)";
  if (redis.in_transaction) line += " [queued]";
  if (redis.db && *redis.db != 0) line += " [db " + std::to_string(*redis.db) + "]";
  return line;
}

void render_json(const Exchange& ex, nlohmann::json& out) {
  const RedisExchange& redis = redis_of(ex);
  out["command"] = redis.request.command;
  if (!redis.request.subcommand.empty()) out["subcommand"] = redis.request.subcommand;
  out["arg_count"] = redis.request.arg_count;
  out["query_text"] = query_text(redis.request, false);
  out["db"] = redis.db ? nlohmann::json(*redis.db) : nlohmann::json(nullptr);
  out["reply_type"] = redis.reply_type == Type::None
                          ? std::string()
                          : std::string(1, static_cast<char>(redis.reply_type));
  out["reply_length"] = redis.reply_length;
  out["reply_null"] = redis.reply_null;
  out["replies"] = redis.replies;
  out["error"] = redis.is_error() ? nlohmann::json(redis.error_message) : nlohmann::json(nullptr);
  out["error_prefix"] = redis.error_prefix;
  out["in_transaction"] = redis.in_transaction;
  out["resp"] = redis.resp_version;
}

}  // namespace weft::protocols::redis
