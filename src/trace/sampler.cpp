#include "trace/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace weft::trace {
namespace {

bool known(const std::string& s) {
  return s == "always_on" || s == "always_off" || s == "traceidratio" ||
         s == "parentbased_always_on" || s == "parentbased_always_off" ||
         s == "parentbased_traceidratio";
}

// A rise per interval of at most this factor: load that fell for one second may come back.
constexpr double kMaxRise = 2.0;
// Intervals without roots after which the ratio has surely reached its ceiling.
constexpr uint64_t kMaxIdleIntervals = 64;

}  // namespace

bool ratio_keeps(const TraceId& id, double ratio) {
  if (ratio >= 1.0) return true;
  if (ratio <= 0.0) return false;
  uint64_t low = 0;
  for (int i = 8; i < 16; ++i) low = low << 8 | id[i];
  return (low >> 1) < static_cast<uint64_t>(ratio * static_cast<double>(1ull << 63));
}

double root_ceiling(const SamplerConfig& c) {
  if (c.sampler.ends_with("always_off")) return 0.0;
  if (c.sampler.ends_with("traceidratio")) return c.ratio;
  return 1.0;
}

std::string validate(const SamplerConfig& c) {
  if (!known(c.sampler))
    return "unknown sampler '" + c.sampler +
           "' (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, "
           "parentbased_traceidratio)";
  if (!(c.ratio >= 0.0 && c.ratio <= 1.0)) return "sampler ratio must be between 0 and 1";
  if (!(c.max_traces_per_second >= 0.0 && c.max_traces_per_second <= 1e9))
    return "max traces per second must be a number from 0 (no limit) to 1e9";
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
  if (const char* max = std::getenv("WEFT_MAX_TRACES_PER_SECOND"); max && *max) {
    char* end = nullptr;
    double m = std::strtod(max, &end);
    if (*end != '\0' || !(m >= 0.0 && m <= 1e9))
      return std::string("WEFT_MAX_TRACES_PER_SECOND must be a number from 0 (no limit) to 1e9: ") +
             max;
    c.max_traces_per_second = m;
  }
  return validate(c);
}

SampleDecision decide(const SamplerConfig& c, const Span& root, bool any_error,
                      uint64_t slowest_ns) {
  if (c.keep_errors && any_error) return {true, SampleReason::Error};
  if (c.keep_slower_than_ns && slowest_ns >= c.keep_slower_than_ns)
    return {true, SampleReason::Slow};
  bool parent_based = c.sampler.starts_with("parentbased_");
  if (parent_based && root.wire && root.wire->sampling_decided)
    return {root.wire->sampled, SampleReason::Parent};
  return {ratio_keeps(root.trace_id, root_ceiling(c)), SampleReason::Root};
}

AdaptiveRatio::AdaptiveRatio(double max_per_second, double ceiling)
    : max_per_second_(max_per_second),
      ceiling_(ceiling),
      ratio_(ceiling),
      tokens_(std::max(1.0, max_per_second)) {}

void AdaptiveRatio::close_interval(uint64_t roots) {
  double rate = static_cast<double>(roots) * 1e9 / static_cast<double>(kIntervalNs);
  double target = rate > max_per_second_ ? max_per_second_ / rate : 1.0;
  target = std::min(target, ceiling_);
  ratio_ = target < ratio_ ? target : std::min(target, std::max(ratio_, 1e-9) * kMaxRise);
}

void AdaptiveRatio::advance(uint64_t now_ns) {
  if (!started_) {
    started_ = true;
    interval_start_ns_ = refilled_at_ns_ = now_ns;
    return;
  }
  if (now_ns > refilled_at_ns_) {
    double capacity = std::max(1.0, max_per_second_);
    tokens_ = std::min(
        capacity, tokens_ + max_per_second_ * static_cast<double>(now_ns - refilled_at_ns_) / 1e9);
    refilled_at_ns_ = now_ns;
  }
  if (now_ns < interval_start_ns_ + kIntervalNs) return;
  uint64_t elapsed = (now_ns - interval_start_ns_) / kIntervalNs;
  close_interval(roots_in_interval_);
  for (uint64_t i = 1; i < std::min(elapsed, kMaxIdleIntervals); ++i) close_interval(0);
  interval_start_ns_ += elapsed * kIntervalNs;
  roots_in_interval_ = 0;
}

bool AdaptiveRatio::keep(const TraceId& id, uint64_t now_ns) {
  advance(now_ns);
  ++roots_in_interval_;
  if (!ratio_keeps(id, ratio_)) return false;
  if (tokens_ < 1.0) {
    ++rate_limited_;
    return false;
  }
  tokens_ -= 1.0;
  return true;
}

Sampler::Sampler(SamplerConfig config) : config_(std::move(config)) {
  if (config_.max_traces_per_second > 0)
    adaptive_.emplace(config_.max_traces_per_second, root_ceiling(config_));
}

SampleDecision Sampler::decide(const Span& root, bool any_error, uint64_t slowest_ns,
                               uint64_t now_ns) {
  SampleDecision d = trace::decide(config_, root, any_error, slowest_ns);
  if (d.reason != SampleReason::Root || !adaptive_) return d;
  return {adaptive_->keep(root.trace_id, now_ns), SampleReason::Root};
}

double Sampler::effective_ratio() const {
  return adaptive_ ? adaptive_->ratio() : root_ceiling(config_);
}

}  // namespace weft::trace
