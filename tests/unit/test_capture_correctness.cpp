// Capture correctness without a kernel: start-up scan failures are reported, kernel-thread
// receives are never attributed to a process or an fd, and a drained source loses nothing.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "capture/event_stream.h"
#include "capture/existing_connections.h"
#include "cli/event_format.h"
#include "test_helpers.h"

namespace weft::capture {
namespace {

using test::data_event;

std::string read_all(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[512];
  while (size_t n = std::fread(buf, 1, sizeof(buf), f)) out.append(buf, n);
  return out;
}

TEST_CASE(
    "a sock_diag failure for one family is reported and the other family's connections are kept") {
  ScanSources sources;
  sources.dump = [](int family, uint32_t, std::vector<DiagSocket>& out, std::string* error) {
    if (family == AF_INET6) {
      *error = "sock_diag reply: Permission denied";
      return false;
    }
    DiagSocket s;
    s.family = AF_INET;
    s.state = 1;  // established, held by nobody in the fake /proc below
    s.cookie = 99;
    out.push_back(s);
    return true;
  };
  sources.proc_root = "/proc";
  ScanResult result = scan_existing_connections(0, 1, sources);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0] == "listing IPv6 sockets: sock_diag reply: Permission denied");
}

TEST_CASE("an unreadable /proc is reported") {
  ScanSources sources;
  sources.dump = [](int, uint32_t, std::vector<DiagSocket>&, std::string*) { return true; };
  sources.proc_root = "/nonexistent-weft-proc";
  ScanResult result = scan_existing_connections(0, 1, sources);
  REQUIRE(result.errors.size() == 1);
  CHECK(result.errors[0].find("cannot list /nonexistent-weft-proc") == 0);
  CHECK(result.errors[0].find(std::strerror(ENOENT)) != std::string::npos);
}

TEST_CASE("the real scan reports nothing when everything works") {
  ScanResult result = scan_existing_connections(0, 1);
  CHECK(result.errors.empty());
}

TEST_CASE("each scan error is printed once, saying what it means") {
  std::FILE* out = std::tmpfile();
  REQUIRE(out);
  size_t n = report_scan_errors(
      {"listing IPv4 sockets: boom", "listing IPv4 sockets: boom", "cannot list /proc: x"}, out);
  CHECK(n == 2);
  CHECK(
      read_all(out) ==
      "weft: connections open before weft started will not be traced: listing IPv4 sockets: boom\n"
      "weft: connections open before weft started will not be traced: cannot list /proc: x\n");
  std::fclose(out);
  std::FILE* quiet = std::tmpfile();
  CHECK(report_scan_errors({}, quiet) == 0);
  CHECK(read_all(quiet).empty());
  std::fclose(quiet);
}

TEST_CASE("a kernel-thread receive is decoded with no fd and no process, and shown as such") {
  Event e = data_event(5, 1000, Direction::Recv, 0, 10);
  e.flags = WEFT_DATA_KERNEL_THREAD | WEFT_DATA_LAST_CHUNK | WEFT_DATA_TRUNCATED;
  e.syscall = WEFT_SYS_READ;  // what zeroed saved registers look like: read(fd=0)
  e.fd = 0;
  e.comm = "kworker/u4:1";
  auto decoded = decode_event(encode_event(e), nullptr);
  REQUIRE(decoded);
  CHECK(decoded->kernel_thread());
  CHECK(decoded->fd == -1);
  CHECK(decoded->pid == 0);
  CHECK(decoded->tid == 0);
  std::string text = cli::format_event_text(*decoded);
  CHECK(text.find("kworker/u4:1[kernel thread]") != std::string::npos);
  CHECK(text.find("fd=-1") != std::string::npos);
  auto json = nlohmann::json::parse(cli::format_event_json(*decoded));
  CHECK(json["kernel_thread"] == true);
  CHECK(json["fd"] == -1);
  CHECK(json["pid"] == 0);
}

TEST_CASE("a record outside any known syscall never claims an fd") {
  Event e = data_event(5, 1000, Direction::Recv, 0, 10);
  e.syscall = WEFT_SYS_UNKNOWN;
  e.fd = 0;
  auto decoded = decode_event(encode_event(e), nullptr);
  REQUIRE(decoded);
  CHECK(decoded->fd == -1);
  CHECK(decoded->pid == e.pid);  // a process's io_uring worker: still its process
  CHECK_FALSE(decoded->kernel_thread());
  auto json = nlohmann::json::parse(cli::format_event_json(*decoded));
  CHECK(json["kernel_thread"] == false);
}

// A live source whose last records are still queued when the stop comes: poll() was cut
// short, drain() must hand them over.
class QueuedSource : public EventSource {
 public:
  std::vector<Event> queued;
  bool poll(std::chrono::milliseconds, const EventSink&) override { return true; }
  uint64_t now_mono_ns() const override { return 1; }
  SourceStats stats() const override { return {}; }
  int64_t wall_offset_ns() const override { return 0; }
  size_t drain(const EventSink& sink) override {
    size_t n = queued.size();
    for (Event& e : queued) sink(std::move(e));
    queued.clear();
    return n;
  }
};

TEST_CASE("draining a stream reads what its source still holds, in order") {
  auto source = std::make_unique<QueuedSource>();
  source->queued.push_back(data_event(1, 300, Direction::Send, 10, 5));
  source->queued.push_back(data_event(1, 200, Direction::Send, 0, 10));
  EventStream stream(std::move(source));
  std::vector<uint64_t> seen;
  stream.next(std::chrono::milliseconds(0), [&](Event&& e) { seen.push_back(e.mono_ns); });
  CHECK(seen.empty());
  stream.drain([&](Event&& e) { seen.push_back(e.mono_ns); });
  CHECK(seen == std::vector<uint64_t>{200, 300});
}

// The defaults a recording keeps.
class PlainSource : public EventSource {
 public:
  bool poll(std::chrono::milliseconds, const EventSink&) override { return false; }
  uint64_t now_mono_ns() const override { return 1; }
  SourceStats stats() const override { return {}; }
  int64_t wall_offset_ns() const override { return 0; }
};

TEST_CASE("sources without a kernel accept verdicts and have nothing to drain") {
  PlainSource plain;
  EventSource& source = plain;
  source.set_verdict(1, CaptureVerdict{CaptureMode::Ignore});  // nothing to tell, nothing fails
  CHECK(source.drain([](Event&&) {}) == 0);
}

}  // namespace
}  // namespace weft::capture
