#include "cli/exchange_format.h"

#include <nlohmann/json.hpp>

#include "cli/event_format.h"
#include "protocols/protocol.h"

namespace weft::cli {
namespace {

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
  std::string line = format_wall_time(start_wall, false) + " " + to_string(ex.side) + " " + c.comm +
                     "[" + std::to_string(c.pid) + "/" + std::to_string(ex.request.start_tid) +
                     "] " + ex.protocol->render_text(ex) + " " + millis(ex.duration_ns()) + " " +
                     c.local.to_string() + (ex.side == Role::Server ? " <- " : " -> ") +
                     c.remote.to_string();
  if (c.capture_degraded) line += " [capture degraded]";
  return line;
}

std::string format_exchange_json(const Exchange& ex) {
  const ConnectionInfo& c = *ex.connection;
  nlohmann::json j = {
      {"protocol", ex.protocol_name()},
      {"side", to_string(ex.side)},
      {"time", format_wall_time(ex.request.start_ns + c.wall_offset_ns, true)},
      {"duration_ns", ex.duration_ns()},
  };
  ex.protocol->render_json(ex, j);
  j["request"] = timing_json(ex.request, c.wall_offset_ns);
  j["response"] = timing_json(ex.response, c.wall_offset_ns);
  j["pid"] = c.pid;
  j["comm"] = c.comm;
  j["exe"] = c.process ? c.process->exe : "";
  j["fd"] = c.fd;
  j["cookie"] = c.cookie;
  j["family"] = c.family == 10 ? "ipv6" : "ipv4";
  j["local"] = {{"address", c.local.address()}, {"port", c.local.port}};
  j["remote"] = {{"address", c.remote.address()}, {"port", c.remote.port}};
  j["capture_degraded"] = c.capture_degraded;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace weft::cli
