// Which traces are exported: decided once per trace, so a trace is never half exported.
#pragma once

#include <cstdint>
#include <string>

#include "trace/span.h"

namespace weft::trace {

struct SamplerConfig {
  // OTEL_TRACES_SAMPLER names: always_on, always_off, traceidratio, parentbased_always_on,
  // parentbased_always_off, parentbased_traceidratio.
  std::string sampler = "parentbased_always_on";
  double ratio = 1.0;              // OTEL_TRACES_SAMPLER_ARG for the *traceidratio samplers
  bool keep_errors = true;         // a trace with an error span is always kept
  uint64_t keep_slower_than_ns = 0;  // a trace with a span this slow is always kept (0: off)
};

// One line naming what is wrong, or empty.
std::string validate(const SamplerConfig& config);
// Reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG into `config` (unset ones leave it).
std::string sampler_from_environment(SamplerConfig& config);

enum class SampleReason { Error, Slow, Parent, Root };

struct SampleDecision {
  bool keep;
  SampleReason reason;
};

// `root` is the trace's root span, `any_error`/`slowest_ns` summarise the whole trace.
SampleDecision decide(const SamplerConfig& config, const Span& root, bool any_error, uint64_t slowest_ns);

}  // namespace weft::trace
