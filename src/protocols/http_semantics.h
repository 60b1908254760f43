// What HTTP/1 and HTTP/2 spans share under the OpenTelemetry HTTP semantic conventions: known
// methods, the error rule, host[:port] splitting, Content-Length, the duration buckets and the
// http.*.request.duration families (one metric per name, whatever the HTTP version).
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/exchange.h"
#include "weft/telemetry.h"

namespace weft::protocols::http {

inline constexpr std::string_view kKnownMethods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

inline bool known_method(std::string_view m) {
  return std::find(std::begin(kKnownMethods), std::end(kKnownMethods), m) !=
         std::end(kKnownMethods);
}

// "example.com:8080" -> ("example.com", 8080); "[::1]:80" -> ("::1", 80).
inline bool split_host(std::string_view host, std::string& name, int64_t& port) {
  if (host.empty()) return false;
  size_t colon = host.rfind(':');
  size_t bracket = host.rfind(']');
  if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
    std::string_view p = host.substr(colon + 1);
    // ASCII digits by comparison: ::isdigit asks the locale for every byte.
    if (p.empty() || p.size() > 5 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return false;
    std::from_chars(p.data(), p.data() + p.size(), port);
    if (port > 65535) return false;
    host = host.substr(0, colon);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  name = host;
  return !name.empty();
}

inline std::optional<int64_t> content_length(const HeaderList& headers) {
  const std::string* v = find_header(headers, "content-length");
  int64_t n = 0;
  // Digits only (from_chars alone would take a sign).
  if (!v || v->empty() || v->size() > 18 || v->front() < '0' || v->front() > '9')
    return std::nullopt;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size()) return std::nullopt;
  return n;
}

// The OpenTelemetry semantic conventions' advisory bucket bounds for HTTP durations, seconds.
inline const std::vector<double>& duration_buckets() {
  static const std::vector<double> buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  return buckets;
}

// Function-local statics in inline functions: one family for the whole program.
inline const MetricFamily& server_duration_family() {
  static const MetricFamily family{
      "http.server.request.duration",
      "Duration of HTTP server requests.",
      {"http.request.method", "http.route", "http.response.status_code"},
      "http.route",
      duration_buckets()};
  return family;
}

inline const MetricFamily& client_duration_family() {
  static const MetricFamily family{
      "http.client.request.duration",
      "Duration of HTTP client requests.",
      {"http.request.method", "url.template", "http.response.status_code"},
      "url.template",
      duration_buckets()};
  return family;
}

// 5xx is an error on both sides; 4xx only for the client (the server did its job).
inline bool is_error(int status, bool server) {
  return status >= 500 || (!server && status >= 400);
}

}  // namespace weft::protocols::http
