// Retry policy: which outcomes are retried, how long to wait, and Retry-After parsing.
//
// Delays are pure functions of their inputs; the random jitter is passed in, so tests
// (and the engine's timers) are deterministic.
#pragma once

#include <ctime>
#include <optional>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/attempt.hpp"

namespace llmbridge::llm {

// Server-directed delays are honoured up to this many seconds, even above max_delay
// (the server knows when it will accept us again; retrying sooner only earns another
// 429). A longer Retry-After makes the client stop retrying and return the attempt
// (still marked retryable) so the caller can requeue it -- openai-python 3.3 does the same.
inline constexpr double kMaxRetryAfterSeconds = 120.0;

struct RetryPolicy {
  int max_retries = 3;  // retries after the first try
  double base_delay = 1.0;
  double max_delay = 30.0;
  double multiplier = 2.0;

  static RetryPolicy from_config(const config::ProviderConfig& config) noexcept;

  // min(max_delay, base_delay * multiplier^retry_index), scaled into [0.75 d, d]:
  // jitter01 = 0 gives 0.75 d, jitter01 -> 1 gives d. retry_index is 0-based.
  double backoff_delay(int retry_index, double jitter01) const noexcept;

  // The wait before retry number `retry_index` (0-based) after `last`: the server's
  // Retry-After when 0 < retry_after_s <= kMaxRetryAfterSeconds, else backoff_delay.
  double next_delay(const Attempt& last, int retry_index, double jitter01) const noexcept;

  // True when `last` failed, is retryable, was not an auth refusal, fewer than
  // max_retries retries were done, and the server did not ask for a wait above
  // kMaxRetryAfterSeconds.
  bool should_retry(const Attempt& last, int retries_done) const noexcept;
};

// Server-directed delay in seconds, in openai-python's order: `retry-after-ms` (float
// milliseconds), then `Retry-After` as float seconds, then as an HTTP-date (IMF-fixdate;
// RFC 850 and asctime forms too, as RFC 9110 asks) minus `now`. Zero, negative,
// non-finite and malformed values yield nullopt (and fall through to the next form).
std::optional<double> parse_retry_after(std::optional<std::string_view> retry_after_ms,
                                        std::optional<std::string_view> retry_after, std::time_t now);

// An HTTP-date as Unix time; nullopt when malformed.
std::optional<std::time_t> parse_http_date(std::string_view text);

}  // namespace llmbridge::llm
