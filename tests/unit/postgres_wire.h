// PostgreSQL protocol 3 messages as a peer writes them, for tests: a type byte, a big-endian
// int32 length that counts itself, the body.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::test::pg {

inline std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
inline std::string be16(uint16_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v)};
}
inline std::string cstr(std::string_view s) {
  return std::string(s) + '\0';
}

inline std::string msg(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

// Frontend.
inline std::string startup(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = be32(196608);
  for (const auto& [k, v] : params) body += cstr(k) + cstr(v);
  body += '\0';
  return be32(static_cast<uint32_t>(body.size() + 4)) + body;
}
inline std::string ssl_request() {
  return be32(8) + be32(80877103);
}
inline std::string query(std::string_view sql) {
  return msg('Q', cstr(sql));
}
inline std::string parse(std::string_view name, std::string_view sql) {
  return msg('P', cstr(name) + cstr(sql) + be16(0));
}
// Bind with text parameters.
inline std::string bind(std::string_view portal, std::string_view statement,
                        const std::vector<std::string>& values = {}) {
  std::string body =
      cstr(portal) + cstr(statement) + be16(0) + be16(static_cast<uint16_t>(values.size()));
  for (const std::string& v : values) body += be32(static_cast<uint32_t>(v.size())) + v;
  return msg('B', body + be16(0));
}
inline std::string describe_portal(std::string_view portal) {
  return msg('D', "P" + cstr(portal));
}
inline std::string execute(std::string_view portal = "", uint32_t max_rows = 0) {
  return msg('E', cstr(portal) + be32(max_rows));
}
inline std::string sync() {
  return msg('S', "");
}
inline std::string copy_data(const std::string& data) {
  return msg('d', data);
}
inline std::string copy_done() {
  return msg('c', "");
}

// Backend.
inline std::string ready(char status = 'I') {
  return msg('Z', std::string(1, status));
}
inline std::string command_complete(std::string_view tag) {
  return msg('C', cstr(tag));
}
inline std::string row_description(std::string_view column) {
  return msg('T', be16(1) + cstr(column) + be32(0) + be16(0) + be32(25) + be16(0xffff) +
                      be32(0xffffffff) + be16(0));
}
inline std::string data_row(const std::string& value) {
  return msg('D', be16(1) + be32(static_cast<uint32_t>(value.size())) + value);
}
inline std::string error(std::string_view code, std::string_view message = "failed") {
  return msg('E', "SERROR" + std::string(1, '\0') + "VERROR" + std::string(1, '\0') + "C" +
                      cstr(code) + "M" + cstr(message) + std::string(1, '\0'));
}
inline std::string notice(std::string_view message) {
  return msg('N', "SNOTICE" + std::string(1, '\0') + "C" + cstr("00000") + "M" + cstr(message) +
                      std::string(1, '\0'));
}
inline std::string notification(std::string_view channel) {
  return msg('A', be32(4242) + cstr(channel) + cstr("payload"));
}
inline std::string parameter_status(std::string_view k, std::string_view v) {
  return msg('S', cstr(k) + cstr(v));
}
inline std::string parse_complete() {
  return msg('1', "");
}
inline std::string bind_complete() {
  return msg('2', "");
}
inline std::string no_data() {
  return msg('n', "");
}
inline std::string copy_in_response() {
  return msg('G', std::string(1, '\0') + be16(0));
}
inline std::string copy_out_response() {
  return msg('H', std::string(1, '\0') + be16(0));
}
inline std::string auth_ok() {
  return msg('R', be32(0));
}
inline std::string backend_key() {
  return msg('K', be32(77) + be32(1234));
}

}  // namespace weft::test::pg
