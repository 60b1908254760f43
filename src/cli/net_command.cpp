// `weft net`: a live per-connection view of TCP health (RTT, retransmissions, resets, queue
// waits, connect time, bytes, age), as a table refreshed in place on a terminal, as plain
// rounds of text when stdout is not one, or one JSON object per connection per round.
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "capture/event_stream.h"
#include "cli/commands.h"
#include "cli/event_format.h"
#include "cli/pipeline.h"
#include "net/connection_table.h"

namespace weft::cli {
namespace {

// Clears the screen and puts the cursor home: each round replaces the last, like top.
constexpr const char* kRedraw = "\x1b[H\x1b[2J";

std::string error_name(int32_t result) {
  if (result == 0) return "";
  const char* name = strerrorname_np(-result);
  return name ? name : "errno " + std::to_string(-result);
}

nlohmann::json endpoint_json(const Endpoint& e) {
  return {{"address", e.address()}, {"port", e.port}};
}

// Microseconds as seconds, or null when there is no sample.
nlohmann::json seconds_or_null(uint64_t us) {
  return us ? nlohmann::json(static_cast<double>(us) / 1e6) : nlohmann::json(nullptr);
}

std::string row_json(const net::NetRow& r, const std::string& time) {
  nlohmann::json j = {
      {"time", time},
      {"cookie", r.cookie},
      {"pid", r.pid},
      {"comm", r.comm},
      {"role", to_string(r.role)},
      {"local", endpoint_json(r.local)},
      {"peer", endpoint_json(r.remote)},
      {"state", r.closed ? "closed" : "open"},
      {"age_s", static_cast<double>(r.age_ns) / 1e9},
      {"age_from_open", r.age_from_open},
      {"rtt_s", seconds_or_null(r.srtt_us)},
      {"rtt_low_s", seconds_or_null(r.srtt_low_us)},
      {"rtt_high_s", seconds_or_null(r.srtt_high_us)},
      {"min_rtt_s", seconds_or_null(r.min_rtt_us)},
      {"retransmits", r.retransmits},
      {"handshake_retransmits", r.handshake_retransmits},
      {"resets_sent", r.resets_sent},
      {"resets_received", r.resets_received},
      {"receive_queue_waits", r.receive_queue_waits},
      {"receive_queue_wait_max_s", static_cast<double>(r.receive_queue_wait_max_ns) / 1e9},
      {"receive_queue_wait_total_s", static_cast<double>(r.receive_queue_wait_total_ns) / 1e9},
      {"bytes_sent", r.bytes_sent},
      {"bytes_received", r.bytes_received},
      {"tcp_bytes_acked", r.tcp_bytes_acked},
      {"tcp_bytes_received", r.tcp_bytes_received},
  };
  if (r.connect_seen) {
    j["connect_s"] = static_cast<double>(r.connect_ns) / 1e9;
    j["connect_error"] = error_name(r.connect_result);
  } else {
    j["connect_s"] = nullptr;
    j["connect_error"] = nullptr;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// "850us", "12.3ms", "1.52s": three significant digits at most.
std::string short_duration(uint64_t ns) {
  char buf[32];
  double us = static_cast<double>(ns) / 1e3;
  if (us < 1000)
    std::snprintf(buf, sizeof(buf), "%.0fus", us);
  else if (us < 1e6)
    std::snprintf(buf, sizeof(buf), "%.1fms", us / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.2fs", us / 1e6);
  return buf;
}

std::string short_bytes(uint64_t n) {
  char buf[32];
  if (n < 10'000)
    std::snprintf(buf, sizeof(buf), "%llu", static_cast<unsigned long long>(n));
  else if (n < 10'000'000)
    std::snprintf(buf, sizeof(buf), "%.1fK", static_cast<double>(n) / 1024);
  else
    std::snprintf(buf, sizeof(buf), "%.1fM", static_cast<double>(n) / (1024 * 1024));
  return buf;
}

std::string rtt_text(const net::NetRow& r) {
  if (!r.srtt_us) return "-";
  std::string out = short_duration(uint64_t{r.srtt_us} * 1000);
  if (r.srtt_low_us != r.srtt_high_us)
    out += " (" + short_duration(uint64_t{r.srtt_low_us} * 1000) + "-" +
           short_duration(uint64_t{r.srtt_high_us} * 1000) + ")";
  return out;
}

std::string connect_text(const net::NetRow& r) {
  if (!r.connect_seen) return "-";
  std::string out = short_duration(r.connect_ns);
  if (r.connect_result) out += " " + error_name(r.connect_result);
  return out;
}

std::string wait_text(const net::NetRow& r) {
  if (!r.receive_queue_waits) return "-";
  return std::to_string(r.receive_queue_waits) + "/" + short_duration(r.receive_queue_wait_max_ns);
}

constexpr const char* kHeaderFormat =
    "%-7s %-15s %-6s %-21s %-21s %-6s %-22s %5s %5s %-13s %-15s %7s %7s %8s\n";

std::string row_text(const net::NetRow& r) {
  char buf[512];
  std::string resets = std::to_string(r.resets_sent) + "/" + std::to_string(r.resets_received);
  std::snprintf(buf, sizeof(buf), kHeaderFormat, std::to_string(r.pid).c_str(), r.comm.c_str(),
                to_string(r.role), r.local.to_string().c_str(), r.remote.to_string().c_str(),
                r.closed ? "closed" : "open", rtt_text(r).c_str(),
                std::to_string(r.retransmits).c_str(), resets.c_str(), wait_text(r).c_str(),
                connect_text(r).c_str(), short_bytes(r.bytes_sent).c_str(),
                short_bytes(r.bytes_received).c_str(), short_duration(r.age_ns).c_str());
  return buf;
}

std::string header_text() {
  char buf[512];
  std::snprintf(buf, sizeof(buf), kHeaderFormat, "PID", "COMM", "ROLE", "LOCAL", "PEER", "STATE",
                "RTT (RANGE)", "RETR", "RST", "RQWAIT N/MAX", "CONNECT", "TX", "RX", "AGE");
  return buf;
}

// Rows a terminal shows below the title and the header; 0: no limit (not a terminal).
size_t terminal_rows() {
  struct winsize ws {};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row < 4) return 0;
  return ws.ws_row - 3;
}

struct Printer {
  const NetOptions& options;
  int64_t wall_offset_ns;
  bool terminal;

  void round(std::vector<net::NetRow> rows, uint64_t now_mono_ns, uint64_t evicted) const {
    net::sort_rows(rows, options.sort);
    std::string time = format_wall_time(now_mono_ns + wall_offset_ns, true);
    std::string out;
    if (options.json) {
      for (const net::NetRow& r : rows) out += row_json(r, time) + "\n";
    } else {
      if (terminal) out += kRedraw;
      out += "weft net " + time + ": " + std::to_string(rows.size()) + " connections, sorted by " +
             options.sort + (evicted ? ", " + std::to_string(evicted) + " evicted" : "") + "\n";
      out += header_text();
      size_t limit = terminal ? terminal_rows() : 0;
      for (size_t i = 0; i < rows.size(); ++i) {
        if (limit && i + 1 >= limit) {
          out += "... " + std::to_string(rows.size() - i) + " more\n";
          break;
        }
        out += row_text(rows[i]);
      }
      if (!terminal) out += "\n";
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
};

}  // namespace

std::string validate(const NetOptions& options) {
  if (net::is_sort_field(options.sort)) return "";
  std::string fields;
  for (std::string_view f : net::sort_fields())
    fields += (fields.empty() ? "" : ", ") + std::string(f);
  return "--sort: unknown field '" + options.sort + "' (one of: " + fields + ")";
}

int run_net(const NetOptions& options) {
  OpenedSource opened = open_source(options.replay_path, options.capture, "net");
  if (!opened.source) return opened.exit_code;
  Printer printer{options, opened.source->wall_offset_ns(), !options.json && isatty(STDOUT_FILENO)};
  capture::EventStream stream(std::move(opened.source));
  net::ConnectionTable table;
  const auto interval_ns = static_cast<uint64_t>(options.interval_s * 1e9);
  uint64_t last_round = 0, now = 0;
  pump(
      stream, options.duration_s,
      [&](Event&& e) {
        if (options.filter.matches(e)) table.on_event(e);
      },
      [&](uint64_t now_mono) {
        now = now_mono;
        if (last_round == 0) last_round = now_mono;  // the first round comes one interval in
        if (now_mono - last_round < interval_ns) return;
        printer.round(table.take_round(now_mono), now_mono, table.evicted());
        last_round = now_mono;
      });
  // The last figures, closes included, whenever the run ends.
  if (now) printer.round(table.take_round(now), now, table.evicted());
  print_loss_summary("net", stream.source_stats(), stream.stream_stats());
  return finish_source(opened);
}

}  // namespace weft::cli
