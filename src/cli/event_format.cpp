#include "cli/event_format.h"

#include <ctime>
#include <nlohmann/json.hpp>

#include "weft_events.h"

namespace weft::cli {

std::string format_wall_time(uint64_t wall_ns, bool iso) {
  time_t secs = static_cast<time_t>(wall_ns / 1'000'000'000ull);
  tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  if (iso) {
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
    char frac[16];
    snprintf(frac, sizeof(frac), ".%09lluZ",
             static_cast<unsigned long long>(wall_ns % 1'000'000'000ull));
    return std::string(buf) + frac;
  }
  strftime(buf, sizeof(buf), "%H:%M:%S", &utc);
  char frac[16];
  snprintf(frac, sizeof(frac), ".%06llu",
           static_cast<unsigned long long>(wall_ns % 1'000'000'000ull / 1000));
  return std::string(buf) + frac;
}

namespace {

// Printable preview of a payload: C-style escapes, cut at `limit` bytes.
std::string preview(const std::vector<uint8_t>& data, size_t limit) {
  std::string out = "\"";
  for (size_t i = 0; i < data.size() && i < limit; ++i) {
    uint8_t c = data[i];
    switch (c) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out += static_cast<char>(c);
        } else {
          char hex[8];
          snprintf(hex, sizeof(hex), "\\x%02x", c);
          out += hex;
        }
    }
  }
  out += data.size() > limit ? "\"..." : "\"";
  return out;
}

std::string errno_name(int32_t result) {
  switch (-result) {
    case 0:
      return "ok";
    case 111:
      return "ECONNREFUSED";
    case 110:
      return "ETIMEDOUT";
    case 113:
      return "EHOSTUNREACH";
    case 101:
      return "ENETUNREACH";
    case 104:
      return "ECONNRESET";
    default:
      return "errno " + std::to_string(-result);
  }
}

const char* closed_by_text(uint8_t closed_by) {
  return closed_by == 1 ? "local" : closed_by == 2 ? "peer" : "unknown";
}

std::string duration_text(uint64_t ns) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.3fms", static_cast<double>(ns) / 1e6);
  return buf;
}

nlohmann::json endpoint_json(const Endpoint& e) {
  return {{"address", e.address()}, {"port", e.port}};
}

}  // namespace

std::string base64_encode(const std::vector<uint8_t>& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = bytes[i] << 16 | bytes[i + 1] << 8 | bytes[i + 2];
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  if (size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = bytes[i] << 16 | (rest == 2 ? bytes[i + 1] << 8 : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += rest == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

std::string format_event_text(const Event& e) {
  std::string line = format_wall_time(e.wall_ns, false) + " " + to_string(e.kind);
  line.resize(std::max<size_t>(line.size(), 24), ' ');
  if (e.kind == EventKind::Data && e.kernel_thread())
    line += e.comm + "[kernel thread]";  // its pid is not the connection's process
  else
    line += e.comm + "[" + std::to_string(e.pid) + "/" + std::to_string(e.tid) + "]";
  line += " fd=" + std::to_string(e.fd) + " " + to_string(e.role) + " ";
  line += e.local.to_string() +
          (e.kind == EventKind::Data && e.direction == Direction::Recv ? " <- " : " -> ");
  line += e.remote.to_string();
  switch (e.kind) {
    case EventKind::Data:
      line += " " + std::string(to_string(e.direction)) + " " + syscall_name(e.syscall) + " " +
              std::to_string(e.syscall_len) + "B";
      if (e.source == ByteSource::TlsLibrary) line += " plaintext";
      if (e.chunk_offset) line += " chunk@" + std::to_string(e.chunk_offset);
      line += " pos=" + (e.has_position() ? std::to_string(e.stream_pos) : std::string("?"));
      if (e.gap_before) line += " GAP=" + std::to_string(e.gap_before);
      if (e.skipped())
        line += " skipped";
      else if (e.truncated())
        line += " captured=" + std::to_string(e.data.size());
      if (!e.data.empty()) line += " " + preview(e.data, 64);
      break;
    case EventKind::Connect:
      line += " " + errno_name(e.result) + " " + duration_text(e.duration_ns);
      break;
    case EventKind::Accept:
      line += (e.accept_at_first_io() ? " first I/O after " : " queued ") +
              duration_text(e.duration_ns);
      break;
    case EventKind::Close:
      line += " by " + std::string(closed_by_text(e.closed_by)) +
              " sent=" + std::to_string(e.bytes_sent) +
              " received=" + std::to_string(e.bytes_received);
      break;
    case EventKind::Existing:
      break;
    case EventKind::Tcp:
      line += " " + std::string(to_string(e.tcp_what)) + " state=" + std::to_string(e.tcp_state);
      if (e.tcp_what == TcpWhat::Retransmit)
        line += " seq=" + std::to_string(e.tcp_seq) + " segs=" + std::to_string(e.tcp_segs);
      line += " srtt=" + std::to_string(e.tcp.srtt_us) +
              "us retrans=" + std::to_string(e.tcp.total_retrans);
      break;
  }
  return line;
}

std::string format_event_json(const Event& e) {
  nlohmann::json j = {
      {"kind", to_string(e.kind)},
      {"time", format_wall_time(e.wall_ns, true)},
      {"ts_ns", e.wall_ns},
      {"mono_ns", e.mono_ns},
      {"cookie", e.cookie},
      {"pid", e.pid},
      {"tid", e.tid},
      {"comm", e.comm},
      {"exe", e.process ? e.process->exe : ""},
      {"fd", e.fd},
      {"role", to_string(e.role)},
      {"family", e.family == 10 ? "ipv6" : "ipv4"},
      {"local", endpoint_json(e.local)},
      {"remote", endpoint_json(e.remote)},
  };
  switch (e.kind) {
    case EventKind::Data:
      j["direction"] = to_string(e.direction);
      j["syscall"] = syscall_name(e.syscall);
      j["bytes"] = e.syscall_len;
      j["chunk_offset"] = e.chunk_offset;
      if (e.has_position())
        j["stream_pos"] = e.stream_pos;
      else
        j["stream_pos"] = nullptr;
      if (e.has_sequence())
        j["tcp_seq"] = e.tcp_seq;
      else
        j["tcp_seq"] = nullptr;  // TLS plaintext the library had buffered
      j["source"] = e.source == ByteSource::TlsLibrary ? "tls" : "socket";
      j["captured"] = e.data.size();
      j["truncated"] = e.truncated();
      j["skipped"] = e.skipped();
      j["kernel_thread"] = e.kernel_thread();
      j["gap_before"] = e.gap_before;
      j["data"] = base64_encode(e.data);
      break;
    case EventKind::Connect:
      j["result"] = e.result;
      j["error"] = e.result ? errno_name(e.result) : "";
      j["duration_ns"] = e.duration_ns;
      break;
    case EventKind::Accept:
      // at_first_io: seen when the server first moved bytes, so queued_ns runs until then.
      j["at_first_io"] = e.accept_at_first_io();
      j["queued_ns"] = e.duration_ns;
      break;
    case EventKind::Close:
      j["closed_by"] = closed_by_text(e.closed_by);
      j["bytes_sent"] = e.bytes_sent;
      j["bytes_received"] = e.bytes_received;
      j["duration_ns"] = e.duration_ns;
      break;
    case EventKind::Existing:
      break;
    case EventKind::Tcp:
      j["tcp"] = {{"what", to_string(e.tcp_what)},
                  {"state", e.tcp_state},
                  {"seq", e.tcp_seq},
                  {"end_seq", e.tcp_end_seq},
                  {"segs", e.tcp_segs},
                  {"detail", e.tcp_detail},
                  {"srtt_us", e.tcp.srtt_us},
                  {"rttvar_us", e.tcp.rttvar_us},
                  {"min_rtt_us", e.tcp.min_rtt_us},
                  {"total_retrans", e.tcp.total_retrans},
                  {"bytes_acked", e.tcp.bytes_acked},
                  {"bytes_received", e.tcp.bytes_received}};
      break;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace weft::cli
