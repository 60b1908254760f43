// A low-cardinality route template from a request path: path segments that are ids
// (numbers, UUIDs, long hex or token-like strings) become placeholders.
#pragma once

#include <string>
#include <string_view>

namespace weft::protocols::http1 {

// "/users/42/orders/6f1c...-..." -> "/users/{id}/orders/{uuid}". The query is not part.
std::string route_template(std::string_view path);

}  // namespace weft::protocols::http1
