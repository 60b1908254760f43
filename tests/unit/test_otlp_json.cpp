// OTLP/JSON encoding of traces and the file exporter.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "export/otlp_json.h"
#include "trace_fixtures.h"

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;
using nlohmann::json;

namespace {

const json* attribute(const json& attrs, const std::string& key) {
  for (const auto& a : attrs)
    if (a.at("key") == key) return &a.at("value");
  return nullptr;
}

bool lower_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

TEST_CASE("otlp json: structure, ids and values") {
  auto r1 = resource("front", 100);
  auto r2 = resource("back", 300);
  std::string text = exporter::to_otlp_json(sample_trace(r1, r2));
  CHECK(text.find('\n') == std::string::npos);  // one line per request in the file format
  json j = json::parse(text);

  REQUIRE(j.contains("resourceSpans"));
  const json& rs = j["resourceSpans"];
  REQUIRE(rs.is_array());
  REQUIRE(rs.size() == 2);

  // Resources in order of first appearance, each with its spans.
  const json& front_attrs = rs[0]["resource"]["attributes"];
  REQUIRE(front_attrs.size() == 2);
  CHECK(front_attrs[0]["key"] == "service.name");
  CHECK(front_attrs[0]["value"] == json{{"stringValue", "front"}});
  CHECK(front_attrs[1]["key"] == "process.pid");
  CHECK(front_attrs[1]["value"] == json{{"intValue", "100"}});
  CHECK(*attribute(rs[1]["resource"]["attributes"], "service.name") ==
        json{{"stringValue", "back"}});
  CHECK(*attribute(rs[1]["resource"]["attributes"], "process.pid") == json{{"intValue", "300"}});

  for (const auto& r : rs) {
    REQUIRE(r["scopeSpans"].size() == 1);
    CHECK(r["scopeSpans"][0]["scope"]["name"] == "weft");
    CHECK(r["scopeSpans"][0]["scope"]["version"] == WEFT_VERSION);
  }
  const json& front = rs[0]["scopeSpans"][0]["spans"];
  const json& back = rs[1]["scopeSpans"][0]["spans"];
  REQUIRE(front.size() == 2);
  REQUIRE(back.size() == 1);

  const json& root = front[0];
  CHECK(root["traceId"] == "0a1b2c3d4e5f708192a3b4c5d6e7f809");
  CHECK(root["spanId"] == "a0b1c2d3e4f50617");
  CHECK_FALSE(root.contains("parentSpanId"));
  CHECK(root["name"] == "GET /users/{id}");
  CHECK(root["kind"].is_number_integer());
  CHECK(root["kind"] == 2);
  CHECK(root["startTimeUnixNano"] == "1700000000123456789");
  CHECK(root["endTimeUnixNano"] == "1700000000223456789");
  CHECK(root["traceState"] == "congo=t61rcWkgMzE");
  CHECK(root["status"] == json::object());
  CHECK(root["flags"] == 0x101);
  const json& attrs = root["attributes"];
  REQUIRE(attrs.size() == 4);
  CHECK(attrs[0] == json{{"key", "http.request.method"}, {"value", {{"stringValue", "GET"}}}});
  CHECK(attrs[1] == json{{"key", "http.response.status_code"}, {"value", {{"intValue", "200"}}}});
  CHECK(attrs[1]["value"]["intValue"].is_string());
  CHECK(attrs[2] == json{{"key", "weft.http.headers_truncated"}, {"value", {{"boolValue", true}}}});
  CHECK(attrs[2]["value"]["boolValue"].is_boolean());
  CHECK(attrs[3]["value"]["doubleValue"].is_number_float());
  CHECK(attrs[3]["value"]["doubleValue"] == 0.5);

  const json& child = front[1];
  CHECK(child["traceId"] == root["traceId"]);
  CHECK(child["spanId"] == "0112233445566778");
  CHECK(child["parentSpanId"] == root["spanId"]);
  CHECK(child["kind"] == 3);
  CHECK(child["status"] == json{{"code", 2}});
  CHECK(child["traceState"] == "congo=t61rcWkgMzE");
  CHECK(*attribute(child["attributes"], "http.response.status_code") == json{{"intValue", "-1"}});

  const json& remote = back[0];
  CHECK(remote["parentSpanId"] == child["spanId"]);
  CHECK(remote["kind"] == 2);
  CHECK_FALSE(remote.contains("traceState"));
  CHECK(remote["status"] == json::object());
  CHECK(remote["flags"] == 0x301);  // its parent came over the wire
}

TEST_CASE("otlp json: ids are lowercase hex of fixed length") {
  auto r = resource("svc", 1);
  Trace t;
  Span s;
  s.trace_id.fill(0xAB);
  s.span_id.fill(0xCD);
  s.resource = r;
  t.spans.push_back(s);
  json j = json::parse(exporter::to_otlp_json(t));
  const json& span = j["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  CHECK(span["traceId"] == "abababababababababababababababab");
  CHECK(span["spanId"] == "cdcdcdcdcdcdcdcd");
  CHECK(span["startTimeUnixNano"] == "0");
  CHECK(span["endTimeUnixNano"].is_string());
}

TEST_CASE("otlp json: text that is not UTF-8 does not break the encoding") {
  auto r = resource("svc", 1);
  Trace t;
  Span s;
  s.trace_id.fill(1);
  s.span_id.fill(2);
  s.resource = r;
  s.name = "GET /caf\xe9";
  s.attributes = {{"user_agent.original", std::string("bad \xff\xfe agent")}};
  t.spans.push_back(s);
  std::string text;
  CHECK_NOTHROW(text = exporter::to_otlp_json(t));
  json j = json::parse(text);
  const json& span = j["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  CHECK(span["name"].get<std::string>().starts_with("GET /caf"));
  CHECK(span["attributes"][0]["value"]["stringValue"].get<std::string>().starts_with("bad "));
}

TEST_CASE("otlp json: a stitched chain, one resource per process") {
  StitchFixture f;
  Chain ch;
  int n = 0;
  for (const auto& ex : ch.completion_order()) f.add(ex, 1000 + n++);
  f.stitcher.flush_all();
  REQUIRE(f.traces.size() == 1);
  json j = json::parse(exporter::to_otlp_json(f.traces[0]));
  const json& rs = j["resourceSpans"];
  REQUIRE(rs.size() == 3);

  std::map<std::string, json> by_span_id;
  std::string trace_id;
  int roots = 0;
  const char* services[] = {"front", "middle", "back"};
  const size_t counts[] = {2, 2, 1};
  for (size_t i = 0; i < 3; ++i) {
    INFO(services[i]);
    CHECK(*attribute(rs[i]["resource"]["attributes"], "service.name") ==
          json{{"stringValue", services[i]}});
    const json& spans = rs[i]["scopeSpans"][0]["spans"];
    REQUIRE(spans.size() == counts[i]);
    for (const auto& s : spans) {
      std::string tid = s["traceId"];
      std::string sid = s["spanId"];
      CHECK(tid.size() == 32);
      CHECK(sid.size() == 16);
      CHECK(lower_hex(tid));
      CHECK(lower_hex(sid));
      if (trace_id.empty()) trace_id = tid;
      CHECK(tid == trace_id);
      roots += !s.contains("parentSpanId");
      by_span_id[sid] = s;
    }
  }
  CHECK(roots == 1);
  REQUIRE(by_span_id.size() == 5);
  // Every parent is in the trace; kinds alternate down the chain.
  for (const auto& [sid, s] : by_span_id) {
    if (!s.contains("parentSpanId")) {
      CHECK(s["kind"] == 2);
      CHECK(s["name"] == "GET /front");
      continue;
    }
    const std::string parent_id = s["parentSpanId"].get<std::string>();
    REQUIRE(by_span_id.contains(parent_id));
    const json& parent = by_span_id[parent_id];
    CHECK(parent["kind"] != s["kind"]);
    CHECK(s["flags"] == 0x101);
  }
  CHECK(rs[0]["scopeSpans"][0]["spans"][1]["name"] == "GET /middle/{id}");
  CHECK(rs[0]["scopeSpans"][0]["spans"][1]["kind"] == 3);
}

TEST_CASE("otlp file exporter: one request per line") {
  char path[] = "/tmp/weft_otlp_test_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  close(fd);
  {
    std::string error;
    auto out = exporter::OtlpFileExporter::open(path, &error);
    REQUIRE(out);
    CHECK(error.empty());
    auto r1 = resource("front", 100);
    auto r2 = resource("back", 300);
    std::vector<trace::Trace> batch;
    batch.push_back(sample_trace(r1, r2));
    batch.push_back(sample_trace(r2, r1));
    CHECK(out->export_batch(batch).kind == exporter::ExportResult::Kind::Ok);
  }
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    json j = json::parse(line);
    CHECK(j["resourceSpans"].size() == 2);
  }
  CHECK(lines == 2);
  std::remove(path);

  std::string error;
  CHECK_FALSE(exporter::OtlpFileExporter::open("/nonexistent-weft-dir/traces.json", &error));
  CHECK(error.starts_with("cannot open /nonexistent-weft-dir/traces.json for writing: "));
}
