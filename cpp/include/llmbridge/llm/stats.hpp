// Per-client counters of logical calls and a latency histogram, cheap enough to leave on.
//
// The I/O thread records (one relaxed atomic add per counter, a short mutex only for the
// error-string map), Python threads read snapshots. A snapshot reads each counter on its
// own, so fields taken while calls complete may disagree by a call or two; each field is
// exact on its own, and all agree once the client is idle.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "llmbridge/llm/attempt.hpp"

namespace llmbridge::llm {

// Fixed log buckets: bucket i holds [kMinMs * kGrowth^i, kMinMs * kGrowth^(i+1)); below
// kMinMs goes to bucket 0, beyond the last edge to the last bucket. With 10 % growth a
// quantile read from the bucket's geometric middle is within ~5 % of the true value.
class LatencyHistogram {
 public:
  static constexpr double kMinMs = 0.1;
  static constexpr double kGrowth = 1.1;
  static constexpr std::size_t kBuckets = 166;  // 0.1 ms .. ~10 min (0.1 * 1.1^164 ≈ 6.2e5 ms)

  void record(double ms) noexcept;
  // The q-quantile (0 < q <= 1) in ms: the geometric middle of the bucket holding the
  // ceil(q * count)-th sample; 0 when empty.
  double quantile(double q) const noexcept;
  std::uint64_t count() const noexcept;

  static std::size_t bucket_of(double ms) noexcept;
  static double lower_edge(std::size_t bucket) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

struct StatsSnapshot {
  std::uint64_t calls = 0;       // logical calls completed (success or error)
  std::uint64_t successes = 0;
  std::map<std::string, std::uint64_t> errors;  // by leading error word ("http_500", "timeout", ...)
  std::uint64_t retries = 0;     // HTTP tries beyond each call's first
  std::uint64_t prompt_tokens = 0;      // summed where the server reported them
  std::uint64_t completion_tokens = 0;
  std::int64_t in_flight = 0;    // logical calls started and not yet completed
  std::uint64_t latency_samples = 0;  // calls in the histogram (those that sent a try)
  double latency_p50_ms = 0;
  double latency_p95_ms = 0;
  double latency_p99_ms = 0;
};

// "connection_error: refused" -> "connection_error"; "http_500" -> "http_500".
std::string_view error_kind(std::string_view error) noexcept;

class CallStats {
 public:
  // A logical call started (counts in flight until its record()).
  void begin() noexcept { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  // A logical call completed with `a` (its attempts, latency_ms, tokens, error).
  // Calls that never sent a try (attempts == 0: cancelled or closed before sending)
  // count but stay out of the histogram.
  void record(const Attempt& a);
  // In a forked child: the parent's calls in flight will never complete here.
  void forget_in_flight() noexcept { in_flight_.store(0, std::memory_order_relaxed); }
  StatsSnapshot snapshot() const;

 private:
  std::atomic<std::uint64_t> calls_{0};
  std::atomic<std::uint64_t> successes_{0};
  std::atomic<std::uint64_t> retries_{0};
  std::atomic<std::uint64_t> prompt_tokens_{0};
  std::atomic<std::uint64_t> completion_tokens_{0};
  std::atomic<std::int64_t> in_flight_{0};
  LatencyHistogram latency_;
  mutable std::mutex errors_mu_;
  std::map<std::string, std::uint64_t, std::less<>> errors_;  // guarded by errors_mu_
};

}  // namespace llmbridge::llm
