// A low-cardinality route template from a request path: path segments that are ids
// (numbers, UUIDs, long hex or token-like strings) become placeholders.
#pragma once

#include <string>
#include <string_view>

namespace weft::protocols::http1 {

// "/users/42/orders/6f1c...-..." -> "/users/{id}/orders/{uuid}". The query is not part.
std::string route_template(std::string_view path);

// The route template of a request target in origin form ("/a/1?x" -> "/a/{id}"); "" for any
// other form (absolute URLs to a proxy, "*", authorities of CONNECT).
std::string route_of_target(std::string_view target);

}  // namespace weft::protocols::http1
