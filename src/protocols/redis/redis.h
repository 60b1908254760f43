// Redis (RESP2 and RESP3): the protocol object the registry lists, and the Redis part of an
// exchange, which only this folder (and its tests) reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocols/protocol.h"
#include "protocols/redis/resp.h"

namespace weft::protocols::redis {

// One command and what answered it.
struct RedisExchange : ExchangeDetails {
  RequestSummary request;  // command, subcommand, first arguments (bounded), argument count
  // The database index the command ran against: known when the connection was seen from its
  // start (index 0) or after a SELECT that was answered +OK.
  std::optional<int64_t> db;
  Type reply_type = Type::None;  // None: the command draws no reply (CLIENT REPLY OFF/SKIP)
  int64_t reply_length = 0;      // strings: bytes; aggregates: elements
  bool reply_null = false;
  std::string reply_text;       // first bytes of a simple string ("OK", "QUEUED", "PONG")
  std::string error_prefix;     // "ERR", "WRONGTYPE": the error's first word
  std::string error_message;    // the error's first bytes (bounded by the framer)
  uint32_t replies = 0;         // replies it drew (SUBSCRIBE a b c: 3)
  bool in_transaction = false;  // sent between MULTI and EXEC/DISCARD: its reply is QUEUED
  int resp_version = 2;         // 3 after HELLO 3

  bool is_error() const { return reply_type == Type::SimpleError || reply_type == Type::BlobError; }
};

const Protocol& protocol();

// The Redis part of an exchange this protocol produced.
const RedisExchange& redis_of(const Exchange& exchange);

// Parts of the contract, each in its own file.
DetectResult detect(std::span<const uint8_t> bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters);
void describe(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
void essentials(const Exchange& exchange, SpanEssentials& out);
void metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out);
std::string render_text(const Exchange& exchange);
void render_json(const Exchange& exchange, nlohmann::json& out);

}  // namespace weft::protocols::redis
