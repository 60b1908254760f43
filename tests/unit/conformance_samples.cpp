// Sample conversations per protocol for the conformance suite: see conformance_samples.h.
#include "conformance_samples.h"

#include <map>

#include "http2_wire.h"
#include "mysql_wire.h"
#include "postgres_wire.h"

namespace weft::test::conformance {
namespace {

Message plain(std::string bytes) {
  return Message{std::move(bytes), 0, 0};
}

// `head` followed by a body of `length` bytes (and `trailer` after it, e.g. RESP's CRLF).
Message with_body(const std::string& head, size_t length, const std::string& trailer = "") {
  std::string body;
  body.reserve(length);
  const std::string_view pattern = "0123456789abcdefghijklmnopqrstuvwxyz-";
  for (size_t i = 0; i < length; ++i) body += pattern[i % pattern.size()];
  return Message{head + body + trailer, head.size(), length};
}

// ---- http1 ----------------------------------------------------------------------------------

ProtocolSamples http1() {
  ProtocolSamples s;
  s.conversation.push_back(
      {"GET with a response",
       plain("GET /items/42?color=red HTTP/1.1\r\nHost: shop.example\r\n"
             "User-Agent: conformance\r\nAccept: */*\r\n\r\n"),
       plain("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello")});
  s.conversation.push_back(
      {"POST with a body",
       plain("POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\n"
             "Content-Length: 20\r\n\r\n{\"item\":42,\"qty\":3}\n"),
       plain("HTTP/1.1 201 Created\r\nLocation: /orders/7\r\nContent-Length: 2\r\n\r\nok")});
  s.conversation.push_back(
      {"chunked response",
       plain("GET /feed HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
       plain("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n")});
  s.conversation.push_back(
      {"error status",
       plain("DELETE /items/9 HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 0\r\n\r\n"),
       plain("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")});
  s.bodied.push_back({"PUT with a 6000-byte body",
                      with_body("PUT /blobs/1 HTTP/1.1\r\nHost: shop.example\r\n"
                                "Content-Type: application/octet-stream\r\n"
                                "Content-Length: 6000\r\n\r\n",
                                6000),
                      plain("HTTP/1.1 204 No Content\r\n\r\n")});
  s.bodied.push_back({"GET answered with a 5000-byte body",
                      plain("GET /blobs/1 HTTP/1.1\r\nHost: shop.example\r\n\r\n"),
                      with_body("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                "Content-Length: 5000\r\n\r\n",
                                5000)});
  return s;
}

// ---- redis (RESP) ---------------------------------------------------------------------------

ProtocolSamples redis() {
  ProtocolSamples s;
  s.conversation.push_back(
      {"SET", plain("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), plain("+OK\r\n")});
  s.conversation.push_back({"GET", plain("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), plain("$1\r\nv\r\n")});
  s.conversation.push_back(
      {"error reply", plain("*2\r\n$4\r\nINCR\r\n$1\r\nk\r\n"), plain("-ERR x\r\n")});
  s.conversation.push_back(
      {"HSET with an integer reply",
       plain("*4\r\n$4\r\nHSET\r\n$4\r\nuser\r\n$4\r\nname\r\n$3\r\nann\r\n"), plain(":1\r\n")});
  s.bodied.push_back({"SET with a 6000-byte value",
                      with_body("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$6000\r\n", 6000, "\r\n"),
                      plain("+OK\r\n")});
  s.bodied.push_back({"GET answered with a 5000-byte value",
                      plain("*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"),
                      with_body("$5000\r\n", 5000, "\r\n")});
  return s;
}

// ---- postgresql (protocol 3) ----------------------------------------------------------------

ProtocolSamples postgresql() {
  using namespace pg;
  ProtocolSamples s;
  s.conversation.push_back(
      {"simple query with rows",
       plain(query("SELECT name FROM users WHERE id = 42")),
       plain(row_description("name") + data_row("ann") + command_complete("SELECT 1") + ready())});
  s.conversation.push_back({"simple INSERT",
                            plain(query("INSERT INTO users (id, name) VALUES (7, 'bob')")),
                            plain(command_complete("INSERT 0 1") + ready('I'))});
  s.conversation.push_back(
      {"extended Parse/Bind/Execute/Sync",
       plain(parse("", "SELECT name FROM users WHERE id = $1") + bind("", "", {"42"}) +
             describe_portal("") + execute() + sync()),
       plain(parse_complete() + bind_complete() + row_description("name") + data_row("ann") +
             command_complete("SELECT 1") + ready())});
  s.conversation.push_back({"syntax error", plain(query("SELEC 1")),
                            plain(error("42601", "syntax error at or near \"SELEC\"") + ready())});
  Message row = with_body("", 5000);
  std::string row_head = data_row(row.bytes).substr(0, 11);
  s.bodied.push_back(
      {"SELECT answered with a 5000-byte row", plain(query("SELECT data FROM blobs WHERE id = 1")),
       Message{row_description("data") + row_head + row.bytes + command_complete("SELECT 1") +
                   ready(),
               row_description("data").size() + row_head.size(), 5000}});
  Message copy = with_body("", 6000);
  std::string copy_head = copy_data(copy.bytes).substr(0, 5);
  s.bodied.push_back({"COPY FROM STDIN with 6000 bytes of data",
                      Message{query("COPY blobs FROM STDIN") + copy_head + copy.bytes + copy_done(),
                              query("COPY blobs FROM STDIN").size() + copy_head.size(), 6000},
                      plain(copy_in_response() + command_complete("COPY 1") + ready())});
  return s;
}

// ---- mysql (client/server protocol) ---------------------------------------------------------
// Classic EOFs (no CLIENT_DEPRECATE_EOF) in the first result set, OKs with 0xfe in the other:
// weft reads both without the handshake.

ProtocolSamples mysql() {
  using namespace my;
  ProtocolSamples s;
  s.conversation.push_back({"SELECT with rows, classic EOFs",
                            plain(query("SELECT name FROM users WHERE id = 42")),
                            plain(result_set({"ann", "bob"}, false))});
  s.conversation.push_back({"INSERT answered with an OK",
                            plain(query("INSERT INTO users (id, name) VALUES (7, 'bob')")),
                            plain(ok(1, 1))});
  s.conversation.push_back({"syntax error", plain(query("SELEC 1")),
                            plain(err(1, 1064, "42000", "You have an error in your SQL syntax"))});
  s.conversation.push_back({"PING", plain(ping()), plain(ok(1))});
  s.conversation.push_back({"SELECT, CLIENT_DEPRECATE_EOF", plain(query("SELECT id FROM orders")),
                            plain(result_set({"1"}, true))});
  // A text row whose one value is 5000 bytes (a 0xfc length), passed over by its length.
  Message value = with_body("", 5000);
  std::string head = packet(1, lenenc(1)) + column_def(2, "data") + eof(3);
  std::string row = text_row(4, {value.bytes});
  std::string row_head = row.substr(0, 7);
  s.bodied.push_back({"SELECT answered with a 5000-byte value",
                      plain(query("SELECT data FROM blobs WHERE id = 1")),
                      Message{head + row + eof(5), head.size() + row_head.size(), 5000}});
  // An EXECUTE (of a statement prepared before weft) sending a 6000-byte parameter.
  Message param = with_body("", 6000);
  std::string exec = execute(9, {param.bytes});
  s.bodied.push_back({"EXECUTE with a 6000-byte parameter", Message{exec, exec.size() - 6000, 6000},
                      plain(ok(1, 1))});
  return s;
}

// ---- http2 ----------------------------------------------------------------------------------
// Frames without the connection preface: each pair is found by its HEADERS frame alone (the
// way weft joins a connection late). Blocks use static entries and literals without indexing,
// so each decodes wherever it appears; stream ids repeat when the conversation does.

Message h2_with_body(const std::string& head, uint32_t stream, size_t length) {
  Message body = with_body("", length);
  std::string data = h2::frame(h2::kData, h2::kEndStream, stream, body.bytes);
  return Message{head + data, head.size() + 9, length};
}

ProtocolSamples http2() {
  using namespace h2;
  ProtocolSamples s;
  s.conversation.push_back(
      {"GET with a response body",
       plain(frame(kHeaders, kEndHeaders | kEndStream, 1, request_block("GET", "/items/42?c=r"))),
       plain(
           frame(kHeaders, kEndHeaders, 1, indexed(kStatus200) + lit(kContentType, "text/plain")) +
           frame(kData, kEndStream, 1, "hello"))});
  s.conversation.push_back(
      {"POST with a small body",
       plain(frame(kHeaders, kEndHeaders, 3, request_block("POST", "/orders")) +
             frame(kData, kEndStream, 3, "{\"item\":42}")),
       plain(frame(kHeaders, kEndHeaders | kEndStream, 3, indexed(kStatus204)))});
  s.conversation.push_back(
      {"error status, headers in HEADERS and CONTINUATION",
       plain(frame(kHeaders, kEndStream, 5, request_block("DELETE", "/items/9").substr(0, 12)) +
             frame(kContinuation, kEndHeaders, 5,
                   request_block("DELETE", "/items/9").substr(12))),
       plain(frame(kHeaders, kEndHeaders | kEndStream, 5, indexed(kStatus404)))});
  s.bodied.push_back(
      {"PUT with a 6000-byte body",
       h2_with_body(frame(kHeaders, kEndHeaders, 7, request_block("PUT", "/blobs/1")), 7, 6000),
       plain(frame(kHeaders, kEndHeaders | kEndStream, 7, indexed(kStatus204)))});
  s.bodied.push_back(
      {"GET answered with a 5000-byte body",
       plain(frame(kHeaders, kEndHeaders | kEndStream, 9, request_block("GET", "/blobs/1"))),
       h2_with_body(frame(kHeaders, kEndHeaders, 9,
                          indexed(kStatus200) + lit(kContentType, "application/octet-stream")),
                    9, 5000)});
  return s;
}

const std::map<std::string, ProtocolSamples, std::less<>>& all() {
  static const std::map<std::string, ProtocolSamples, std::less<>> samples = {
      {"http1", http1()},
      {"redis", redis()},
      {"http2", http2()},
      {"postgresql", postgresql()},
      {"mysql", mysql()},
  };
  return samples;
}

}  // namespace

const ProtocolSamples* samples_for(std::string_view protocol_name) {
  auto it = all().find(protocol_name);
  return it == all().end() ? nullptr : &it->second;
}

std::vector<std::string> protocols_with_samples() {
  std::vector<std::string> names;
  for (const auto& [name, samples] : all()) names.push_back(name);
  return names;
}

}  // namespace weft::test::conformance
