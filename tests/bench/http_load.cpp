// weft_http_load: an open-loop HTTP/1.1 load generator for benchmarks (not a test).
//
//   weft_http_load HOST PORT PATH RATE CONNECTIONS SECONDS
//
// Sends RATE requests per second in total, spread evenly over CONNECTIONS keep-alive
// connections, for SECONDS, and prints one JSON line: requests sent and answered, answers that
// were not 2xx, the rate achieved, and latency percentiles in microseconds. Each request has a
// scheduled send time; latency is measured from that time, not from when the request could
// actually be written, so a server (or a tracer) that falls behind shows its queueing in the
// percentiles instead of silently lowering the rate (closed-loop tools such as wrk hide it).
// wrk cannot hold a fixed rate, which the latency and no-loss benchmarks need.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

uint64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

struct Connection {
  int fd = -1;
  std::deque<uint64_t> scheduled;  // send times of requests not yet answered, oldest first
  size_t written = 0;              // requests of `scheduled` already written
  std::string in;                  // bytes of the response being read
};

struct Results {
  uint64_t sent = 0;
  uint64_t answered = 0;
  uint64_t not_2xx = 0;
  uint64_t errors = 0;
  uint64_t reconnects = 0;
  std::vector<uint32_t> latency_us;
};

int connect_to(const char* host, int port) {
  // Connected before it is made non-blocking: the first request is written at once.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (fd < 0 || inet_pton(AF_INET, host, &addr.sin_addr) != 1) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// One whole response at the front of `in`: its length, or 0 while incomplete. Responses are
// expected to carry Content-Length (nginx's static files do); anything else counts as an error.
size_t response_length(const std::string& in, bool* ok, int* status) {
  size_t head_end = in.find("\r\n\r\n");
  if (head_end == std::string::npos) return 0;
  *status = in.size() > 12 ? std::atoi(in.c_str() + 9) : 0;
  size_t cl = in.find("Content-Length:");
  if (cl == std::string::npos || cl > head_end) cl = in.find("content-length:");
  if (cl == std::string::npos || cl > head_end) {
    *ok = false;
    return head_end + 4;
  }
  size_t body = std::strtoull(in.c_str() + cl + 15, nullptr, 10);
  size_t total = head_end + 4 + body;
  return in.size() >= total ? total : 0;
}

// Returns false when the server closed the connection (nginx does after keepalive_requests).
bool read_answers(Connection& c, Results& r, uint64_t t) {
  char buf[65536];
  bool open = true;
  for (;;) {
    ssize_t n = recv(c.fd, buf, sizeof(buf), 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    open = false;
    break;
  }
  for (;;) {
    bool ok = true;
    int status = 0;
    size_t len = response_length(c.in, &ok, &status);
    if (len == 0 || c.scheduled.empty() || c.written == 0) break;
    c.in.erase(0, len);
    uint64_t sched = c.scheduled.front();
    c.scheduled.pop_front();
    --c.written;
    ++r.answered;
    if (!ok) ++r.errors;
    if (status < 200 || status > 299) ++r.not_2xx;
    r.latency_us.push_back(
        static_cast<uint32_t>(std::min<uint64_t>((t - sched) / 1000, UINT32_MAX)));
  }
  return open;
}

// A closed connection is opened again, as real clients do; a request written but unanswered on
// it is written again on the new one and its latency still counts from its scheduled time.
bool reopen(Connection& c, int ep, uint64_t index, const char* host, int port, Results& r) {
  epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
  close(c.fd);
  c.in.clear();
  c.written = 0;
  ++r.reconnects;
  c.fd = connect_to(host, port);
  if (c.fd < 0) return false;
  epoll_event ev{EPOLLIN, {.u64 = index}};
  epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  return true;
}

// Writes the next due request if the previous one on this connection has been answered: one
// request in flight per connection (HTTP/1.1 without pipelining, as real clients do).
void write_due(Connection& c, const std::string& request, Results& r) {
  if (c.written > 0 || c.scheduled.empty()) return;
  ssize_t n = send(c.fd, request.data(), request.size(), MSG_NOSIGNAL);
  if (n == static_cast<ssize_t>(request.size())) {
    c.written = 1;
    ++r.sent;
  } else if (!(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
    ++r.errors;
  }
}

uint32_t percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s HOST PORT PATH RATE CONNECTIONS SECONDS\n", argv[0]);
    return 2;
  }
  const char* host = argv[1];
  int port = std::atoi(argv[2]);
  std::string request = std::string("GET ") + argv[3] + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n";
  double rate = std::atof(argv[4]);
  size_t conns = static_cast<size_t>(std::atoi(argv[5]));
  double seconds = std::atof(argv[6]);
  if (rate <= 0 || conns == 0 || seconds <= 0) {
    std::fprintf(stderr, "weft_http_load: RATE, CONNECTIONS and SECONDS must be positive\n");
    return 2;
  }

  int ep = epoll_create1(0);
  std::vector<Connection> cs(conns);
  for (size_t i = 0; i < conns; ++i) {
    cs[i].fd = connect_to(host, port);
    if (cs[i].fd < 0) {
      std::perror("weft_http_load: connect");
      return 1;
    }
    epoll_event ev{EPOLLIN, {.u64 = i}};
    epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
  }

  Results r;
  r.latency_us.reserve(static_cast<size_t>(rate * seconds) + 16);
  const uint64_t interval_ns = static_cast<uint64_t>(1e9 / rate);
  const uint64_t total = static_cast<uint64_t>(rate * seconds);
  const uint64_t start = now_ns() + 1'000'000;
  uint64_t scheduled = 0;
  uint64_t drain_until = start + static_cast<uint64_t>(seconds * 1e9) + 2'000'000'000ull;
  std::vector<epoll_event> events(conns);
  for (;;) {
    uint64_t t = now_ns();
    while (scheduled < total && start + scheduled * interval_ns <= t) {
      Connection& c = cs[scheduled % conns];
      c.scheduled.push_back(start + scheduled * interval_ns);
      write_due(c, request, r);
      ++scheduled;
    }
    if (scheduled == total && r.answered + r.errors >= total) break;
    if (t > drain_until) break;
    uint64_t next = scheduled < total ? start + scheduled * interval_ns : t + 10'000'000;
    int timeout_ms = next > t ? static_cast<int>((next - t) / 1'000'000) : 0;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    t = now_ns();
    for (int i = 0; i < n; ++i) {
      Connection& c = cs[events[i].data.u64];
      if (!read_answers(c, r, t) && !reopen(c, ep, events[i].data.u64, host, port, r)) {
        std::perror("weft_http_load: reconnect");
        return 1;
      }
      write_due(c, request, r);
    }
  }
  uint64_t elapsed = now_ns() - start;
  uint64_t unanswered = total - std::min(total, r.answered);
  std::printf(
      "{\"scheduled\": %llu, \"sent\": %llu, \"answered\": %llu, \"unanswered\": %llu, "
      "\"not_2xx\": %llu, \"errors\": %llu, \"reconnects\": %llu, \"rate\": %.0f, \"p50_us\": %u, "
      "\"p90_us\": %u, "
      "\"p99_us\": %u, \"p999_us\": %u, \"max_us\": %u}\n",
      static_cast<unsigned long long>(total), static_cast<unsigned long long>(r.sent),
      static_cast<unsigned long long>(r.answered), static_cast<unsigned long long>(unanswered),
      static_cast<unsigned long long>(r.not_2xx), static_cast<unsigned long long>(r.errors),
      static_cast<unsigned long long>(r.reconnects),
      static_cast<double>(r.answered) * 1e9 / static_cast<double>(elapsed),
      percentile(r.latency_us, 0.50), percentile(r.latency_us, 0.90),
      percentile(r.latency_us, 0.99), percentile(r.latency_us, 0.999),
      percentile(r.latency_us, 1.0));
  for (auto& c : cs) close(c.fd);
  return r.errors == 0 && r.not_2xx == 0 && unanswered == 0 ? 0 : 1;
}
