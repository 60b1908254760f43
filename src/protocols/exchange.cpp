#include "weft/exchange.h"

namespace weft {

const std::string& Exchange::request_header(std::string_view name) const {
  static const std::string kEmpty;
  for (const auto& [k, v] : http.request_headers)
    if (k == name) return v;
  return kEmpty;
}

}  // namespace weft
