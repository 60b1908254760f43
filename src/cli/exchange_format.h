// How exchanges look to people (one line each) and to programs (one JSON object per line).
#pragma once

#include <string>

#include "weft/exchange.h"

namespace weft::cli {

std::string format_exchange_text(const Exchange& exchange);
std::string format_exchange_json(const Exchange& exchange);

}  // namespace weft::cli
