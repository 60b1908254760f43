// Wire trace context: W3C traceparent/tracestate, B3 single and multi header, uber-trace-id.
#include <doctest/doctest.h>

#include <string>

#include "trace/context.h"

using namespace weft;
using namespace weft::trace;

namespace {

constexpr const char* kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* kSpanId = "00f067aa0ba902b7";

std::string tid(const WireContext& c) {
  return to_hex(c.trace_id.data(), c.trace_id.size());
}
std::string sid(const WireContext& c) {
  return to_hex(c.span_id.data(), c.span_id.size());
}

std::string traceparent(const std::string& version, const std::string& flags) {
  return version + "-" + kTraceId + "-" + kSpanId + "-" + flags;
}

// n list members "k0=v0,k1=v1,...".
std::string members(int n) {
  std::string out;
  for (int i = 0; i < n; ++i)
    out += (i ? "," : "") + std::string("k") + std::to_string(i) + "=v" + std::to_string(i);
  return out;
}

}  // namespace

TEST_CASE("to_hex and is_zero") {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  CHECK(to_hex(bytes, 4) == "000fa0ff");
  CHECK(to_hex(bytes, 0) == "");
  const uint8_t zeros[] = {0, 0, 0};
  CHECK(is_zero(zeros, 3));
  CHECK_FALSE(is_zero(bytes, 2));
}

TEST_CASE("traceparent: version 00, sampled and not sampled") {
  auto sampled = parse_traceparent(traceparent("00", "01"));
  REQUIRE(sampled);
  CHECK(tid(*sampled) == kTraceId);
  CHECK(sid(*sampled) == kSpanId);
  CHECK(sampled->sampled);
  CHECK(sampled->sampling_decided);
  CHECK(sampled->format == ContextFormat::W3C);
  CHECK(sampled->tracestate.empty());

  auto not_sampled = parse_traceparent(traceparent("00", "00"));
  REQUIRE(not_sampled);
  CHECK(tid(*not_sampled) == kTraceId);
  CHECK_FALSE(not_sampled->sampled);
  CHECK(not_sampled->sampling_decided);

  // Only bit 0 of the flags says "sampled".
  auto other_flags = parse_traceparent(traceparent("00", "02"));
  REQUIRE(other_flags);
  CHECK_FALSE(other_flags->sampled);
  auto odd_flags = parse_traceparent(traceparent("00", "03"));
  REQUIRE(odd_flags);
  CHECK(odd_flags->sampled);
}

TEST_CASE("traceparent: uppercase hex is rejected") {
  CHECK_FALSE(
      parse_traceparent(std::string("00-4BF92F3577B34DA6A3CE929D0E0E4736-") + kSpanId + "-01"));
  CHECK_FALSE(parse_traceparent(std::string("00-") + kTraceId + "-00F067AA0BA902B7-01"));
  CHECK_FALSE(parse_traceparent(traceparent("00", "0A")));
  CHECK_FALSE(parse_traceparent(traceparent("0A", "01") + "-x"));
  // The same with lowercase is fine.
  CHECK(parse_traceparent(traceparent("00", "0a")));
}

TEST_CASE("traceparent: all-zero trace id or span id is rejected") {
  CHECK_FALSE(
      parse_traceparent(std::string("00-00000000000000000000000000000000-") + kSpanId + "-01"));
  CHECK_FALSE(parse_traceparent(std::string("00-") + kTraceId + "-0000000000000000-01"));
  // One non-zero digit is enough.
  auto one =
      parse_traceparent(std::string("00-00000000000000000000000000000001-0000000000000001-01"));
  REQUIRE(one);
  CHECK(tid(*one) == "00000000000000000000000000000001");
  CHECK(sid(*one) == "0000000000000001");
}

TEST_CASE("traceparent: wrong lengths and separators are rejected") {
  std::string good = traceparent("00", "01");
  REQUIRE(good.size() == 55);
  CHECK(parse_traceparent(good));
  CHECK_FALSE(parse_traceparent(""));
  CHECK_FALSE(parse_traceparent(good.substr(0, 54)));
  // Trace id one digit short, span id one digit long (total length still 55).
  CHECK_FALSE(
      parse_traceparent(std::string("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b70-01")));
  // A separator replaced by another character, each in turn.
  for (size_t at : {2u, 35u, 52u}) {
    std::string bad = good;
    bad[at] = '_';
    CHECK_FALSE(parse_traceparent(bad));
  }
  // Non-hex characters in each field.
  CHECK_FALSE(
      parse_traceparent(std::string("00-4bf92f3577b34da6a3ce929d0e0e473g-") + kSpanId + "-01"));
  CHECK_FALSE(parse_traceparent(std::string("00-") + kTraceId + "-00f067aa0ba902bz-01"));
  CHECK_FALSE(parse_traceparent(traceparent("00", "0x")));
  CHECK_FALSE(parse_traceparent(traceparent("0x", "01")));
}

TEST_CASE("traceparent: versions") {
  // ff is forbidden.
  CHECK_FALSE(parse_traceparent(traceparent("ff", "01")));
  CHECK_FALSE(parse_traceparent(traceparent("ff", "01") + "-extra"));
  // Version 00 has exactly four fields.
  CHECK_FALSE(parse_traceparent(traceparent("00", "01") + "-extra"));
  CHECK_FALSE(parse_traceparent(traceparent("00", "01") + "-"));
  // A higher version may append fields, which are ignored.
  auto v1 = parse_traceparent(traceparent("01", "01") + "-extra");
  REQUIRE(v1);
  CHECK(tid(*v1) == kTraceId);
  CHECK(sid(*v1) == kSpanId);
  CHECK(v1->sampled);
  auto v1_plain = parse_traceparent(traceparent("01", "00"));
  REQUIRE(v1_plain);
  CHECK_FALSE(v1_plain->sampled);
  auto vfe = parse_traceparent(traceparent("fe", "01") + "-a-b-c");
  REQUIRE(vfe);
  CHECK(tid(*vfe) == kTraceId);
  // ... but only after a '-': the flags must be exactly two characters.
  CHECK_FALSE(parse_traceparent(traceparent("01", "01") + "x"));
  CHECK_FALSE(parse_traceparent(traceparent("01", "01") + "0-extra"));
}

TEST_CASE("tracestate: kept only when valid") {
  std::string tp = traceparent("00", "01");
  auto ok = parse_traceparent(tp, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  REQUIRE(ok);
  CHECK(ok->tracestate == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");

  // Multi-tenant keys and the other allowed key characters.
  CHECK(parse_traceparent(tp, "tenant@vendor=x,a_b-c*d/e=1")->tracestate ==
        "tenant@vendor=x,a_b-c*d/e=1");

  // Invalid tracestate: the traceparent still counts, the tracestate is dropped.
  auto bad_key = parse_traceparent(tp, "Congo=t61rcWkgMzE");
  REQUIRE(bad_key);
  CHECK(bad_key->tracestate.empty());
  CHECK(parse_traceparent(tp, "con go=1")->tracestate.empty());
  CHECK(parse_traceparent(tp, "congo")->tracestate.empty());
  CHECK(parse_traceparent(tp, "=value")->tracestate.empty());
  CHECK(parse_traceparent(tp, "congo=")->tracestate.empty());
  CHECK(parse_traceparent(tp, "congo=a=b")->tracestate.empty());
  CHECK(parse_traceparent(tp, members(33))->tracestate.empty());
  CHECK(parse_traceparent(tp, members(32))->tracestate == members(32));
}

TEST_CASE("valid_tracestate") {
  CHECK(valid_tracestate(""));
  CHECK(valid_tracestate("a=1"));
  CHECK(valid_tracestate(members(32)));
  CHECK_FALSE(valid_tracestate(members(33)));
  // Empty members (and blanks around members) are tolerated and do not count.
  CHECK(valid_tracestate("a=1,,b=2"));
  CHECK(valid_tracestate(" a=1 ,\t b=2\t,"));
  CHECK(valid_tracestate(",,," + members(32) + ",,"));
  // Keys: lowercase letters, digits, _ - * / @.
  CHECK_FALSE(valid_tracestate("A=1"));
  CHECK_FALSE(valid_tracestate("a.b=1"));
  CHECK_FALSE(valid_tracestate("a!=1"));
  CHECK_FALSE(valid_tracestate("a=1,B=2"));
  // Values: printable ASCII except ',' and '='.
  CHECK(valid_tracestate("a=x y"));
  CHECK_FALSE(valid_tracestate("a=x\x01y"));
  CHECK_FALSE(valid_tracestate("a=\x7f"));
  // Members need a key and a value.
  CHECK_FALSE(valid_tracestate("a"));
  CHECK_FALSE(valid_tracestate("=1"));
  CHECK_FALSE(valid_tracestate("a="));
  // At most 256 characters of key and of value.
  CHECK(valid_tracestate("a=" + std::string(256, 'v')));
  CHECK_FALSE(valid_tracestate("a=" + std::string(257, 'v')));
  CHECK(valid_tracestate(std::string(256, 'k') + "=1"));
  CHECK_FALSE(valid_tracestate(std::string(257, 'k') + "=1"));
}

TEST_CASE("b3 single: 128-bit and 64-bit trace ids") {
  auto wide = parse_b3_single(std::string(kTraceId) + "-" + kSpanId + "-1");
  REQUIRE(wide);
  CHECK(wide->format == ContextFormat::B3Single);
  CHECK(tid(*wide) == kTraceId);
  CHECK(sid(*wide) == kSpanId);
  CHECK(wide->sampled);
  CHECK(wide->sampling_decided);

  auto narrow = parse_b3_single(std::string("a3ce929d0e0e4736-") + kSpanId + "-1");
  REQUIRE(narrow);
  CHECK(tid(*narrow) == "0000000000000000a3ce929d0e0e4736");
  CHECK(sid(*narrow) == kSpanId);

  // Other trace id lengths are not B3.
  CHECK_FALSE(parse_b3_single(std::string("a3ce929d0e0e473-") + kSpanId));
  CHECK_FALSE(parse_b3_single(std::string("0a3ce929d0e0e4736-") + kSpanId));
  // The span id is exactly 16 digits.
  CHECK_FALSE(parse_b3_single(std::string(kTraceId) + "-0f067aa0ba902b7"));
  // Zero ids.
  CHECK_FALSE(parse_b3_single(std::string("0000000000000000-") + kSpanId));
  CHECK_FALSE(parse_b3_single(std::string(kTraceId) + "-0000000000000000"));
}

TEST_CASE("b3 single: sampling states and parent id") {
  std::string ids = std::string(kTraceId) + "-" + kSpanId;
  auto undecided = parse_b3_single(ids);
  REQUIRE(undecided);
  CHECK_FALSE(undecided->sampling_decided);
  CHECK_FALSE(undecided->sampled);

  auto zero = parse_b3_single(ids + "-0");
  REQUIRE(zero);
  CHECK(zero->sampling_decided);
  CHECK_FALSE(zero->sampled);

  auto one = parse_b3_single(ids + "-1");
  REQUIRE(one);
  CHECK(one->sampling_decided);
  CHECK(one->sampled);

  auto debug = parse_b3_single(ids + "-d");
  REQUIRE(debug);
  CHECK(debug->sampling_decided);
  CHECK(debug->sampled);

  auto with_parent = parse_b3_single(ids + "-1-05e3ac9a4f6e3b90");
  REQUIRE(with_parent);
  CHECK(tid(*with_parent) == kTraceId);
  CHECK(sid(*with_parent) == kSpanId);  // the parent id is the caller's parent, not ours
  CHECK(with_parent->sampled);

  CHECK_FALSE(parse_b3_single(ids + "-2"));
  CHECK_FALSE(parse_b3_single(ids + "-"));
  CHECK_FALSE(parse_b3_single(ids + "-true"));
}

TEST_CASE("b3 single: a lone decision or bad hex is no context") {
  CHECK_FALSE(parse_b3_single("0"));
  CHECK_FALSE(parse_b3_single("1"));
  CHECK_FALSE(parse_b3_single("d"));
  CHECK_FALSE(parse_b3_single(""));
  CHECK_FALSE(parse_b3_single(kTraceId));
  CHECK_FALSE(parse_b3_single(std::string("4bf92f3577b34da6a3ce929d0e0e473x-") + kSpanId + "-1"));
  CHECK_FALSE(parse_b3_single(std::string(kTraceId) + "-00f067aa0ba902bg-1"));
}

TEST_CASE("b3 multi header") {
  auto sampled = parse_b3_multi(kTraceId, kSpanId, "1", "");
  REQUIRE(sampled);
  CHECK(sampled->format == ContextFormat::B3Multi);
  CHECK(tid(*sampled) == kTraceId);
  CHECK(sid(*sampled) == kSpanId);
  CHECK(sampled->sampled);
  CHECK(sampled->sampling_decided);

  auto not_sampled = parse_b3_multi(kTraceId, kSpanId, "0", "");
  REQUIRE(not_sampled);
  CHECK_FALSE(not_sampled->sampled);
  CHECK(not_sampled->sampling_decided);

  auto word = parse_b3_multi(kTraceId, kSpanId, "true", "");
  REQUIRE(word);
  CHECK(word->sampled);
  CHECK(word->sampling_decided);

  auto debug = parse_b3_multi(kTraceId, kSpanId, "", "1");
  REQUIRE(debug);
  CHECK(debug->sampled);
  CHECK(debug->sampling_decided);

  auto undecided = parse_b3_multi(kTraceId, kSpanId, "", "");
  REQUIRE(undecided);
  CHECK_FALSE(undecided->sampling_decided);
  CHECK_FALSE(undecided->sampled);

  auto narrow = parse_b3_multi("a3ce929d0e0e4736", kSpanId, "1", "");
  REQUIRE(narrow);
  CHECK(tid(*narrow) == "0000000000000000a3ce929d0e0e4736");

  CHECK_FALSE(parse_b3_multi(kTraceId, "", "1", ""));
  CHECK_FALSE(parse_b3_multi("", kSpanId, "1", ""));
  CHECK_FALSE(parse_b3_multi("xyz", kSpanId, "1", ""));
  CHECK_FALSE(parse_b3_multi(kTraceId, "00f067aa0ba902", "1", ""));
  CHECK_FALSE(parse_b3_multi(kTraceId, "0000000000000000", "1", ""));
}

TEST_CASE("uber-trace-id") {
  auto normal = parse_uber_trace_id(std::string(kTraceId) + ":" + kSpanId + ":0:1");
  REQUIRE(normal);
  CHECK(normal->format == ContextFormat::Jaeger);
  CHECK(tid(*normal) == kTraceId);
  CHECK(sid(*normal) == kSpanId);
  CHECK(normal->sampled);
  CHECK(normal->sampling_decided);

  auto short_ids = parse_uber_trace_id("abc:12:0:1");
  REQUIRE(short_ids);
  CHECK(tid(*short_ids) == "00000000000000000000000000000abc");
  CHECK(sid(*short_ids) == "0000000000000012");

  auto encoded = parse_uber_trace_id(std::string(kTraceId) + "%3A" + kSpanId + "%3a0%3A1");
  REQUIRE(encoded);
  CHECK(tid(*encoded) == kTraceId);
  CHECK(sid(*encoded) == kSpanId);
  CHECK(encoded->sampled);

  // Flags: bit 0 is "sampled"; 2 (debug alone) is not.
  CHECK_FALSE(parse_uber_trace_id("abc:12:0:0")->sampled);
  CHECK_FALSE(parse_uber_trace_id("abc:12:0:2")->sampled);
  CHECK(parse_uber_trace_id("abc:12:0:3")->sampled);
  CHECK(parse_uber_trace_id("abc:12:0:01")->sampled);

  // Four parts, no more, no fewer.
  CHECK_FALSE(parse_uber_trace_id("abc:12:0"));
  CHECK_FALSE(parse_uber_trace_id("abc:12:0:1:5"));
  CHECK_FALSE(parse_uber_trace_id("abc"));
  CHECK_FALSE(parse_uber_trace_id(""));
  // Ids: hex, not empty, not zero, not too long.
  CHECK_FALSE(parse_uber_trace_id("xyz:12:0:1"));
  CHECK_FALSE(parse_uber_trace_id(":12:0:1"));
  CHECK_FALSE(parse_uber_trace_id("0:12:0:1"));
  CHECK_FALSE(parse_uber_trace_id("abc:0:0:1"));
  CHECK_FALSE(parse_uber_trace_id(std::string(kTraceId) + "0:12:0:1"));
  CHECK_FALSE(parse_uber_trace_id("abc:12:0:"));
}

TEST_CASE("extract_context: precedence and falling through") {
  const std::string w3c_trace = "11111111111111111111111111111111";
  const std::string b3_trace = "22222222222222222222222222222222";
  const std::string multi_trace = "33333333333333333333333333333333";
  const std::string uber_trace = "44444444444444444444444444444444";
  const std::pair<std::string, std::string> tp = {"traceparent",
                                                  "00-" + w3c_trace + "-" + kSpanId + "-01"};
  const std::pair<std::string, std::string> ts = {"tracestate", "a=1"};
  const std::pair<std::string, std::string> b3 = {"b3", b3_trace + "-" + kSpanId + "-1"};
  const std::pair<std::string, std::string> multi = {"x-b3-traceid", multi_trace};
  const std::pair<std::string, std::string> multi_span = {"x-b3-spanid", kSpanId};
  const std::pair<std::string, std::string> multi_sampled = {"x-b3-sampled", "0"};
  const std::pair<std::string, std::string> uber = {"uber-trace-id",
                                                    uber_trace + ":" + kSpanId + ":0:1"};

  CHECK_FALSE(extract_context({}));
  CHECK_FALSE(extract_context({{"host", "example.com"}, {"user-agent", "curl"}}));

  // Everything present: W3C wins, and its tracestate comes along.
  HeaderList all = {uber, multi, multi_span, multi_sampled, b3, ts, tp};
  auto c = extract_context(all);
  REQUIRE(c);
  CHECK(c->format == ContextFormat::W3C);
  CHECK(tid(*c) == w3c_trace);
  CHECK(c->tracestate == "a=1");

  c = extract_context({uber, multi, multi_span, multi_sampled, b3});
  REQUIRE(c);
  CHECK(c->format == ContextFormat::B3Single);
  CHECK(tid(*c) == b3_trace);

  c = extract_context({uber, multi, multi_span, multi_sampled});
  REQUIRE(c);
  CHECK(c->format == ContextFormat::B3Multi);
  CHECK(tid(*c) == multi_trace);
  CHECK_FALSE(c->sampled);
  CHECK(c->sampling_decided);

  c = extract_context({uber});
  REQUIRE(c);
  CHECK(c->format == ContextFormat::Jaeger);
  CHECK(tid(*c) == uber_trace);

  // An invalid header of a stronger format falls through to the next.
  c = extract_context({{"traceparent", "00-" + w3c_trace + "-" + kSpanId + "-01-x"}, b3, uber});
  REQUIRE(c);
  CHECK(c->format == ContextFormat::B3Single);
  c = extract_context({{"traceparent", "garbage"}, {"b3", "1"}, multi, multi_span});
  REQUIRE(c);
  CHECK(c->format == ContextFormat::B3Multi);
  CHECK_FALSE(c->sampling_decided);
  c = extract_context(
      {{"b3", "0"}, {"x-b3-traceid", multi_trace}, uber});  // multi without a span id
  REQUIRE(c);
  CHECK(c->format == ContextFormat::Jaeger);
  CHECK_FALSE(extract_context({{"traceparent", "x"}, {"b3", "0"}, {"uber-trace-id", "1:2:3"}}));

  // Names are matched as given (the parser lowercases them); B3 multi flags count.
  c = extract_context({multi, multi_span, {"x-b3-flags", "1"}});
  REQUIRE(c);
  CHECK(c->sampled);
  CHECK(c->sampling_decided);
  CHECK_FALSE(extract_context({{"Traceparent", tp.second}}));
}

// Regression (was a bug): context.cpp valid_tracestate() checks each key character but not the first one: W3C
// Trace Context says key = ( lcalpha / DIGIT ) 0*255( keychar ), so "_a=1", "-a=1", "*a=1",
// "/a=1" and "@a=1" are invalid, yet they are accepted (and exported as the span's traceState).
TEST_CASE("valid_tracestate: a key starts with a lowercase letter or a digit") {
  CHECK(valid_tracestate("1a=1"));
  for (const char* bad : {"_a=1", "-a=1", "*a=1", "/a=1", "@a=1"}) {
    INFO(bad);
    CHECK_FALSE(valid_tracestate(bad));
  }
}
