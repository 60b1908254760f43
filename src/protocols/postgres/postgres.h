// PostgreSQL (frontend/backend protocol 3): the protocol object the registry lists, and the
// PostgreSQL part of an exchange, which only this folder (and its tests) reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocols/protocol.h"

namespace weft::protocols::postgres {

// One statement run (a simple Query, or an extended-protocol Execute) and what answered it.
struct PostgresExchange : ExchangeDetails {
  // The statement as sent (bounded by the capture; sanitised when described unless the user
  // opted in to statement values). Empty when unknown.
  std::string query;
  std::string operation;                // db.operation.name read from the text ("SELECT"), or ""
  std::string collection;               // db.collection.name of a single-table statement, or ""
  bool extended = false;                // an Execute of the extended protocol (else a simple Query)
  std::string statement_name;           // the prepared statement executed ("" unnamed)
  bool statement_unknown = false;       // its Parse was not seen: no text, never guessed
  std::optional<std::string> database;  // from the startup message, when weft saw it
  std::string command_tag;              // the last CommandComplete: "INSERT 0 1", "SELECT 5"
  uint32_t commands = 0;                // CommandCompletes (a Query may hold several statements)
  int64_t rows = 0;                     // DataRows the statement returned
  bool empty_query = false;             // EmptyQueryResponse
  bool suspended = false;               // PortalSuspended: Execute's row limit was reached
  bool copy = false;                    // COPY in or out
  uint64_t copy_bytes = 0;              // CopyData payload bytes (passed over, never kept)
  std::string sqlstate;                 // ErrorResponse code ("42601"); empty: no error
  std::string severity;                 // ErrorResponse severity ("ERROR", "FATAL")

  bool is_error() const { return !sqlstate.empty(); }
};

const Protocol& protocol();

// The PostgreSQL part of an exchange this protocol produced.
const PostgresExchange& postgres_of(const Exchange& exchange);

// Parts of the contract, each in its own file.
DetectResult detect(std::span<const uint8_t> bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters);
void describe(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
void essentials(const Exchange& exchange, SpanEssentials& out);
void metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out);
std::string render_text(const Exchange& exchange);
void render_json(const Exchange& exchange, nlohmann::json& out);

}  // namespace weft::protocols::postgres
