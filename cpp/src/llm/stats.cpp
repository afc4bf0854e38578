// CallStats: relaxed atomics for counters (no ordering between them is promised), a
// walk over ~170 buckets for quantiles on read.
#include "llmbridge/llm/stats.hpp"

#include <algorithm>
#include <cmath>

namespace llmbridge::llm {

namespace {
const double kLogGrowth = std::log(LatencyHistogram::kGrowth);
}

std::size_t LatencyHistogram::bucket_of(double ms) noexcept {
  if (!(ms > kMinMs)) return 0;  // also NaN
  const double i = std::floor(std::log(ms / kMinMs) / kLogGrowth);
  return i >= double(kBuckets - 1) ? kBuckets - 1 : std::size_t(i);
}

double LatencyHistogram::lower_edge(std::size_t bucket) noexcept {
  return kMinMs * std::pow(kGrowth, double(bucket));
}

void LatencyHistogram::record(double ms) noexcept {
  buckets_[bucket_of(ms)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t LatencyHistogram::count() const noexcept {
  std::uint64_t n = 0;
  for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
  return n;
}

double LatencyHistogram::quantile(double q) const noexcept {
  std::array<std::uint64_t, kBuckets> counts;
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) n += counts[i] = buckets_[i].load(std::memory_order_relaxed);
  if (n == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const std::uint64_t rank = std::max<std::uint64_t>(1, std::uint64_t(std::ceil(q * double(n))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return kMinMs * std::pow(kGrowth, double(i) + 0.5);
  }
  return kMinMs * std::pow(kGrowth, double(kBuckets) - 0.5);
}

std::string_view error_kind(std::string_view error) noexcept {
  const auto colon = error.find(':');
  if (colon != std::string_view::npos) error = error.substr(0, colon);
  while (!error.empty() && error.back() == ' ') error.remove_suffix(1);
  return error;
}

void CallStats::record(const Attempt& a) {
  calls_.fetch_add(1, std::memory_order_relaxed);
  if (a.success) {
    successes_.fetch_add(1, std::memory_order_relaxed);
  } else {
    const std::string_view kind = error_kind(a.error);
    std::lock_guard<std::mutex> lock(errors_mu_);
    auto it = errors_.find(kind);
    if (it == errors_.end()) it = errors_.emplace(std::string(kind.empty() ? "unknown" : kind), 0).first;
    ++it->second;
  }
  if (a.attempts > 1) retries_.fetch_add(std::uint64_t(a.attempts - 1), std::memory_order_relaxed);
  if (a.prompt_tokens > 0) prompt_tokens_.fetch_add(std::uint64_t(a.prompt_tokens), std::memory_order_relaxed);
  if (a.completion_tokens > 0)
    completion_tokens_.fetch_add(std::uint64_t(a.completion_tokens), std::memory_order_relaxed);
  if (a.attempts > 0) latency_.record(a.latency_ms);
  // Last: a reader that sees in_flight drop also sees this call's counters (each load
  // is relaxed, so only per counter; see the header).
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

StatsSnapshot CallStats::snapshot() const {
  StatsSnapshot s;
  s.in_flight = std::max<std::int64_t>(0, in_flight_.load(std::memory_order_relaxed));
  s.calls = calls_.load(std::memory_order_relaxed);
  s.successes = successes_.load(std::memory_order_relaxed);
  s.retries = retries_.load(std::memory_order_relaxed);
  s.prompt_tokens = prompt_tokens_.load(std::memory_order_relaxed);
  s.completion_tokens = completion_tokens_.load(std::memory_order_relaxed);
  s.latency_samples = latency_.count();
  s.latency_p50_ms = latency_.quantile(0.50);
  s.latency_p95_ms = latency_.quantile(0.95);
  s.latency_p99_ms = latency_.quantile(0.99);
  {
    std::lock_guard<std::mutex> lock(errors_mu_);
    s.errors.insert(errors_.begin(), errors_.end());
  }
  return s;
}

}  // namespace llmbridge::llm
