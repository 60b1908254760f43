#include "protocols/http1/route.h"

#include <algorithm>
#include <cctype>

namespace weft::protocols::http1 {
namespace {

bool all_of(std::string_view s, int (*pred)(int)) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [pred](char c) { return pred(static_cast<unsigned char>(c)); });
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// A segment that names one thing among many rather than a kind of thing.
const char* placeholder(std::string_view seg) {
  if (all_of(seg, isdigit)) return "{id}";
  if (is_uuid(seg)) return "{uuid}";
  bool has_digit = std::any_of(seg.begin(), seg.end(),
                               [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (seg.size() >= 8 && has_digit && all_of(seg, isxdigit)) return "{hex}";
  bool token_chars = std::all_of(seg.begin(), seg.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '~' || c == '=';
  });
  if (seg.size() >= 20 && has_digit && token_chars) return "{token}";
  return nullptr;
}

}  // namespace

std::string route_template(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  std::string out;
  out.reserve(path.size());
  size_t at = 0;
  while (at <= path.size()) {
    size_t slash = path.find('/', at);
    std::string_view seg =
        path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
    const char* p = placeholder(seg);
    out += p ? std::string_view(p) : seg;
    if (slash == std::string_view::npos) break;
    out += '/';
    at = slash + 1;
  }
  return out.empty() ? "/" : out;
}

}  // namespace weft::protocols::http1
