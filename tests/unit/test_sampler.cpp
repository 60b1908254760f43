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
