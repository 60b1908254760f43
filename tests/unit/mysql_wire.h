// MySQL client/server protocol packets as a peer writes them, for tests: a 3-byte little-endian
// payload length, a sequence id, the payload (payloads of 0xFFFFFF bytes and more continued in
// further packets, as the protocol does).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weft::test::my {

inline std::string le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}
inline std::string lenenc(uint64_t v) {
  if (v < 0xfb) return std::string(1, static_cast<char>(v));
  if (v <= 0xffff) return "\xfc" + le(v, 2);
  if (v <= 0xffffff) return "\xfd" + le(v, 3);
  return "\xfe" + le(v, 8);
}
inline std::string lenstr(std::string_view s) {
  return lenenc(s.size()) + std::string(s);
}

// One payload as packets from sequence id `seq` (a payload of 0xFFFFFF bytes or more is split,
// the last packet shorter than 0xFFFFFF, possibly empty).
inline std::string packet(uint8_t seq, std::string_view payload) {
  std::string out;
  for (;;) {
    size_t n = std::min<size_t>(payload.size(), 0xFFFFFF);
    out += le(n, 3) + static_cast<char>(seq++) + std::string(payload.substr(0, n));
    payload.remove_prefix(n);
    if (n < 0xFFFFFF) return out;
  }
}

// Capabilities.
constexpr uint32_t kProtocol41 = 0x200, kSecureConnection = 0x8000, kConnectWithDb = 0x8,
                   kPluginAuth = 0x80000, kLenencData = 0x200000, kDeprecateEof = 0x1000000,
                   kSsl = 0x800, kMultiStatements = 0x10000, kMultiResults = 0x20000;
constexpr uint32_t kClientCaps = kProtocol41 | kSecureConnection | kConnectWithDb | kPluginAuth |
                                 kLenencData | kMultiStatements | kMultiResults;

// Server.
inline std::string greeting(std::string_view version, uint32_t caps = kClientCaps | kDeprecateEof) {
  std::string p = "\x0a" + std::string(version) + '\0' + le(42, 4) + "abcdefgh" + '\0' +
                  le(caps & 0xffff, 2) + "\x21" + le(2, 2) + le(caps >> 16, 2) + "\x15" +
                  std::string(10, '\0') + "ijklmnopqrst" + '\0' + "mysql_native_password" + '\0';
  return packet(0, p);
}
inline std::string ok(uint8_t seq, uint64_t affected = 0, uint16_t status = 2) {
  return packet(seq,
                std::string(1, '\0') + lenenc(affected) + lenenc(0) + le(status, 2) + le(0, 2));
}
// The OK that ends a result set with CLIENT_DEPRECATE_EOF (header 0xfe).
inline std::string ok_eof(uint8_t seq, uint16_t status = 2) {
  return packet(seq, "\xfe" + lenenc(0) + lenenc(0) + le(status, 2) + le(0, 2));
}
inline std::string eof(uint8_t seq, uint16_t status = 2) {
  return packet(seq, "\xfe" + le(0, 2) + le(status, 2));
}
inline std::string err(uint8_t seq, uint16_t code, std::string_view state, std::string_view msg) {
  return packet(seq, "\xff" + le(code, 2) + "#" + std::string(state) + std::string(msg));
}
inline std::string column_def(uint8_t seq, std::string_view name, uint8_t type = 0xfd) {
  return packet(seq, lenstr("def") + lenstr("shop") + lenstr("t") + lenstr("t") + lenstr(name) +
                         lenstr(name) + "\x0c" + le(33, 2) + le(255, 4) +
                         std::string(1, static_cast<char>(type)) + le(0, 2) + std::string(1, '\0') +
                         le(0, 2));
}
inline std::string text_row(uint8_t seq, const std::vector<std::string>& values) {
  std::string p;
  for (const auto& v : values) p += lenstr(v);
  return packet(seq, p);
}
// A binary-protocol row of VAR_STRING values, none NULL.
inline std::string binary_row(uint8_t seq, const std::vector<std::string>& values) {
  std::string p = std::string(1, '\0') + std::string((values.size() + 9) / 8, '\0');
  for (const auto& v : values) p += lenstr(v);
  return packet(seq, p);
}
// A whole result set of one column from sequence id 1: count, definition, [EOF], rows, end.
inline std::string result_set(const std::vector<std::string>& rows, bool deprecate_eof,
                              bool binary = false, uint16_t end_status = 2) {
  uint8_t seq = 3;
  std::string out = packet(1, lenenc(1)) + column_def(2, "name");
  if (!deprecate_eof) out += eof(seq++);
  for (const auto& r : rows) out += binary ? binary_row(seq++, {r}) : text_row(seq++, {r});
  out += deprecate_eof ? ok_eof(seq, end_status) : eof(seq, end_status);
  return out;
}
inline std::string prepare_ok(uint32_t id, uint16_t columns, uint16_t params) {
  return packet(1, std::string(1, '\0') + le(id, 4) + le(columns, 2) + le(params, 2) +
                       std::string(1, '\0') + le(0, 2));
}
// A PREPARE's whole answer: OK, parameter definitions, column definitions, with the classic
// EOFs unless deprecate_eof.
inline std::string prepare_answer(uint32_t id, uint16_t columns, uint16_t params,
                                  bool deprecate_eof) {
  std::string out = prepare_ok(id, columns, params);
  uint8_t seq = 2;
  for (int i = 0; i < params; ++i) out += column_def(seq++, "?");
  if (params && !deprecate_eof) out += eof(seq++);
  for (int i = 0; i < columns; ++i) out += column_def(seq++, "c" + std::to_string(i));
  if (columns && !deprecate_eof) out += eof(seq++);
  return out;
}

// Client.
inline std::string command(uint8_t c, std::string_view rest = {}) {
  return packet(0, std::string(1, static_cast<char>(c)) + std::string(rest));
}
inline std::string query(std::string_view sql) {
  return command(0x03, sql);
}
// COM_QUERY with CLIENT_QUERY_ATTRIBUTES and no attributes.
inline std::string query_with_attributes(std::string_view sql) {
  return command(0x03, std::string("\x00\x01", 2) + std::string(sql));
}
inline std::string prepare(std::string_view sql) {
  return command(0x16, sql);
}
// COM_STMT_EXECUTE with VAR_STRING parameters, none NULL.
inline std::string execute(uint32_t id, const std::vector<std::string>& params = {}) {
  std::string p = le(id, 4) + std::string(1, '\0') + le(1, 4);
  if (!params.empty()) {
    p += std::string((params.size() + 7) / 8, '\0') + "\x01";
    for (size_t i = 0; i < params.size(); ++i) p += std::string("\xfd\x00", 2);
    for (const auto& v : params) p += lenstr(v);
  }
  return command(0x17, p);
}
inline std::string close_statement(uint32_t id) {
  return command(0x19, le(id, 4));
}
inline std::string reset_statement(uint32_t id) {
  return command(0x1a, le(id, 4));
}
inline std::string send_long_data(uint32_t id, uint16_t param, std::string_view data) {
  return command(0x18, le(id, 4) + le(param, 2) + std::string(data));
}
inline std::string ping() {
  return command(0x0e);
}
inline std::string init_db(std::string_view db) {
  return command(0x02, db);
}
inline std::string quit() {
  return command(0x01);
}
inline std::string handshake_response(std::string_view user, std::string_view password_hash,
                                      std::string_view db,
                                      uint32_t caps = kClientCaps | kDeprecateEof,
                                      uint8_t seq = 1) {
  if (db.empty()) caps &= ~kConnectWithDb;
  std::string p = le(caps, 4) + le(1 << 24, 4) + "\x21" + std::string(23, '\0') +
                  std::string(user) + '\0' + lenstr(password_hash);
  if (!db.empty()) p += std::string(db) + '\0';
  p += std::string("mysql_native_password") + '\0';
  return packet(seq, p);
}
inline std::string ssl_request(uint32_t caps = kClientCaps | kSsl) {
  return packet(1, le(caps, 4) + le(1 << 24, 4) + "\x21" + std::string(23, '\0'));
}

}  // namespace weft::test::my
