#include "protocols/http1/route.h"

namespace weft::protocols::http1 {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_token(char c) {
  return is_hex(c) || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z') || c == '-' || c == '_' ||
         c == '.' || c == '~' || c == '=';
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

// A segment that names one thing among many rather than a kind of thing. One pass over its
// bytes: every request's span and metric series asks (ASCII classes, not the locale's).
const char* placeholder(std::string_view seg) {
  if (seg.empty()) return nullptr;
  size_t digits = 0, hex = 0, token = 0;
  for (char c : seg) {
    digits += is_digit(c);
    hex += is_hex(c);
    token += is_token(c);
  }
  if (digits == seg.size()) return "{id}";
  if (is_uuid(seg)) return "{uuid}";
  if (seg.size() >= 8 && digits > 0 && hex == seg.size()) return "{hex}";
  if (seg.size() >= 20 && digits > 0 && token == seg.size()) return "{token}";
  return nullptr;
}

// Where the path ends: at its query or fragment. A plain loop: find_first_of asks memchr of
// the two-character set once per byte of the path.
size_t path_end(std::string_view target) {
  for (size_t i = 0; i < target.size(); ++i)
    if (target[i] == '?' || target[i] == '#') return i;
  return target.size();
}

}  // namespace

std::string route_template(std::string_view path) {
  path = path.substr(0, path_end(path));
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

std::string route_of_target(std::string_view target) {
  if (!target.starts_with("/")) return {};
  return route_template(target);
}

}  // namespace weft::protocols::http1
