// RecordWriter/RecordReader: what `weft record` writes must replay exactly.
#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "capture/record_file.h"
#include "test_helpers.h"

namespace weft::capture {
namespace {

using test::base_event;
using test::bytes;
using test::check_same_record;
using test::data_event;

constexpr int64_t kWallOffset = 1'700'000'000'000'000'000;
constexpr size_t kFileHeaderBytes = 32;   // magic, version, ABI, offset, reserved
constexpr size_t kRecordHeaderBytes = 8;  // u32 type, u32 length
constexpr size_t kLossRecordBytes = kRecordHeaderBytes + 8 * WEFT_LOSS_COUNT;

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/weft-unit-XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

void append_record(const std::string& path, uint32_t type, const std::vector<uint8_t>& body) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  uint32_t head[2] = {type, static_cast<uint32_t>(body.size())};
  out.write(reinterpret_cast<const char*>(head), sizeof(head));
  out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
}

// Writes a complete recording the way `weft record` does: events, then the loss counters.
void write_recording(const std::string& path, const std::vector<Event>& events,
                     const SourceStats& losses = {}, int64_t wall_offset = kWallOffset) {
  std::string error;
  std::unique_ptr<RecordWriter> writer = RecordWriter::create(path, wall_offset, &error);
  REQUIRE_MESSAGE(writer, error);
  for (const Event& e : events) writer->write(e);
  writer->write_losses(losses);
  REQUIRE_MESSAGE(writer->finish(&error), error);
}

std::unique_ptr<RecordReader> open_ok(const std::string& path) {
  std::string error;
  std::unique_ptr<RecordReader> reader = RecordReader::open(path, &error);
  REQUIRE_MESSAGE(reader, error);
  return reader;
}

// Polls until the reader says it is done; fails the test if it never does.
std::vector<Event> read_all(RecordReader& reader) {
  std::vector<Event> events;
  for (int polls = 0;; ++polls) {
    REQUIRE(polls < 1000);
    if (!reader.poll(std::chrono::milliseconds(0), [&](Event&& e) { events.push_back(e); })) break;
  }
  return events;
}

std::string open_error(const std::string& path) {
  std::string error;
  CHECK(RecordReader::open(path, &error) == nullptr);
  CHECK_FALSE(error.empty());
  return error;
}

std::shared_ptr<const ProcessInfo> process(uint32_t pid, const std::string& exe,
                                           const std::string& service = "",
                                           const std::string& command_line = "",
                                           const std::string& runtime = "") {
  auto info = std::make_shared<ProcessInfo>();
  info->pid = pid;
  info->exe = exe;
  info->service_name = service;
  info->command_line = command_line;
  info->runtime = runtime;
  return info;
}

// A short connection: connect, a request, a truncated response chunk, close; plus an
// event from a second process whose executable is unknown.
std::vector<Event> sample_events() {
  auto curl = process(4242, "/usr/bin/curl", "frontend", "curl -s http://10.1.2.3/", "libuv");
  std::vector<Event> events;

  Event connect = base_event(EventKind::Connect, 11, 1'000);
  connect.result = -111;
  connect.duration_ns = 300;
  events.push_back(connect);

  Event request = data_event(11, 2'000, Direction::Send, 0, 18);
  request.tcp_seq = 1000;
  request.data = bytes("GET / HTTP/1.1\r\n\r\n");
  events.push_back(request);

  Event response = data_event(11, 3'000, Direction::Recv, 0, 9000);
  response.syscall = WEFT_SYS_RECVMSG;
  response.flags = WEFT_DATA_TRUNCATED;
  response.data = {0x00, 0xff, 0x10, 0x80};
  events.push_back(response);

  Event close = base_event(EventKind::Close, 11, 4'000);
  close.closed_by = 1;
  close.bytes_sent = 18;
  close.bytes_received = 9000;
  events.push_back(close);

  for (Event& e : events) e.process = curl;

  Event other = base_event(EventKind::Accept, 12, 5'000);
  other.pid = 7;
  other.comm = "nginx";
  other.role = Role::Server;
  events.push_back(other);
  return events;
}

TEST_CASE("record file: events, wall clock, processes and losses survive a round trip") {
  TempDir dir;
  std::string path = dir.file("trace.weft");
  std::vector<Event> written = sample_events();
  SourceStats losses;
  losses.kernel = {5, 4, 3, 2, 1};
  write_recording(path, written, losses);

  std::unique_ptr<RecordReader> reader = open_ok(path);
  CHECK(reader->wall_offset_ns() == kWallOffset);
  std::vector<Event> read = read_all(*reader);
  CHECK(reader->error().empty());

  REQUIRE(read.size() == written.size());
  for (size_t i = 0; i < read.size(); ++i) {
    CAPTURE(i);
    check_same_record(read[i], written[i]);
    CHECK(read[i].wall_ns == read[i].mono_ns + static_cast<uint64_t>(kWallOffset));
  }
  for (size_t i = 0; i < 4; ++i) {
    CAPTURE(i);
    REQUIRE(read[i].process != nullptr);
    CHECK(read[i].process->pid == 4242);
    CHECK(read[i].process->exe == "/usr/bin/curl");
    CHECK(read[i].process->service_name == "frontend");
    CHECK(read[i].process->command_line == "curl -s http://10.1.2.3/");
    CHECK(read[i].process->runtime == "libuv");  // replays judge inference as the live run did
  }
  CHECK(read[4].process == nullptr);  // written without process info

  SourceStats stats = reader->stats();
  CHECK(stats.kernel == losses.kernel);
  CHECK(stats.records == written.size());
  CHECK(stats.malformed == 0);
  CHECK(reader->now_mono_ns() == 5'000);
}

TEST_CASE("record file: a negative wall offset is applied too") {
  TempDir dir;
  std::string path = dir.file("trace.weft");
  Event e = data_event(1, 10'000, Direction::Send, 0, 3);
  e.data = bytes("abc");
  write_recording(path, {e}, {}, -4'000);
  std::unique_ptr<RecordReader> reader = open_ok(path);
  CHECK(reader->wall_offset_ns() == -4'000);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 1);
  CHECK(read[0].wall_ns == 6'000);
  CHECK(reader->stats().kernel == std::array<uint64_t, WEFT_LOSS_COUNT>{});
}

TEST_CASE("record file: the process record is written once per pid") {
  TempDir dir;
  std::string once = dir.file("once.weft");
  std::string twice = dir.file("twice.weft");
  Event e = base_event(EventKind::Existing, 1, 1);
  e.process = process(e.pid, "/bin/sh");
  write_recording(once, {e});
  write_recording(twice, {e, e});
  // The second copy of the event adds its event record and nothing else.
  size_t record = kRecordHeaderBytes + sizeof(weft_conn_event);
  CHECK(read_bytes(twice).size() == read_bytes(once).size() + record);

  std::unique_ptr<RecordReader> reader = open_ok(twice);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 2);
  REQUIRE(read[1].process != nullptr);
  CHECK(read[1].process->exe == "/bin/sh");
}

TEST_CASE("record file: a process record holding only the exe is read") {
  // What writers before service names and command lines wrote: u32 pid, then the exe.
  TempDir dir;
  std::string path = dir.file("old.weft");
  write_recording(path, {});
  Event e = base_event(EventKind::Existing, 1, 1);
  std::vector<uint8_t> body(4);
  std::memcpy(body.data(), &e.pid, 4);
  for (uint8_t c : bytes("/usr/sbin/nginx")) body.push_back(c);
  append_record(path, 2, body);
  append_record(path, 1, encode_event(e));

  std::unique_ptr<RecordReader> reader = open_ok(path);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 1);
  REQUIRE(read[0].process != nullptr);
  CHECK(read[0].process->pid == e.pid);
  CHECK(read[0].process->exe == "/usr/sbin/nginx");
  CHECK(read[0].process->service_name.empty());
  CHECK(read[0].process->command_line.empty());
}

// Regression (was a bug) (src/capture/record_file.cpp, RecordWriter::write): the process record is
// written only the first time a pid shows (pids_written_), but live capture re-resolves a pid's
// ProcessInfo when its comm changes (an exec, see ProcessResolver::resolve). Events after the exec
// carry the new exe live, yet replay attributes them to the exe from before the exec. The reader
// already handles a second process record for a pid (latest wins); the writer never emits it.
TEST_CASE("record file: a process that execs keeps its new exe on replay") {
  TempDir dir;
  std::string path = dir.file("exec.weft");
  Event before = base_event(EventKind::Existing, 1, 1);
  before.comm = "sh";
  before.process = process(before.pid, "/bin/sh");
  Event after = data_event(1, 2, Direction::Send, 0, 1);
  after.comm = "python3";
  after.process = process(after.pid, "/usr/bin/python3");
  write_recording(path, {before, after});

  std::unique_ptr<RecordReader> reader = open_ok(path);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 2);
  REQUIRE(read[0].process != nullptr);
  CHECK(read[0].process->exe == "/bin/sh");
  REQUIRE(read[1].process != nullptr);
  CHECK(read[1].process->exe == "/usr/bin/python3");  // actual: "/bin/sh"
}

TEST_CASE("record file: a recording larger than one poll batch is delivered whole and in order") {
  TempDir dir;
  std::string path = dir.file("big.weft");
  std::vector<Event> written;
  for (uint32_t i = 0; i < 10'000; ++i) {
    Event e = data_event(1, 1'000 + i, Direction::Send, i, 1);
    e.data = {static_cast<uint8_t>(i)};
    written.push_back(std::move(e));
  }
  write_recording(path, written);

  std::unique_ptr<RecordReader> reader = open_ok(path);
  size_t first_poll = 0;
  CHECK(reader->poll(std::chrono::milliseconds(0), [&](Event&&) { ++first_poll; }));
  CHECK(first_poll > 0);
  CHECK(first_poll < written.size());
  std::vector<Event> rest = read_all(*reader);
  REQUIRE(first_poll + rest.size() == written.size());
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i].stream_pos != first_poll + i) {
      FAIL_CHECK("event " << i << " out of order: stream_pos " << rest[i].stream_pos);
      break;
    }
  }
  CHECK(reader->error().empty());
  CHECK(reader->stats().records == written.size());
  // Exhausted: further polls keep saying so.
  CHECK_FALSE(reader->poll(std::chrono::milliseconds(0), [](Event&&) {}));
}

TEST_CASE("record file: a recording without events has none and no error") {
  TempDir dir;
  std::string path = dir.file("empty.weft");
  write_recording(path, {});
  CHECK(read_bytes(path).size() == kFileHeaderBytes + kLossRecordBytes);
  std::unique_ptr<RecordReader> reader = open_ok(path);
  CHECK(read_all(*reader).empty());
  CHECK(reader->error().empty());
}

TEST_CASE("record file: open refuses missing, foreign, empty, cut and other-version files") {
  TempDir dir;
  std::string path = dir.file("bad.weft");

  SUBCASE("missing") {
    std::string error = open_error(path);
    CHECK(error.find(path) != std::string::npos);
    CHECK(error.find("No such file") != std::string::npos);
  }
  SUBCASE("a text file") {
    write_bytes(path, bytes("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"));
    std::string error = open_error(path);
    CHECK(error.find(path) != std::string::npos);
    CHECK(error.find("not a weft recording") != std::string::npos);
  }
  SUBCASE("an empty file") {
    write_bytes(path, {});
    CHECK(open_error(path).find("not a weft recording") != std::string::npos);
  }
  SUBCASE("cut inside the magic") {
    write_bytes(path, bytes("WEFT"));
    CHECK(open_error(path).find("not a weft recording") != std::string::npos);
  }
  SUBCASE("cut inside the header") {
    write_recording(path, sample_events());
    std::vector<uint8_t> raw = read_bytes(path);
    raw.resize(20);
    write_bytes(path, raw);
    std::string error = open_error(path);
    CHECK(error.find("truncated") != std::string::npos);
    CHECK(error.find("header") != std::string::npos);
  }
  SUBCASE("another file version") {
    write_recording(path, sample_events());
    std::vector<uint8_t> raw = read_bytes(path);
    uint32_t version = 7;
    std::memcpy(raw.data() + 8, &version, sizeof(version));
    write_bytes(path, raw);
    std::string error = open_error(path);
    CHECK(error.find("version 7 recording") != std::string::npos);
    CHECK(error.find("reads version " + std::to_string(kRecordFileVersion)) != std::string::npos);
  }
  SUBCASE("another event ABI") {
    write_recording(path, sample_events());
    std::vector<uint8_t> raw = read_bytes(path);
    uint32_t abi = 99;
    std::memcpy(raw.data() + 12, &abi, sizeof(abi));
    write_bytes(path, raw);
    CHECK(open_error(path).find("event ABI 99") != std::string::npos);
  }
}

TEST_CASE("record file: a recording cut short delivers what precedes the cut and reports it") {
  TempDir dir;
  std::string path = dir.file("cut.weft");
  std::vector<Event> written = sample_events();
  written.resize(3);  // connect, request, response: no process other than the first pid
  write_recording(path, written);
  std::vector<uint8_t> raw = read_bytes(path);
  std::string expected_error;

  SUBCASE("inside the last record's body") {
    raw.resize(raw.size() - kLossRecordBytes - 3);
    expected_error = "the last record is incomplete";
  }
  SUBCASE("inside the last record's header") {
    size_t last = kRecordHeaderBytes + sizeof(weft_data_event) + written[2].data.size();
    raw.resize(raw.size() - kLossRecordBytes - last + 5);
    expected_error = "bad record header";
  }
  write_bytes(path, raw);

  std::unique_ptr<RecordReader> reader = open_ok(path);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 2);
  check_same_record(read[0], written[0]);
  check_same_record(read[1], written[1]);
  CHECK(reader->error().find(path) != std::string::npos);
  CHECK(reader->error().find(expected_error) != std::string::npos);
}

TEST_CASE("record file: bad and unknown records are counted and skipped") {
  TempDir dir;
  std::string path = dir.file("odd.weft");
  Event first = data_event(1, 100, Direction::Send, 0, 2);
  first.data = bytes("hi");
  Event last = base_event(EventKind::Close, 1, 200);
  write_recording(path, {first});
  std::vector<uint8_t> bad_event = encode_event(first);
  bad_event.pop_back();  // captured no longer matches
  append_record(path, 1, bad_event);
  append_record(path, 42, bytes("from a newer weft"));
  append_record(path, 1, encode_event(last));

  std::unique_ptr<RecordReader> reader = open_ok(path);
  std::vector<Event> read = read_all(*reader);
  REQUIRE(read.size() == 2);
  check_same_record(read[0], first);
  check_same_record(read[1], last);
  CHECK(reader->error().empty());
  CHECK(reader->stats().records == 2);
  CHECK(reader->stats().malformed == 2);
}

TEST_CASE("record file: a corrupt record length stops reading with an error") {
  TempDir dir;
  std::string path = dir.file("corrupt.weft");
  Event e = base_event(EventKind::Accept, 1, 1);
  write_recording(path, {e});
  append_record(path, 1, std::vector<uint8_t>(16, 0));
  std::vector<uint8_t> raw = read_bytes(path);
  uint32_t huge = 0xfffffff0;  // the length field of the appended record
  std::memcpy(raw.data() + raw.size() - 16 - 4, &huge, sizeof(huge));
  write_bytes(path, raw);

  std::unique_ptr<RecordReader> reader = open_ok(path);
  std::vector<Event> read = read_all(*reader);
  CHECK(read.size() == 1);
  CHECK(reader->error().find("corrupt") != std::string::npos);
}

TEST_CASE("record file: writer errors are reported") {
  std::string error;
  SUBCASE("create in a missing directory") {
    TempDir dir;
    std::string path = dir.file("no/such/dir/trace.weft");
    CHECK(RecordWriter::create(path, 0, &error) == nullptr);
    CHECK(error.find("cannot create " + path) != std::string::npos);
  }
  SUBCASE("a full device") {
    if (access("/dev/full", W_OK) != 0) return;
    std::unique_ptr<RecordWriter> writer = RecordWriter::create("/dev/full", 0, &error);
    REQUIRE_MESSAGE(writer, error);
    writer->write(base_event(EventKind::Accept, 1, 1));
    CHECK_FALSE(writer->finish(&error));
    CHECK(error.find("writing /dev/full failed") != std::string::npos);
  }
}

}  // namespace
}  // namespace weft::capture
