// weft's own OTLP encoders (otlp_encoding.h) against the encoders they replaced, which stay
// here as the reference (otlp_oracle.h): the protobuf bytes parsed by the generated
// ExportTraceServiceRequest and compared field by field with what opentelemetry-cpp's
// recordables build from the same spans; the OTLP/JSON compared byte for byte with what
// nlohmann::json wrote, and read back by protobuf's own JSON parser.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "export/otlp_encoding.h"
#include "export/otlp_exporter.h"
#include "export/otlp_json.h"
#include "otlp_oracle.h"
#include "trace_fixtures.h"
// clang-format off
#include "opentelemetry/exporters/otlp/protobuf_include_prefix.h"
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include "opentelemetry/exporters/otlp/protobuf_include_suffix.h"
// clang-format on

using namespace weft;
using namespace weft::trace;
using nlohmann::json;
using Request = exporter::oracle::Request;
using exporter::Encoding;
namespace fx = weft::trace::test;

namespace {

// --- random spans, shaped like weft's and beyond ---

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  uint64_t next() { return rng_(); }
  size_t below(size_t n) { return static_cast<size_t>(rng_() % n); }
  bool coin() { return rng_() & 1; }

  // Valid UTF-8 with everything JSON must escape.
  std::string text(size_t max_pieces = 6) {
    static const char* const kPieces[] = {"a",
                                          "GET",
                                          "/orders/{id}",
                                          "caf\xc3\xa9",
                                          "\xe6\x97\xa5\xe6\x9c\xac",
                                          "\xf0\x9f\x98\x80",
                                          "\"",
                                          "\\",
                                          "\n",
                                          "\t",
                                          "\x01",
                                          "\x1f",
                                          "\x7f",
                                          "/",
                                          " ",
                                          "<>&'",
                                          "\xe2\x80\xa8",
                                          "\b\f\r"};
    std::string out;
    for (size_t n = below(max_pieces + 1); n; --n) out += kPieces[below(std::size(kPieces))];
    return out;
  }

  AttributeValue value() {
    switch (below(4)) {
      case 0:
        return text();
      case 1: {
        static const int64_t kInts[] = {0,
                                        1,
                                        -1,
                                        127,
                                        128,
                                        200,
                                        -300,
                                        1LL << 40,
                                        std::numeric_limits<int64_t>::min(),
                                        std::numeric_limits<int64_t>::max()};
        return coin() ? kInts[below(std::size(kInts))] : static_cast<int64_t>(next());
      }
      case 2:
        return coin();
      default: {
        static const double kDoubles[] = {0.0,  -0.0,  0.5,    1.0,    -2.5,
                                          0.1,  1e300, 1e-300, 5e-324, 123456789.125,
                                          1e15, 1e16,  1e-5,   0.0001, 3.0e21};
        if (coin()) return kDoubles[below(std::size(kDoubles))];
        double d;
        do {
          uint64_t bits = next();
          std::memcpy(&d, &bits, sizeof(d));
        } while (!std::isfinite(d));
        return d;
      }
    }
  }

  std::vector<Attribute> attributes(size_t max) {
    std::vector<Attribute> out;
    for (size_t n = below(max + 1); n; --n) out.push_back({coin() ? text(3) : "k.x", value()});
    return out;
  }

  std::shared_ptr<Resource> resource(int64_t pid) {
    auto r = std::make_shared<Resource>();
    r->service_name = coin() ? "svc-" + std::to_string(pid) : text(3) + std::to_string(pid);
    r->attributes = {{"service.name", r->service_name}, {"process.pid", pid}};
    if (coin()) r->attributes.push_back({"host.name", std::string("node-1")});
    if (coin()) r->attributes.push_back({"process.executable.name", text(2)});
    return r;
  }

  Span span(const std::vector<std::shared_ptr<Resource>>& resources, const Span* parent) {
    Span s;
    for (auto& b : s.trace_id) b = static_cast<uint8_t>(next());
    if (parent) s.trace_id = parent->trace_id;
    for (auto& b : s.span_id) b = static_cast<uint8_t>(next());
    if (parent) {
      s.parent_span_id = parent->span_id;
      if (coin()) s.wire = WireContext{};
    }
    if (coin()) s.tracestate = coin() ? "congo=t61rcWkgMzE" : "rojo=00f067aa0ba902b7,congo=t61";
    s.name = coin() ? text() : "GET /users/{id}";
    s.kind = coin() ? SpanKind::Server : SpanKind::Client;
    s.start_ns = coin() ? 1'700'000'000'000'000'000ull + below(1'000'000) : next();
    s.end_ns = below(8) ? s.start_ns + below(10'000'000) : 0;
    s.status = static_cast<StatusCode>(below(3));
    s.attributes = attributes(14);
    s.resource = resources[below(resources.size())];
    s.sampled = below(4) != 0;
    return s;
  }

  std::vector<Trace> batch(size_t max_traces) {
    std::vector<std::shared_ptr<Resource>> resources;
    for (size_t n = 1 + below(12); n; --n) resources.push_back(resource(100 + next() % 1000));
    std::vector<Trace> out(1 + below(max_traces));
    for (auto& t : out) {
      for (size_t n = 1 + below(7); n; --n) {
        const Span* parent =
            t.spans.empty() || below(5) == 0 ? nullptr : &t.spans[below(t.spans.size())];
        Span s = span(resources, parent);
        t.spans.push_back(std::move(s));
      }
    }
    return out;
  }

 private:
  std::mt19937_64 rng_;
};

// --- comparing requests ---

uint32_t expected_flags(const Span& s) {
  return (s.sampled ? 1u : 0u) | 0x100u | (s.has_parent() && s.wire ? 0x200u : 0u);
}

std::map<std::string, const Span*> spans_by_id(const std::vector<Trace>& batch) {
  std::map<std::string, const Span*> out;
  for (const auto& t : batch)
    for (const auto& s : t.spans)
      out[std::string(reinterpret_cast<const char*>(s.span_id.data()), 8)] = &s;
  return out;
}

// Resources and their attributes in one order, and an empty status as no status: what is the
// same request whichever order an encoder wrote it in.
void normalise(Request& r) {
  for (auto& rs : *r.mutable_resource_spans()) {
    auto* attrs = rs.mutable_resource()->mutable_attributes();
    std::sort(attrs->begin(), attrs->end(),
              [](const auto& a, const auto& b) { return a.key() < b.key(); });
    for (auto& ss : *rs.mutable_scope_spans())
      for (auto& s : *ss.mutable_spans())
        if (s.has_status() && s.status().code() == 0 && s.status().message().empty())
          s.clear_status();
  }
  std::sort(r.mutable_resource_spans()->begin(), r.mutable_resource_spans()->end(),
            [](const auto& a, const auto& b) {
              return a.resource().SerializeAsString() < b.resource().SerializeAsString();
            });
}

// What the recordables wrote, plus the span flags they left out (checked to be absent).
Request reference(const std::vector<Trace>& batch, const exporter::ResourceOverrides& overrides) {
  Request r;
  exporter::oracle::encode_traces(batch, overrides, &r);
  auto spans = spans_by_id(batch);
  for (auto& rs : *r.mutable_resource_spans())
    for (auto& ss : *rs.mutable_scope_spans())
      for (auto& s : *ss.mutable_spans()) {
        CHECK(s.flags() == 0);
        s.set_flags(expected_flags(*spans.at(s.span_id())));
      }
  normalise(r);
  return r;
}

void check_same(Request ours, Request want) {
  normalise(ours);
  google::protobuf::util::MessageDifferencer differ;
  std::string report;
  differ.ReportDifferencesToString(&report);
  bool same = differ.Compare(ours, want);
  CHECK_MESSAGE(same, report.substr(0, 4000));
}

Request parse_protobuf(const std::string& bytes) {
  Request r;
  REQUIRE(r.ParseFromString(bytes));
  // What weft wrote is what protobuf itself writes for the same message: canonical bytes.
  CHECK(r.SerializeAsString() == bytes);
  return r;
}

std::string hex_to_base64(const std::string& hex) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 2]);
    out += kChars[v >> 18 & 63];
    out += kChars[v >> 12 & 63];
    out += i + 1 < bytes.size() ? kChars[v >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kChars[v & 63] : '=';
  }
  return out;
}

// OTLP/JSON read by protobuf's JSON parser, once its hex ids are the base64 protobuf expects.
Request parse_otlp_json(const std::string& text) {
  json j = json::parse(text);
  for (auto& rs : j.at("resourceSpans"))
    for (auto& ss : rs.at("scopeSpans"))
      for (auto& s : ss.at("spans"))
        for (const char* key : {"traceId", "spanId", "parentSpanId"})
          if (s.contains(key)) s[key] = hex_to_base64(s[key].get<std::string>());
  Request r;
  auto status = google::protobuf::util::JsonStringToMessage(j.dump(), &r);
  REQUIRE_MESSAGE(status.ok(), status.ToString());
  return r;
}

bool has_double(const Trace& t) {
  for (const auto& s : t.spans)
    for (const auto& a : s.attributes)
      if (std::holds_alternative<double>(a.value)) return true;
  return false;
}

std::string file_json(const Trace& t) {
  return exporter::to_otlp_json(t);
}

}  // namespace

TEST_CASE("otlp protobuf: random batches read back as the recordables' requests, field by field") {
  exporter::ResourceOverrides overrides;
  overrides.extra_attributes = {{"deployment.environment.name", "prod"}, {"process.pid", "x"}};
  auto extras = exporter::resource_extras(overrides);
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    Generator g(seed);
    auto batch = g.batch(seed % 10 == 0 ? 60 : 6);
    Request ours = parse_protobuf(exporter::encode_traces(batch, extras, Encoding::Protobuf));
    check_same(ours, reference(batch, overrides));
  }
}

TEST_CASE(
    "otlp/http json: random batches read back by protobuf's JSON parser as the same request") {
  exporter::ResourceOverrides overrides;
  overrides.extra_attributes = {{"deployment.environment.name", "prod"}};
  auto extras = exporter::resource_extras(overrides);
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    CAPTURE(seed);
    Generator g(seed);
    auto batch = g.batch(6);
    std::string text = exporter::encode_traces(batch, extras, Encoding::Json);
    CHECK(text.find('\n') == std::string::npos);
    check_same(parse_otlp_json(text), reference(batch, overrides));
  }
}

TEST_CASE("otlp json file: random traces, byte for byte what nlohmann::json wrote") {
  size_t compared = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    CAPTURE(seed);
    Generator g(seed);
    for (const auto& t : g.batch(4)) {
      std::string ours = file_json(t), want = exporter::oracle::to_otlp_json(t);
      // Doubles: both print the shortest digits that read back the same, but nlohmann's
      // Grisu2 is not always shortest ("1.5313494854550531e+115" for "1.531349485455053e+115").
      if (has_double(t))
        CHECK(json::parse(ours) == json::parse(want));
      else
        CHECK(ours == want);
      ++compared;
    }
  }
  CHECK(compared > 500);
}

TEST_CASE("otlp encoders: edge cases against the references") {
  auto r1 = fx::resource("front", 100);
  auto r2 = fx::resource("back", 300);
  auto extras = exporter::resource_extras({});
  auto both = [&](const std::vector<Trace>& batch) {
    check_same(parse_protobuf(exporter::encode_traces(batch, extras, Encoding::Protobuf)),
               reference(batch, {}));
    check_same(parse_otlp_json(exporter::encode_traces(batch, extras, Encoding::Json)),
               reference(batch, {}));
    for (const auto& t : batch) CHECK(file_json(t) == exporter::oracle::to_otlp_json(t));
  };
  SUBCASE("the fixture's trace: parents, tracestate, statuses, every value type") {
    both({fx::sample_trace(r1, r2)});
  }
  SUBCASE("empty attributes, name and tracestate; zero times; no parent") {
    Trace t;
    Span s;
    s.trace_id.fill(1);
    s.span_id.fill(2);
    s.resource = r1;
    t.spans.push_back(s);
    both({t});
  }
  SUBCASE("empty key, empty string, zero values of every type") {
    Trace t = fx::sample_trace(r1, r2);
    t.spans[0].attributes = {{"", std::string()}, {"i", int64_t{0}}, {"b", false},
                             {"d", 0.0},          {"n", -0.0},       {"", int64_t{-1}}};
    both({t});
  }
  SUBCASE("unicode everywhere, control characters, quotes") {
    Trace t = fx::sample_trace(r1, r2);
    t.spans[1].name = "GET /\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80 \"q\" \\ \x01\x1f\x7f\n";
    t.spans[1].attributes.push_back(
        {std::string("\xc3\xa9t\xc3\xa9"), std::string("\xe2\x80\xa8\t\b\f\r")});
    both({t});
  }
  SUBCASE("a span bigger than 16 KiB, a request bigger than 2 MiB: lengths of every size") {
    Trace t = fx::sample_trace(r1, r2);
    t.spans[0].attributes.push_back({"big", std::string(20'000, 'x')});
    t.spans[1].attributes.push_back({"huge", std::string(3 << 20, 'y')});
    t.spans[2].attributes.push_back({"tiny", std::string(130, 'z')});  // a KeyValue past 127
    both({t});
  }
  SUBCASE("the same resource in many traces, many resources in one batch") {
    std::vector<Trace> batch;
    std::vector<std::shared_ptr<Resource>> many;
    for (int i = 0; i < 20; ++i) many.push_back(fx::resource("svc" + std::to_string(i), i));
    for (int i = 0; i < 40; ++i)
      batch.push_back(fx::sample_trace(many[i % 20], many[(i * 7) % 20]));
    both(batch);
  }
}

TEST_CASE("otlp encoders: groups follow first appearance, spans keep the batch's order") {
  std::vector<std::shared_ptr<Resource>> many;
  for (int i = 0; i < 12; ++i) many.push_back(fx::resource("svc" + std::to_string(i), i));
  std::vector<Trace> batch(3);
  std::vector<std::pair<int, std::string>> order;  // resource, span id
  for (int i = 0; i < 30; ++i) {
    Span s;
    s.trace_id.fill(7);
    s.span_id.fill(static_cast<uint8_t>(i + 1));
    s.resource = many[(i * 5) % 12];
    batch[i % 3].spans.push_back(s);
  }
  exporter::ResourceGroups groups;
  groups.assign(batch);
  std::vector<const Resource*> seen;
  for (const auto& t : batch)
    for (const auto& s : t.spans)
      if (std::find(seen.begin(), seen.end(), s.resource.get()) == seen.end())
        seen.push_back(s.resource.get());
  REQUIRE(groups.groups().size() == seen.size());
  for (size_t g = 0; g < seen.size(); ++g) {
    const auto& group = groups.groups()[g];
    CHECK(group.resource == seen[g]);
    std::vector<const Span*> want;
    for (const auto& t : batch)
      for (const auto& s : t.spans)
        if (s.resource.get() == seen[g]) want.push_back(&s);
    std::vector<const Span*> got(groups.spans().begin() + group.begin,
                                 groups.spans().begin() + group.end);
    CHECK(got == want);
  }
}

TEST_CASE("otlp encoders: what the recordables lost is kept") {
  auto r = fx::resource("svc", 1);
  Trace t;
  for (SpanKind kind : {SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer,
                        SpanKind::Consumer}) {
    Span s;
    s.trace_id.fill(1);
    s.span_id.fill(static_cast<uint8_t>(kind));
    s.kind = kind;
    s.resource = r;
    if (kind != SpanKind::Internal) {
      s.parent_span_id.fill(1);
      s.wire = WireContext{};
      s.sampled = false;
    }
    t.spans.push_back(s);
  }
  Request ours = parse_protobuf(exporter::encode_traces({t}, {}, Encoding::Protobuf));
  const auto& spans = ours.resource_spans(0).scope_spans(0).spans();
  REQUIRE(spans.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(spans[i].kind() == static_cast<int>(t.spans[i].kind));
    CHECK(spans[i].flags() == (i == 0 ? 0x101u : 0x300u));
  }
  json j = json::parse(file_json(t));
  for (int i = 0; i < 5; ++i)
    CHECK(j["resourceSpans"][0]["scopeSpans"][0]["spans"][i]["kind"] ==
          static_cast<int>(t.spans[i].kind));
}

TEST_CASE("otlp encoders: text that is not UTF-8 becomes U+FFFD, as nlohmann::json replaced it") {
  // Each ill-formed sequence is one U+FFFD; the byte that broke a sequence starts the next.
  const char* const cases[] = {
      "caf\xe9",                       // truncated at the end
      "caf\xe9 x",                     // broken by a space
      "\xff\xfe",                      // never valid
      "\xc0\x80",                      // overlong NUL
      "\xe0\x80\x80",                  // overlong
      "\xed\xa0\x80",                  // a surrogate
      "\xf4\x90\x80\x80",              // above U+10FFFF
      "\xf5\x80",                      // no such lead byte
      "\x80\xbf",                      // lone continuations
      "\xe6\x97",                      // two of three bytes, at the end
      "\xe6\x97x\xf0\x9f\x98",         // two of three, then three of four
      "ok \xf0\x9f\x98\x80 \xc3\xa9",  // valid, for contrast
  };
  auto r = fx::resource("svc", 1);
  for (const char* text : cases) {
    CAPTURE(text);
    Trace t;
    Span s;
    s.trace_id.fill(1);
    s.span_id.fill(2);
    s.resource = r;
    s.name = text;
    s.attributes = {{std::string(text), std::string(text)}};
    t.spans.push_back(s);
    std::string want = exporter::oracle::to_otlp_json(t);
    CHECK(file_json(t) == want);
    // Protobuf strings carry the same replacement.
    std::string replaced =
        json::parse(want)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"];
    Request ours = parse_protobuf(exporter::encode_traces({t}, {}, Encoding::Protobuf));
    const auto& span = ours.resource_spans(0).scope_spans(0).spans(0);
    CHECK(span.name() == replaced);
    CHECK(span.attributes(0).key() == replaced);
    CHECK(span.attributes(0).value().string_value() == replaced);
  }
}

TEST_CASE("otlp json: doubles JSON numbers cannot hold are protobuf's strings") {
  auto r = fx::resource("svc", 1);
  Trace t;
  Span s;
  s.trace_id.fill(1);
  s.span_id.fill(2);
  s.resource = r;
  s.attributes = {{"nan", std::numeric_limits<double>::quiet_NaN()},
                  {"inf", std::numeric_limits<double>::infinity()},
                  {"-inf", -std::numeric_limits<double>::infinity()}};
  t.spans.push_back(s);
  std::string text = exporter::encode_traces({t}, {}, Encoding::Json);
  Request ours = parse_otlp_json(text);
  const auto& attrs = ours.resource_spans(0).scope_spans(0).spans(0).attributes();
  CHECK(std::isnan(attrs[0].value().double_value()));
  CHECK(attrs[1].value().double_value() == std::numeric_limits<double>::infinity());
  CHECK(attrs[2].value().double_value() == -std::numeric_limits<double>::infinity());
}

TEST_CASE("otlp encoders: an empty batch is an empty request") {
  CHECK(exporter::encode_traces({}, {}, Encoding::Protobuf).empty());
  CHECK(exporter::encode_traces({}, {}, Encoding::Json) == R"({"resourceSpans":[]})");
}

TEST_CASE("otlp resource extras: the SDK's telemetry.sdk.* and service.name, overrides on top") {
  exporter::ResourceOverrides o;
  o.extra_attributes = {{"deployment.environment.name", "prod"}};
  std::map<std::string, AttributeValue> extras;
  for (const auto& a : exporter::resource_extras(o)) extras[a.key.str()] = a.value;
  CHECK(std::get<std::string>(extras.at("telemetry.sdk.language")) == "cpp");
  CHECK(std::get<std::string>(extras.at("telemetry.sdk.name")) == "opentelemetry");
  CHECK(extras.count("telemetry.sdk.version") == 1);
  CHECK(extras.count("service.name") == 1);
  CHECK(std::get<std::string>(extras.at("deployment.environment.name")) == "prod");
}

TEST_CASE("otlp encoders: span events (tcp.retransmit) in protobuf and in JSON") {
  auto r1 = fx::resource("front", 100);
  auto r2 = fx::resource("back", 300);
  std::vector<Trace> batch{fx::sample_trace(r1, r2)};
  SpanEvent ev{1'700'000'000'500'000'000ull, "tcp.retransmit", {}};
  ev.attributes.push_back({"weft.tcp.seq", int64_t{4000}});
  ev.attributes.push_back({"weft.tcp.segments", int64_t{2}});
  batch[0].spans[0].events = {ev, ev};
  batch[0].spans[0].events[1].time_ns += 7;

  auto check_events = [](const Request& r) {
    const auto& span = r.resource_spans(0).scope_spans(0).spans(0);
    REQUIRE(span.events_size() == 2);
    CHECK(span.events(0).name() == "tcp.retransmit");
    CHECK(span.events(0).time_unix_nano() == 1'700'000'000'500'000'000ull);
    CHECK(span.events(1).time_unix_nano() == 1'700'000'000'500'000'007ull);
    REQUIRE(span.events(0).attributes_size() == 2);
    CHECK(span.events(0).attributes(0).key() == "weft.tcp.seq");
    CHECK(span.events(0).attributes(0).value().int_value() == 4000);
    CHECK(span.events(0).attributes(1).value().int_value() == 2);
    CHECK(r.resource_spans(0).scope_spans(0).spans(1).events_size() == 0);
  };
  auto extras = exporter::resource_extras({});
  check_events(parse_protobuf(exporter::encode_traces(batch, extras, Encoding::Protobuf)));
  check_events(parse_otlp_json(exporter::encode_traces(batch, extras, Encoding::Json)));
}
