#include "cli/exchange_format.h"

#include <nlohmann/json.hpp>

#include "cli/event_format.h"

namespace weft::cli {
namespace {

nlohmann::json headers_json(const HeaderList& headers) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : headers)
    if (!out.contains(name)) out[name] = value;
  return out;
}

nlohmann::json timing_json(const MessageTiming& t, int64_t wall_offset_ns) {
  return {
      {"start_ns", t.start_ns + wall_offset_ns},
      {"end_ns", t.end_ns + wall_offset_ns},
      {"start_tid", t.start_tid},
      {"end_tid", t.end_tid},
      {"stream_pos", t.stream_pos},
      {"tcp_seq", t.tcp_seq},
      {"bytes", t.wire_bytes},
      {"body_bytes", t.body_bytes},
      {"truncated", t.truncated},
  };
}

std::string millis(uint64_t ns) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.3fms", static_cast<double>(ns) / 1e6);
  return buf;
}

}  // namespace

std::string format_exchange_text(const Exchange& ex) {
  const ConnectionInfo& c = *ex.connection;
  uint64_t start_wall = ex.request.start_ns + c.wall_offset_ns;
  std::string line = format_wall_time(start_wall, false) + " " + to_string(ex.side) + " " + c.comm + "[" +
                     std::to_string(c.pid) + "/" + std::to_string(ex.request.start_tid) + "] " + ex.http.method +
                     " " + ex.http.target + " -> " + std::to_string(ex.http.status) + " " +
                     millis(ex.duration_ns()) + " " + c.local.to_string() +
                     (ex.side == Role::Server ? " <- " : " -> ") + c.remote.to_string();
  if (ex.request.truncated || ex.response.truncated) line += " [headers truncated]";
  if (ex.http.response_end_inferred) line += " [end inferred]";
  return line;
}

std::string format_exchange_json(const Exchange& ex) {
  const ConnectionInfo& c = *ex.connection;
  nlohmann::json j = {
      {"protocol", ex.protocol},
      {"side", to_string(ex.side)},
      {"time", format_wall_time(ex.request.start_ns + c.wall_offset_ns, true)},
      {"duration_ns", ex.duration_ns()},
      {"method", ex.http.method},
      {"target", ex.http.target},
      {"version", ex.http.version},
      {"status", ex.http.status},
      {"request", timing_json(ex.request, c.wall_offset_ns)},
      {"response", timing_json(ex.response, c.wall_offset_ns)},
      {"request_headers", headers_json(ex.http.request_headers)},
      {"response_headers", headers_json(ex.http.response_headers)},
      {"response_end_inferred", ex.http.response_end_inferred},
      {"pid", c.pid},
      {"comm", c.comm},
      {"exe", c.process ? c.process->exe : ""},
      {"fd", c.fd},
      {"cookie", c.cookie},
      {"family", c.family == 10 ? "ipv6" : "ipv4"},
      {"local", {{"address", c.local.address()}, {"port", c.local.port}}},
      {"remote", {{"address", c.remote.address()}, {"port", c.remote.port}}},
  };
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace weft::cli
