// Trace sampling: OTEL_TRACES_SAMPLER names, ratio, parent-based, errors and slow traces.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>

#include "trace/sampler.h"

using namespace weft::trace;

namespace {

SamplerConfig config(const std::string& sampler, double ratio = 1.0) {
  SamplerConfig c;
  c.sampler = sampler;
  c.ratio = ratio;
  c.keep_errors = false;
  return c;
}

// A root span whose trace id has the given low 8 bytes (the part the ratio looks at).
Span root_with_low(uint8_t low_byte) {
  Span s;
  s.trace_id.fill(0x5a);
  for (int i = 8; i < 16; ++i) s.trace_id[i] = low_byte;
  return s;
}

Span root_with_parent(bool sampled, bool decided = true) {
  Span s = root_with_low(0xff);  // a ratio sampler at 0.5 would drop this id
  WireContext w;
  w.trace_id = s.trace_id;
  w.span_id.fill(1);
  w.sampled = sampled;
  w.sampling_decided = decided;
  s.wire = w;
  return s;
}

bool keeps(const SamplerConfig& c, const Span& root) {
  return decide(c, root, false, 0).keep;
}

// Sets or unsets an environment variable for the life of the object.
struct EnvVar {
  std::string name;
  std::string old;
  bool had;
  EnvVar(const char* n, const char* value) : name(n) {
    const char* o = std::getenv(n);
    had = o != nullptr;
    if (had) old = o;
    if (value)
      setenv(n, value, 1);
    else
      unsetenv(n);
  }
  ~EnvVar() {
    if (had)
      setenv(name.c_str(), old.c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

}  // namespace

TEST_CASE("sampler: defaults") {
  SamplerConfig c;
  CHECK(c.sampler == "parentbased_always_on");
  CHECK(c.ratio == 1.0);
  CHECK(c.keep_errors);
  CHECK(c.keep_slower_than_ns == 0);
  CHECK(validate(c).empty());
}

TEST_CASE("sampler: always_on and always_off") {
  Span root = root_with_low(0xff);
  auto on = decide(config("always_on"), root, false, 0);
  CHECK(on.keep);
  CHECK(on.reason == SampleReason::Root);
  auto off = decide(config("always_off"), root, false, 0);
  CHECK_FALSE(off.keep);
  CHECK(off.reason == SampleReason::Root);
  // Not parent-based: the parent's decision does not matter.
  CHECK(keeps(config("always_on"), root_with_parent(false)));
  CHECK_FALSE(keeps(config("always_off"), root_with_parent(true)));
}

TEST_CASE("sampler: traceidratio looks at the low 8 bytes of the trace id") {
  CHECK(keeps(config("traceidratio", 0.5), root_with_low(0x00)));
  CHECK_FALSE(keeps(config("traceidratio", 0.5), root_with_low(0xff)));
  // Low bytes 0x3f...: (low >> 1) is 0x1f9f..., just under 2^61, so below ratio * 2^63 for
  // 0.5 and 0.25 but not for 0.125 (2^60).
  Span quarter = root_with_low(0x3f);
  CHECK(keeps(config("traceidratio", 0.5), quarter));
  CHECK(keeps(config("traceidratio", 0.25), quarter));
  CHECK_FALSE(keeps(config("traceidratio", 0.125), quarter));
  // The high 8 bytes do not matter.
  Span high = root_with_low(0x00);
  high.trace_id.fill(0xff);
  for (int i = 8; i < 16; ++i) high.trace_id[i] = 0;
  CHECK(keeps(config("traceidratio", 0.5), high));
  // Ratio 1 keeps everything, 0 nothing.
  CHECK(keeps(config("traceidratio", 1.0), root_with_low(0xff)));
  CHECK_FALSE(keeps(config("traceidratio", 0.0), root_with_low(0x00)));
  // Not parent-based: a sampled parent does not save a dropped id.
  CHECK_FALSE(keeps(config("traceidratio", 0.5), root_with_parent(true)));
}

TEST_CASE("sampler: traceidratio keeps about `ratio` of random ids") {
  std::mt19937_64 rng(20261122);
  for (double ratio : {0.1, 0.25, 0.5, 0.9}) {
    SamplerConfig c = config("traceidratio", ratio);
    int kept = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
      Span s;
      uint64_t a = rng(), b = rng();
      for (int j = 0; j < 8; ++j) {
        s.trace_id[j] = static_cast<uint8_t>(a >> (8 * j));
        s.trace_id[8 + j] = static_cast<uint8_t>(b >> (8 * j));
      }
      kept += keeps(c, s);
    }
    INFO("ratio " << ratio << " kept " << kept);
    CHECK(std::abs(kept - ratio * n) < 0.02 * n);
  }
}

TEST_CASE("sampler: parent-based samplers follow a decided parent") {
  for (const char* name :
       {"parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio"}) {
    INFO(name);
    SamplerConfig c = config(name, 0.5);
    auto yes = decide(c, root_with_parent(true), false, 0);
    CHECK(yes.keep);
    CHECK(yes.reason == SampleReason::Parent);
    auto no = decide(c, root_with_parent(false), false, 0);
    CHECK_FALSE(no.keep);
    CHECK(no.reason == SampleReason::Parent);
  }
}

TEST_CASE("sampler: parent-based samplers use their root sampler without a decided parent") {
  // No parent.
  CHECK(keeps(config("parentbased_always_on"), root_with_low(0xff)));
  CHECK_FALSE(keeps(config("parentbased_always_off"), root_with_low(0x00)));
  CHECK(keeps(config("parentbased_traceidratio", 0.5), root_with_low(0x00)));
  CHECK_FALSE(keeps(config("parentbased_traceidratio", 0.5), root_with_low(0xff)));
  // A parent that left the decision to us (B3 without sampling state).
  auto undecided =
      decide(config("parentbased_always_off"), root_with_parent(true, false), false, 0);
  CHECK_FALSE(undecided.keep);
  CHECK(undecided.reason == SampleReason::Root);
  CHECK(keeps(config("parentbased_always_on"), root_with_parent(false, false)));
  CHECK_FALSE(keeps(config("parentbased_traceidratio", 0.5), root_with_parent(true, false)));
}

TEST_CASE("sampler: errors and slow traces override a drop") {
  SamplerConfig c = config("always_off");
  Span root = root_with_low(0x00);
  CHECK_FALSE(decide(c, root, true, 0).keep);  // keep_errors is off
  c.keep_errors = true;
  auto error = decide(c, root, true, 0);
  CHECK(error.keep);
  CHECK(error.reason == SampleReason::Error);
  CHECK_FALSE(decide(c, root, false, 0).keep);

  c.keep_slower_than_ns = 100;
  auto slow = decide(c, root, false, 100);
  CHECK(slow.keep);
  CHECK(slow.reason == SampleReason::Slow);
  CHECK_FALSE(decide(c, root, false, 99).keep);
  c.keep_slower_than_ns = 0;  // off
  CHECK_FALSE(decide(c, root, false, UINT64_MAX).keep);

  // They override a parent's "not sampled" too.
  SamplerConfig p = config("parentbased_always_on");
  p.keep_errors = true;
  CHECK_FALSE(keeps(p, root_with_parent(false)));
  auto parent_error = decide(p, root_with_parent(false), true, 0);
  CHECK(parent_error.keep);
  CHECK(parent_error.reason == SampleReason::Error);
}

TEST_CASE("sampler: validate") {
  for (const char* name : {"always_on", "always_off", "traceidratio", "parentbased_always_on",
                           "parentbased_always_off", "parentbased_traceidratio"}) {
    INFO(name);
    CHECK(validate(config(name)).empty());
  }
  for (const char* name :
       {"", "AlwaysOn", "always_on ", "jaeger_remote", "parentbased_", "ratio"}) {
    INFO(name);
    std::string error = validate(config(name));
    CHECK(error.find("unknown sampler '" + std::string(name) + "'") == 0);
  }
  CHECK(validate(config("traceidratio", 0.0)).empty());
  CHECK(validate(config("traceidratio", 1.0)).empty());
  CHECK(validate(config("traceidratio", 0.001)).empty());
  CHECK(validate(config("traceidratio", -0.01)) == "sampler ratio must be between 0 and 1");
  CHECK(validate(config("traceidratio", 1.01)) == "sampler ratio must be between 0 and 1");
  CHECK_FALSE(validate(config("traceidratio", INFINITY)).empty());
}

// A NaN ratio compares false both ways: it must still be refused (OTEL_TRACES_SAMPLER_ARG=nan).
TEST_CASE("sampler: validate rejects a NaN ratio") {
  CHECK(validate(config("traceidratio", NAN)) == "sampler ratio must be between 0 and 1");
  EnvVar s("OTEL_TRACES_SAMPLER", "traceidratio");
  EnvVar a("OTEL_TRACES_SAMPLER_ARG", "nan");
  SamplerConfig c;
  CHECK(sampler_from_environment(c) == "sampler ratio must be between 0 and 1");
}

TEST_CASE("sampler: from the environment") {
  {
    EnvVar s("OTEL_TRACES_SAMPLER", nullptr);
    EnvVar a("OTEL_TRACES_SAMPLER_ARG", nullptr);
    SamplerConfig c = config("always_off", 0.3);
    CHECK(sampler_from_environment(c).empty());
    CHECK(c.sampler == "always_off");
    CHECK(c.ratio == 0.3);
  }
  {
    EnvVar s("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
    EnvVar a("OTEL_TRACES_SAMPLER_ARG", "0.25");
    SamplerConfig c;
    CHECK(sampler_from_environment(c).empty());
    CHECK(c.sampler == "parentbased_traceidratio");
    CHECK(c.ratio == 0.25);
  }
  {
    EnvVar s("OTEL_TRACES_SAMPLER", "traceidratio");
    EnvVar a("OTEL_TRACES_SAMPLER_ARG", "half");
    SamplerConfig c;
    CHECK(sampler_from_environment(c) == "OTEL_TRACES_SAMPLER_ARG is not a number: half");
  }
  {
    EnvVar s("OTEL_TRACES_SAMPLER", "traceidratio");
    EnvVar a("OTEL_TRACES_SAMPLER_ARG", "2");
    SamplerConfig c;
    CHECK(sampler_from_environment(c) == "sampler ratio must be between 0 and 1");
  }
  {
    EnvVar s("OTEL_TRACES_SAMPLER", "sometimes");
    EnvVar a("OTEL_TRACES_SAMPLER_ARG", "");
    SamplerConfig c;
    CHECK(sampler_from_environment(c).find("unknown sampler 'sometimes'") == 0);
    CHECK(c.ratio == 1.0);
  }
}

// --- adaptive root ratio (--max-traces-per-second), on a clock the test moves ---

namespace {

constexpr uint64_t kSecond = 1'000'000'000;

// Random trace ids, the way the stitcher makes them for roots.
struct Ids {
  std::mt19937_64 rng{20261202};
  TraceId next() {
    TraceId id{};
    uint64_t a = rng(), b = rng();
    for (int j = 0; j < 8; ++j) {
      id[j] = static_cast<uint8_t>(a >> (8 * j));
      id[8 + j] = static_cast<uint8_t>(b >> (8 * j));
    }
    return id;
  }
};

// `per_second` roots a second, evenly spaced, for `seconds` from `start`; returns how many
// were kept and moves `start` past them.
int offer(AdaptiveRatio& a, Ids& ids, uint64_t& start, int per_second, int seconds) {
  int kept = 0;
  for (int s = 0; s < seconds; ++s) {
    for (int i = 0; i < per_second; ++i)
      kept += a.keep(ids.next(), start + static_cast<uint64_t>(i) * kSecond / per_second);
    start += kSecond;
  }
  return kept;
}

}  // namespace

TEST_CASE("adaptive ratio: a flood of roots lowers the ratio to the limit") {
  AdaptiveRatio a(50, 1.0);
  Ids ids;
  uint64_t now = 1000 * kSecond;
  CHECK(a.ratio() == 1.0);
  // First second of the flood: the ratio has not seen it yet; the bucket (full, one second's
  // allowance, refilled at 50 a second) holds it to about twice the limit.
  int first = offer(a, ids, now, 5000, 1);
  CHECK(first <= 101);
  CHECK(first >= 95);
  CHECK(a.rate_limited() > 4000);
  // From then on the ratio is about 50/5000 and about 50 a second are kept.
  int later = offer(a, ids, now, 5000, 10);
  INFO("kept " << later << " in 10 s, ratio " << a.ratio());
  CHECK(a.ratio() == doctest::Approx(0.01).epsilon(0.05));
  CHECK(later >= 400);
  CHECK(later <= 510);
}

TEST_CASE("adaptive ratio: rises again when load falls, at most doubling per interval") {
  AdaptiveRatio a(50, 1.0);
  Ids ids;
  uint64_t now = 0;
  offer(a, ids, now, 5000, 3);
  double flooded = a.ratio();
  CHECK(flooded < 0.02);
  // Load falls to 20 roots a second: below the limit, so the ratio climbs back to 1, by at
  // most a factor of two each second.
  double previous = flooded;
  for (int s = 0; s < 4; ++s) {
    offer(a, ids, now, 20, 1);
    a.keep(ids.next(), now);  // the next interval's first root closes the last one
    CHECK(a.ratio() <= previous * 2.0 + 1e-12);
    CHECK(a.ratio() > previous);
    previous = a.ratio();
  }
  offer(a, ids, now, 20, 6);
  CHECK(a.ratio() == 1.0);
  // Everything is kept again.
  CHECK(offer(a, ids, now, 20, 2) >= 39);
}

TEST_CASE("adaptive ratio: idle seconds raise the ratio without any root") {
  AdaptiveRatio a(10, 1.0);
  Ids ids;
  uint64_t now = 0;
  offer(a, ids, now, 1000, 2);
  CHECK(a.ratio() < 0.02);
  // Ten quiet seconds, then one root: the ratio has climbed back to its ceiling.
  now += 10 * kSecond;
  CHECK(a.keep(ids.next(), now));
  CHECK(a.ratio() == 1.0);
}

TEST_CASE("adaptive ratio: never above the configured ratio") {
  AdaptiveRatio a(1000, 0.25);
  Ids ids;
  uint64_t now = 0;
  CHECK(a.ratio() == 0.25);
  int kept = offer(a, ids, now, 400, 5);  // well below the limit
  CHECK(a.ratio() == 0.25);
  CHECK(std::abs(kept - 500) < 80);
}

TEST_CASE("sampler with a limit: errors, slow traces and decided parents are not limited") {
  SamplerConfig c;  // parentbased_always_on
  c.max_traces_per_second = 5;
  c.keep_slower_than_ns = 1000;
  Sampler s(c);
  Ids ids;
  uint64_t now = 0;
  int kept_roots = 0, kept_errors = 0, kept_slow = 0, kept_parent = 0;
  for (int i = 0; i < 3000; ++i) {
    now += kSecond / 1000;  // 1000 roots a second for 3 s
    Span root;
    root.trace_id = ids.next();
    kept_roots += s.decide(root, false, 10, now).keep;
    if (i % 10 == 0) {
      auto e = s.decide(root, true, 10, now);
      kept_errors += e.keep && e.reason == SampleReason::Error;
      auto slow = s.decide(root, false, 1000, now);
      kept_slow += slow.keep && slow.reason == SampleReason::Slow;
      Span child_of_wire = root_with_parent(true);
      auto p = s.decide(child_of_wire, false, 10, now);
      kept_parent += p.keep && p.reason == SampleReason::Parent;
    }
  }
  CHECK(kept_errors == 300);
  CHECK(kept_slow == 300);
  CHECK(kept_parent == 300);
  CHECK(kept_roots <= 3 * 5 + 5);
  CHECK(s.effective_ratio() < 0.01);
}

TEST_CASE("sampler: effective ratio without a limit is the configured one") {
  CHECK(Sampler(config("always_on")).effective_ratio() == 1.0);
  CHECK(Sampler(config("parentbased_always_off")).effective_ratio() == 0.0);
  CHECK(Sampler(config("traceidratio", 0.3)).effective_ratio() == 0.3);
  SamplerConfig off = config("always_off");
  off.max_traces_per_second = 10;  // a limit cannot raise a ratio of 0
  Sampler s(off);
  Ids ids;
  for (int i = 0; i < 100; ++i)
    CHECK_FALSE(s.decide(Span{.trace_id = ids.next()}, false, 0, i * kSecond).keep);
}

TEST_CASE("sampler: max traces per second from the environment and validation") {
  SamplerConfig c;
  c.max_traces_per_second = -1;
  CHECK(validate(c) == "max traces per second must be a number from 0 (no limit) to 1e9");
  c.max_traces_per_second = NAN;
  CHECK_FALSE(validate(c).empty());
  {
    EnvVar m("WEFT_MAX_TRACES_PER_SECOND", "50");
    SamplerConfig e;
    CHECK(sampler_from_environment(e).empty());
    CHECK(e.max_traces_per_second == 50);
  }
  {
    EnvVar m("WEFT_MAX_TRACES_PER_SECOND", "lots");
    SamplerConfig e;
    CHECK(sampler_from_environment(e) ==
          "WEFT_MAX_TRACES_PER_SECOND must be a number from 0 (no limit) to 1e9: lots");
  }
}
