#include "trace/sampler.h"

#include <cstdlib>
#include <cstring>

namespace weft::trace {
namespace {

bool known(const std::string& s) {
  return s == "always_on" || s == "always_off" || s == "traceidratio" || s == "parentbased_always_on" ||
         s == "parentbased_always_off" || s == "parentbased_traceidratio";
}

// As OpenTelemetry's TraceIdRatioBased: the low 8 bytes of the id against ratio * 2^63.
bool ratio_keeps(const TraceId& id, double ratio) {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0) return false;
  uint64_t low = 0;
  for (int i = 8; i < 16; ++i) low = low << 8 | id[i];
  return (low >> 1) < static_cast<uint64_t>(ratio * static_cast<double>(1ull << 63));
}

bool root_decision(const std::string& sampler, const TraceId& id, double ratio) {
  if (sampler.ends_with("always_off")) return false;
  if (sampler.ends_with("traceidratio")) return ratio_keeps(id, ratio);
  return true;
}

}  // namespace

std::string validate(const SamplerConfig& c) {
  if (!known(c.sampler))
    return "unknown sampler '" + c.sampler +
           "' (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, "
           "parentbased_traceidratio)";
  if (!(c.ratio >= 0.0 && c.ratio <= 1.0)) return "sampler ratio must be between 0 and 1";
  return {};
}

std::string sampler_from_environment(SamplerConfig& c) {
  if (const char* s = std::getenv("OTEL_TRACES_SAMPLER"); s && *s) c.sampler = s;
  if (const char* arg = std::getenv("OTEL_TRACES_SAMPLER_ARG"); arg && *arg) {
    char* end = nullptr;
    double r = std::strtod(arg, &end);
    if (*end != '\0') return std::string("OTEL_TRACES_SAMPLER_ARG is not a number: ") + arg;
    c.ratio = r;
  }
  return validate(c);
}

SampleDecision decide(const SamplerConfig& c, const Span& root, bool any_error, uint64_t slowest_ns) {
  if (c.keep_errors && any_error) return {true, SampleReason::Error};
  if (c.keep_slower_than_ns && slowest_ns >= c.keep_slower_than_ns) return {true, SampleReason::Slow};
  bool parent_based = c.sampler.starts_with("parentbased_");
  if (parent_based && root.wire && root.wire->sampling_decided) return {root.wire->sampled, SampleReason::Parent};
  return {root_decision(c.sampler, root.trace_id, c.ratio), SampleReason::Root};
}

}  // namespace weft::trace
