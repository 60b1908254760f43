// `weft net`'s model: one row per TCP connection weft sees, with what the kernel's TCP did to it
// (net::TcpFacts) and what weft measured itself (bytes each way, receive-queue waits, age).
// A closed connection is in one more round with its final figures, then forgotten. No I/O:
// src/cli/net_command.cpp shows the rounds. docs/network.md, `weft net`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/tcp_facts.h"
#include "weft/event.h"

namespace weft::net {

struct NetRow {
  uint64_t cookie = 0;
  uint32_t pid = 0;
  std::string comm;
  Role role = Role::Unknown;
  Endpoint local;
  Endpoint remote;
  bool closed = false;
  // Since the SYN was sent (client) or the handshake completed (server); for a connection open
  // before weft started, since weft first saw it (age_from_open false). At close: the lifetime.
  uint64_t age_ns = 0;
  bool age_from_open = false;
  bool connect_seen = false;  // a client connect weft saw: its time and result
  uint64_t connect_ns = 0;
  int32_t connect_result = 0;
  // Smoothed RTT, latest and the range seen, and the kernel's windowed minimum (microseconds,
  // 0: no sample yet).
  uint32_t srtt_us = 0;
  uint32_t srtt_low_us = 0;
  uint32_t srtt_high_us = 0;
  uint32_t min_rtt_us = 0;
  uint64_t retransmits = 0;  // segments sent again, handshake included (RetransSegs' count)
  uint32_t handshake_retransmits = 0;
  uint32_t resets_sent = 0;
  uint32_t resets_received = 0;
  // Receive-queue waits (server connections, with --receive-queue-wait): batches of arrived
  // bytes and how long they waited for the application's read.
  uint64_t receive_queue_waits = 0;
  uint64_t receive_queue_wait_max_ns = 0;
  uint64_t receive_queue_wait_total_ns = 0;
  // Bytes the application moved (syscalls on the socket; at close the kernel-side totals).
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  // The kernel's tcp_sock.bytes_acked / bytes_received at its latest TCP record (0: none yet).
  uint64_t tcp_bytes_acked = 0;
  uint64_t tcp_bytes_received = 0;
};

// The fields `weft net --sort` takes, in the order --help lists them.
const std::vector<std::string_view>& sort_fields();
bool is_sort_field(std::string_view field);
// Largest first (names and addresses: alphabetical); ties by cookie, so rounds are stable.
void sort_rows(std::vector<NetRow>& rows, std::string_view field);

class ConnectionTable {
 public:
  explicit ConnectionTable(size_t max_connections = 65536)
      : facts_(max_connections), max_connections_(max_connections) {}

  void on_event(const Event& e);
  // Every connection now: open ones and those closed since the last round, which then go.
  std::vector<NetRow> take_round(uint64_t now_mono_ns);
  // Connections forgotten early to stay within max_connections.
  uint64_t evicted() const { return evicted_; }

 private:
  struct Seen {
    uint32_t pid = 0;
    std::string comm;
    Role role = Role::Unknown;
    Endpoint local;
    Endpoint remote;
    uint64_t start_ns = 0;
    bool start_is_open = false;
    bool closed = false;
    uint64_t lifetime_ns = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    uint64_t tcp_bytes_acked = 0;
    uint64_t tcp_bytes_received = 0;
    uint64_t arrival_ns = 0;  // bytes waiting since then for the next read; 0: none
    uint64_t waits = 0;
    uint64_t wait_max_ns = 0;
    uint64_t wait_total_ns = 0;
  };

  Seen* seen_for(const Event& e);
  static void on_data(Seen& s, const Event& e);
  NetRow row_of(uint64_t cookie, const Seen& s, uint64_t now_mono_ns) const;

  TcpFacts facts_;
  size_t max_connections_;
  std::unordered_map<uint64_t, Seen> seen_;
  uint64_t evicted_ = 0;
};

}  // namespace weft::net
