// MySQL client/server protocol (MySQL and MariaDB): the protocol object the registry lists, and
// the MySQL part of an exchange, which only this folder (and its tests) reads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "protocols/protocol.h"

namespace weft::protocols::mysql {

// One command that the server answers (COM_QUERY, COM_STMT_EXECUTE, COM_PING...) and its answer.
struct MysqlExchange : ExchangeDetails {
  uint8_t command = 0;  // the command byte (wire.h: Command)
  // The statement as sent (COM_QUERY, COM_STMT_PREPARE; an EXECUTE's when weft saw its PREPARE),
  // bounded by the capture, sanitised when described unless the user opted in to statement
  // values. Empty when unknown or when the command has none.
  std::string query;
  std::string operation;   // db.operation.name: the statement's keyword, else the command's
  std::string collection;  // db.collection.name of a single-table statement, or ""
  bool prepared = false;   // a command on a prepared statement (EXECUTE, FETCH, RESET...)
  uint32_t statement_id = 0;
  bool statement_unknown = false;       // its PREPARE was not seen: no text, never guessed
  std::optional<std::string> database;  // db.namespace: handshake, COM_INIT_DB, USE
  bool mariadb = false;                 // db.system.name "mariadb" (else "mysql"): see describe
  uint32_t results = 0;                 // result sets and OKs (several: multi-statements)
  uint32_t columns = 0;                 // columns of the last result set
  int64_t rows = 0;                     // rows returned, counted never copied
  uint64_t affected_rows = 0;           // from the OK packets
  bool ok = false;                      // an OK (or EOF) ended it
  bool local_infile = false;            // the server asked for a LOCAL INFILE: data counted
  uint64_t infile_bytes = 0;
  uint16_t error_code = 0;  // ERR: the server's error number (1064); 0 with `error` false
  std::string sqlstate;     // ERR: "42000"
  bool error = false;

  bool is_error() const { return error; }
  std::string status_code() const { return std::to_string(error_code); }
};

const Protocol& protocol();

// The MySQL part of an exchange this protocol produced.
const MysqlExchange& mysql_of(const Exchange& exchange);

// Parts of the contract, each in its own file.
DetectResult detect(std::span<const uint8_t> bytes);
std::unique_ptr<ProtocolHandler> create_handler(std::shared_ptr<const ConnectionInfo> connection,
                                                bool requests_sent, ProtocolCounters& counters);
void describe(const Exchange& exchange, const DescribeOptions& options, SpanDescription& out);
void essentials(const Exchange& exchange, SpanEssentials& out);
void metric_labels(const Exchange& exchange, SpanKind kind, std::vector<LabelValue>& out);
std::string render_text(const Exchange& exchange);
void render_json(const Exchange& exchange, nlohmann::json& out);

}  // namespace weft::protocols::mysql
