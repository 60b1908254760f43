// The console exporter: one tree per trace, even when the stitcher hands a trace over in parts.
#include <doctest/doctest.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "export/console_exporter.h"
#include "trace_fixtures.h"

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;

namespace {

// What the exporter prints, batch by batch, into memory.
class Console {
 public:
  Console() : file_(open_memstream(&data_, &size_)) { REQUIRE(file_ != nullptr); }
  ~Console() {
    std::fclose(file_);
    std::free(data_);
  }
  void send(const std::vector<Trace>& batch) {
    CHECK(exporter_.export_batch(batch).kind == exporter::ExportResult::Kind::Ok);
  }
  std::vector<std::string> lines() {
    std::fflush(file_);
    std::vector<std::string> out;
    std::istringstream in(std::string(data_, size_));
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
  exporter::ConsoleExporter exporter_{file_};
};

Span span(const std::shared_ptr<Resource>& r, uint8_t trace, uint8_t id, uint8_t parent,
          const char* name, SpanKind kind) {
  Span s;
  s.trace_id = trace::test::id<16>(trace);
  s.span_id = trace::test::id<8>(id);
  if (parent) s.parent_span_id = trace::test::id<8>(parent);
  s.name = name;
  s.kind = kind;
  s.start_ns = 1'000'000'000;
  s.end_ns = 1'002'000'000;
  s.resource = r;
  return s;
}

Trace part(std::vector<Span> spans) {
  Trace t;
  t.spans = std::move(spans);
  return t;
}

size_t count_starting(const std::vector<std::string>& lines, const std::string& prefix) {
  size_t n = 0;
  for (const auto& l : lines) n += l.starts_with(prefix);
  return n;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

const std::string kTrace = "0a1b2c3d4e5f708192a3b4c5d6e7f809";  // hex of id<16>(0x0a)

}  // namespace

TEST_CASE("console: parts of one trace in one batch print as one tree") {
  auto front = resource("front", 1), middle = resource("middle", 2);
  // Two server spans that joined one trace through wire context, their callers (SDK client
  // spans) not seen by weft: the stitcher hands them over as two parts.
  Trace a = part({span(front, 0x0a, 0x10, 0x70, "GET /a", SpanKind::Server),
                  span(front, 0x0a, 0x20, 0x10, "GET /b", SpanKind::Client)});
  Trace b = part({span(middle, 0x0a, 0x30, 0x71, "GET /b", SpanKind::Server)});
  Console console;
  console.send({a, b});
  auto lines = console.lines();
  INFO(joined(lines));
  REQUIRE(count_starting(lines, "trace ") == 1);
  CHECK(lines[0] == "trace " + kTrace + "  3 spans  2.000ms");
  CHECK(lines.size() == 4);
  CHECK(lines[1].find("front  GET /a") != std::string::npos);
  CHECK(lines[1].find("(parent 708192a3b4c5d6e7 upstream)") != std::string::npos);
  CHECK(lines[1].starts_with("├─ front  GET /a"));
  CHECK(lines[2].starts_with("│  └─ front  GET /b"));
  CHECK(lines[3].starts_with("└─ middle  GET /b"));
  CHECK(lines[3].find("middle  GET /b") != std::string::npos);
  CHECK(lines[3].find("(parent 718293a4b5c6d7e8 upstream)") != std::string::npos);
}

TEST_CASE("console: a part that arrives later says which trace and span it extends") {
  auto front = resource("front", 1), back = resource("back", 3);
  Console console;
  console.send({part({span(front, 0x0a, 0x10, 0, "GET /a", SpanKind::Server),
                      span(front, 0x0a, 0x20, 0x10, "GET /c", SpanKind::Client)})});
  console.send({part({span(resource("other", 9), 0x0b, 0x40, 0, "GET /x", SpanKind::Server)})});
  // A late server span whose caller, front's client span, left in the first part.
  console.send({part({span(back, 0x0a, 0x30, 0x20, "GET /c", SpanKind::Server)})});
  auto lines = console.lines();
  INFO(joined(lines));
  CHECK(count_starting(lines, "trace " + kTrace + "  3 spans") == 0);
  CHECK(count_starting(lines, "trace " + kTrace + "  2 spans") == 1);
  CHECK(count_starting(lines, "trace " + kTrace + "  continued: 1 more span") == 1);
  CHECK(count_starting(lines, "trace ") == 3);
  const std::string& last = lines.back();
  CHECK(last.find("back  GET /c") != std::string::npos);
  CHECK(last.find("(parent 2031425364758697: front GET /c, printed above)") != std::string::npos);
}

TEST_CASE("console: one whole trace prints as before") {
  Console console;
  console.send({sample_trace(resource("api", 1), resource("db", 2))});
  auto lines = console.lines();
  INFO(joined(lines));
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].starts_with("trace 0a1b2c3d4e5f708192a3b4c5d6e7f809  3 spans  100.000ms"));
  CHECK(lines[1] == "└─ api  GET /users/{id}  200  100.000ms  server");
  CHECK(lines[2] == "   └─ api  POST /orders  -1  100.000ms  client  ERROR");
  CHECK(lines[3] == "      └─ db  POST /orders  -  100.000ms  server");
}
