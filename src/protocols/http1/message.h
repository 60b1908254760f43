// An HTTP/1 message as the parser sees it on one byte stream.
#pragma once

#include <optional>
#include <string>

#include "weft/exchange.h"

namespace weft::protocols::http1 {

enum class MessageKind { Request, Response };

struct Message {
  MessageKind kind = MessageKind::Request;
  std::string method;   // requests
  std::string target;   // requests
  std::string version;  // "1.0" / "1.1"
  int status = 0;       // responses
  HeaderList headers;   // the headers weft keeps (see kKeptHeaders in parser.cpp)
  std::optional<uint64_t> content_length;
  bool chunked = false;
  MessageTiming timing;
  bool end_inferred = false;  // body ended by close or by the next message, not by framing

  const std::string* header(std::string_view name) const { return find_header(headers, name); }
};

}  // namespace weft::protocols::http1
