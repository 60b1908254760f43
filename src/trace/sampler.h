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
  double ratio = 1.0;                // OTEL_TRACES_SAMPLER_ARG for the *traceidratio samplers
  bool keep_errors = true;           // a trace with an error span is always kept
  uint64_t keep_slower_than_ns = 0;  // a trace with a span this slow is always kept (0: off)
  // Root traces this node may start per second (0: no limit). Above it the root ratio falls
  // (adaptive_ratio.h); errors, slow traces and decided parents are not limited.
  double max_traces_per_second = 0;
};

// One line naming what is wrong, or empty.
std::string validate(const SamplerConfig& config);
// Reads OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG and WEFT_MAX_TRACES_PER_SECOND into
// `config` (unset ones leave it).
std::string sampler_from_environment(SamplerConfig& config);

enum class SampleReason { Error, Slow, Parent, Root };

struct SampleDecision {
  bool keep;
  SampleReason reason;
};

// `root` is the trace's root span, `any_error`/`slowest_ns` summarise the whole trace. The
// configured ratio alone: no rate limit (Sampler below applies it).
SampleDecision decide(const SamplerConfig& config, const Span& root, bool any_error,
                      uint64_t slowest_ns);

// The ratio a root sampler keeps when nothing limits it: 1 (always_on), 0 (always_off) or
// the configured ratio.
double root_ceiling(const SamplerConfig& config);
// As OpenTelemetry's TraceIdRatioBased: the low 8 bytes of the id against ratio * 2^63, so
// every node sampling one trace at one ratio agrees.
bool ratio_keeps(const TraceId& id, double ratio);

// Lowers the root ratio while more root traces arrive than `max_per_second`, and raises it
// again when they slow down. Per interval (1 s of the caller's clock) the rate of root
// decisions is measured; the ratio then becomes max_per_second / rate at once when that is
// lower (a flood must stop now), or at most doubles toward it (a lull of one interval does not
// open the gates). A token bucket of one second's allowance catches the first interval of a
// flood, before the ratio has adapted. The clock is the caller's (kernel time converted to
// wall time on the pipeline thread, a fake one in tests).
class AdaptiveRatio {
 public:
  static constexpr uint64_t kIntervalNs = 1'000'000'000;

  AdaptiveRatio(double max_per_second, double ceiling);

  // One root trace to decide at `now_ns`.
  bool keep(const TraceId& id, uint64_t now_ns);
  // Time passes without roots: the ratio rises as it would on the next root.
  void advance(uint64_t now_ns);
  // The ratio in force.
  double ratio() const { return ratio_; }
  // Roots kept by the ratio but refused by the bucket.
  uint64_t rate_limited() const { return rate_limited_; }

 private:
  void close_interval(uint64_t roots);

  double max_per_second_;
  double ceiling_;
  double ratio_;
  bool started_ = false;
  uint64_t interval_start_ns_ = 0;
  uint64_t roots_in_interval_ = 0;
  double tokens_;
  uint64_t refilled_at_ns_ = 0;
  uint64_t rate_limited_ = 0;
};

// A sampler with its state: the configuration plus, with max_traces_per_second, the adaptive
// root ratio.
class Sampler {
 public:
  explicit Sampler(SamplerConfig config);

  // As decide(), at `now_ns` on the caller's clock.
  SampleDecision decide(const Span& root, bool any_error, uint64_t slowest_ns, uint64_t now_ns);
  // The ratio root traces are kept at now: what the limit allows, or the configured ratio.
  double effective_ratio() const;
  // The pipeline's clock moved on (no trace decided): the ratio follows the time.
  void advance(uint64_t now_ns) {
    if (adaptive_) adaptive_->advance(now_ns);
  }
  uint64_t rate_limited() const { return adaptive_ ? adaptive_->rate_limited() : 0; }

 private:
  SamplerConfig config_;
  std::optional<AdaptiveRatio> adaptive_;
};

}  // namespace weft::trace
