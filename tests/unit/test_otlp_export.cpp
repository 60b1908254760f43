// OTLP export: the request a batch becomes (checked against weft's own OTLP/JSON encoding),
// the OTLP/JSON mapping of protobuf messages, Retry-After, gzip, the HTTP transport's
// classification of real responses from a local server, and what the trace exporter sends it.
#include <doctest/doctest.h>
#include <httplib.h>
#include <zlib.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "export/otlp_exporter.h"
#include "export/otlp_json.h"
#include "export/otlp_transport.h"
#include "trace_fixtures.h"
// The prefix header must come before the generated protobuf headers, the suffix after.
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

using namespace weft;
using namespace weft::trace;
using namespace weft::trace::test;
using nlohmann::json;
using Request = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

namespace {

Request encode_request(const std::vector<Trace>& batch,
                       const exporter::ResourceOverrides& overrides = {}) {
  Request request;
  REQUIRE(request.ParseFromString(exporter::encode_traces(
      batch, exporter::resource_extras(overrides), exporter::Encoding::Protobuf)));
  return request;
}

json encode(const Trace& t, const exporter::ResourceOverrides& overrides = {}) {
  return json::parse(exporter::otlp_message_to_json(encode_request({t}, overrides)));
}

std::map<std::string, json> by_key(const json& attributes) {
  std::map<std::string, json> out;
  for (const auto& a : attributes) out[a.at("key")] = a.at("value");
  return out;
}

// span id -> span, across every resource and scope.
std::map<std::string, json> spans_by_id(const json& request) {
  std::map<std::string, json> out;
  for (const auto& rs : request.at("resourceSpans"))
    for (const auto& ss : rs.at("scopeSpans"))
      for (const auto& s : ss.at("spans")) out[s.at("spanId")] = s;
  return out;
}

std::string gunzip(const std::string& data) {
  z_stream z{};
  REQUIRE(inflateInit2(&z, 15 + 16) == Z_OK);
  std::string out(1 << 20, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  inflateEnd(&z);
  return out;
}

}  // namespace

TEST_CASE("otlp export: the request agrees with weft's own OTLP/JSON encoding, span by span") {
  Trace t = sample_trace(resource("front", 100), resource("back", 300));
  json ours = json::parse(exporter::to_otlp_json(t));
  json library = encode(t);

  auto expected = spans_by_id(ours);
  auto actual = spans_by_id(library);
  REQUIRE(expected.size() == 3);
  REQUIRE(actual.size() == expected.size());
  for (const auto& [id, want] : expected) {
    CAPTURE(id);
    REQUIRE(actual.count(id) == 1);
    const json& got = actual[id];
    CHECK(got.at("traceId") == want.at("traceId"));
    CHECK(got.value("parentSpanId", "") == want.value("parentSpanId", ""));
    CHECK(got.at("name") == want.at("name"));
    CHECK(got.at("kind") == want.at("kind"));
    CHECK(got.at("startTimeUnixNano") == want.at("startTimeUnixNano"));
    CHECK(got.at("endTimeUnixNano") == want.at("endTimeUnixNano"));
    CHECK(got.value("traceState", "") == want.value("traceState", ""));
    CHECK(got.value("status", json::object()).value("code", 0) ==
          want.at("status").value("code", 0));
    CHECK(by_key(got.value("attributes", json::array())) == by_key(want.at("attributes")));
  }
}

TEST_CASE("otlp export: one resource per process, scope weft with its version") {
  json library = encode(sample_trace(resource("front", 100), resource("back", 300)));
  const json& rs = library.at("resourceSpans");
  REQUIRE(rs.size() == 2);
  std::map<std::string, size_t> spans_per_service;
  for (const auto& r : rs) {
    auto attrs = by_key(r.at("resource").at("attributes"));
    std::string service = attrs.at("service.name").at("stringValue");
    REQUIRE(r.at("scopeSpans").size() == 1);
    CHECK(r["scopeSpans"][0]["scope"]["name"] == "weft");
    CHECK(r["scopeSpans"][0]["scope"]["version"] == WEFT_VERSION);
    spans_per_service[service] += r["scopeSpans"][0]["spans"].size();
  }
  CHECK(spans_per_service == std::map<std::string, size_t>{{"back", 1}, {"front", 2}});
}

TEST_CASE("otlp export: resource additions, and process facts winning over them") {
  exporter::ResourceOverrides o;
  o.extra_attributes = {{"deployment.environment.name", "prod"}, {"process.pid", "not-a-pid"}};
  json library = encode(sample_trace(resource("front", 100), resource("back", 300)), o);
  for (const auto& r : library.at("resourceSpans")) {
    auto attrs = by_key(r.at("resource").at("attributes"));
    CHECK(attrs.at("deployment.environment.name").at("stringValue") == "prod");
    CHECK(attrs.at("process.pid").contains("intValue"));
  }
}

TEST_CASE("otlp json mapping: hex ids, integer enums, 64-bit integers as strings") {
  json j = encode(sample_trace(resource("front", 100), resource("back", 300)));
  for (const auto& [id, s] : spans_by_id(j)) {
    CHECK(id.size() == 16);
    CHECK(s.at("traceId").get<std::string>().size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(s.at("kind").is_number_integer());
    CHECK(s.at("startTimeUnixNano").is_string());
  }
}

TEST_CASE("otlp json mapping: only id keys are rewritten, never a value that looks like one") {
  Trace t = sample_trace(resource("front", 100), resource("back", 300));
  std::string tricky = R"({"traceId":"AAAAAAAAAAAAAAAAAAAAAA==","spanId":"x"})";
  t.spans[0].attributes.push_back({"note", tricky});
  json j = encode(t);
  auto spans = spans_by_id(j);
  const json& root = spans.at(hex(t.spans[0].span_id));
  CHECK(by_key(root.at("attributes")).at("note").at("stringValue") == tricky);
  CHECK(root.at("traceId") == hex(t.spans[0].trace_id));
  CHECK(spans.at(hex(t.spans[1].span_id)).at("parentSpanId") == hex(t.spans[0].span_id));
}

TEST_CASE("Retry-After: seconds, an HTTP date, or nothing") {
  using std::chrono::milliseconds;
  CHECK(exporter::parse_retry_after("3") == milliseconds(3000));
  CHECK(exporter::parse_retry_after("") == milliseconds(0));
  CHECK(exporter::parse_retry_after(" 3\r\n") ==
        milliseconds(3000));  // as a header line may carry it
  CHECK(exporter::parse_retry_after("soon") == milliseconds(0));
  CHECK(exporter::parse_retry_after("999999") == milliseconds(3'600'000));  // capped at an hour
  char date[64];
  std::time_t in_ten = std::time(nullptr) + 10;
  std::strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&in_ten));
  auto delay = exporter::parse_retry_after(date);
  CHECK(delay >= milliseconds(8000));
  CHECK(delay <= milliseconds(10000));
}

TEST_CASE("gzip: what is compressed inflates back to the same bytes") {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "span " + std::to_string(i) + ";";
  std::string packed = exporter::gzip_compress(text);
  CHECK(packed.size() < text.size() / 2);
  CHECK(static_cast<unsigned char>(packed[0]) == 0x1f);  // the gzip magic
  CHECK(static_cast<unsigned char>(packed[1]) == 0x8b);
  CHECK(gunzip(packed) == text);
}

TEST_CASE("otlp/http transport: status codes decide retry, Retry-After is honoured") {
  httplib::Server server;
  int status = 200;
  std::string retry_after, content_type, encoding, tenant, answer;
  size_t body_bytes = 0;
  server.Post("/v1/traces", [&](const httplib::Request& req, httplib::Response& res) {
    content_type = req.get_header_value("Content-Type");
    encoding = req.get_header_value("Content-Encoding");
    tenant = req.get_header_value("X-Tenant");
    body_bytes = req.body.size();
    res.status = status;
    if (!retry_after.empty()) res.set_header("Retry-After", retry_after);
    if (!answer.empty()) res.set_content(answer, "application/x-protobuf");
  });
  int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });
  // Bound already: connections wait in the backlog until the thread accepts them.

  exporter::OtlpSignal s;
  s.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
  s.headers = {{"X-Tenant", "blue"}};
  s.timeout = std::chrono::milliseconds(3000);
  std::string error;
  auto transport = exporter::OtlpTransport::create(exporter::Signal::Traces, s, &error);
  REQUIRE(transport);
  Request request = encode_request({sample_trace(resource("front", 100), resource("back", 300))});

  auto r = transport->send(request);
  CHECK_MESSAGE(r.kind == exporter::ExportResult::Kind::Ok, r.error);
  CHECK(content_type == "application/x-protobuf");
  CHECK(tenant == "blue");
  CHECK(body_bytes == request.ByteSizeLong());

  status = 503;
  retry_after = "2";
  r = transport->send(request);
  CHECK(r.kind == exporter::ExportResult::Kind::Retryable);
  CHECK(r.retry_after == std::chrono::milliseconds(2000));
  CHECK(r.error.find("HTTP 503") != std::string::npos);

  for (int code : {429, 502, 504}) {
    status = code;
    CHECK(transport->send(request).kind == exporter::ExportResult::Kind::Retryable);
  }
  for (int code : {400, 401, 404, 413, 500}) {
    status = code;
    CAPTURE(code);
    CHECK(transport->send(request).kind == exporter::ExportResult::Kind::Failed);
  }

  // A partial success: accepted, with some spans refused for good.
  status = 200;
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse partial;
  partial.mutable_partial_success()->set_rejected_spans(2);
  partial.mutable_partial_success()->set_error_message("spans too old");
  answer = partial.SerializeAsString();
  r = transport->send(request);
  CHECK(r.kind == exporter::ExportResult::Kind::Ok);
  CHECK(r.rejected == 2);
  CHECK(r.error.find("spans too old") != std::string::npos);
  answer.clear();

  // JSON and gzip variants reach the server as such.
  status = 200;
  s.protocol = exporter::OtlpProtocol::HttpJson;
  s.gzip = true;
  transport = exporter::OtlpTransport::create(exporter::Signal::Traces, s, &error);
  CHECK(transport->send(request).kind == exporter::ExportResult::Kind::Ok);
  CHECK(content_type == "application/json");
  CHECK(encoding == "gzip");

  server.stop();
  serving.join();
  // Nobody listening any more: worth retrying later.
  r = transport->send(request);
  CHECK(r.kind == exporter::ExportResult::Kind::Retryable);
}

TEST_CASE("otlp trace exporter: the backend receives each batch encoded, protobuf or JSON") {
  httplib::Server server;
  std::string content_type, body;
  server.Post("/v1/traces", [&](const httplib::Request& req, httplib::Response& res) {
    content_type = req.get_header_value("Content-Type");
    body = req.body;
    res.status = 200;
  });
  int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });

  std::vector<Trace> batch = {sample_trace(resource("front", 100), resource("back", 300)),
                              sample_trace(resource("front", 101), resource("back", 301))};
  exporter::ResourceOverrides overrides;
  overrides.extra_attributes = {{"deployment.environment.name", "prod"}};
  auto extras = exporter::resource_extras(overrides);
  for (auto protocol : {exporter::OtlpProtocol::HttpProtobuf, exporter::OtlpProtocol::HttpJson}) {
    bool json_body = protocol == exporter::OtlpProtocol::HttpJson;
    exporter::OtlpSignal s;
    s.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/v1/traces";
    s.protocol = protocol;
    std::string error;
    exporter::OtlpTraceExporter out(
        exporter::OtlpTransport::create(exporter::Signal::Traces, s, &error), overrides);
    // Twice: the second batch reuses what the first one grew.
    for (int round = 0; round < 2; ++round) {
      body.clear();
      auto r = out.export_batch(batch);
      CHECK_MESSAGE(r.kind == exporter::ExportResult::Kind::Ok, r.error);
      CHECK(content_type == (json_body ? "application/json" : "application/x-protobuf"));
      CHECK(body == exporter::encode_traces(
                        batch, extras,
                        json_body ? exporter::Encoding::Json : exporter::Encoding::Protobuf));
    }
  }
  CHECK(encode_request(batch, overrides).resource_spans_size() == 4);  // four processes
  server.stop();
  serving.join();
}
