// Retry policy: backoff arithmetic with injected jitter, Retry-After parsing in every
// form, and the decision to retry.
#include <catch2/catch.hpp>

#include <cmath>
#include <ctime>
#include <limits>
#include <optional>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/retry.hpp"

using namespace llmbridge;
using llm::Attempt;
using llm::RetryPolicy;
using Catch::Detail::Approx;

namespace {

// 2015-10-21 07:28:00 UTC
constexpr std::time_t kOct21 = 1445412480;

Attempt retryable_failure() {
  Attempt a;
  a.error = "http_503";
  a.status_code = 503;
  a.retryable = true;
  return a;
}

}  // namespace

TEST_CASE("retry: policy from config", "[retry]") {
  config::VLLMConfig c;
  c.max_retries = 5;
  c.retry_base_delay = 0.5;
  c.retry_max_delay = 8;
  c.retry_backoff_multiplier = 3;
  RetryPolicy p = RetryPolicy::from_config(c);
  CHECK(p.max_retries == 5);
  CHECK(p.base_delay == 0.5);
  CHECK(p.max_delay == 8);
  CHECK(p.multiplier == 3);
  RetryPolicy d = RetryPolicy::from_config(config::OllamaConfig{});
  CHECK(d.max_retries == 3);
  CHECK(d.base_delay == 1.0);
  CHECK(d.max_delay == 30.0);
  CHECK(d.multiplier == 2.0);
}

TEST_CASE("retry: backoff sequence with fixed jitter, capped", "[retry]") {
  RetryPolicy p{3, 1.0, 30.0, 2.0};
  const double full[] = {1, 2, 4, 8, 16, 30, 30, 30};
  for (int i = 0; i < 8; ++i) {
    INFO("retry " << i);
    CHECK(p.backoff_delay(i, 0.0) == Approx(0.75 * full[i]));
    CHECK(p.backoff_delay(i, 0.999999) == Approx(full[i]).epsilon(1e-5));
    CHECK(p.backoff_delay(i, 0.5) == Approx(0.875 * full[i]));
    const double d = p.backoff_delay(i, 0.3);
    CHECK(d >= 0.75 * full[i]);
    CHECK(d <= full[i]);
  }
}

TEST_CASE("retry: backoff edge cases", "[retry]") {
  RetryPolicy p{3, 1.0, 30.0, 2.0};
  CHECK(p.backoff_delay(100000, 1.0) == Approx(30.0));  // pow overflows to inf: capped
  CHECK(p.backoff_delay(std::numeric_limits<int>::max(), 0.0) == Approx(22.5));
  CHECK(p.backoff_delay(-3, 1.0) == Approx(1.0));  // negative index treated as 0
  CHECK(p.backoff_delay(0, -1.0) == Approx(0.75));  // jitter clamped into [0, 1]
  CHECK(p.backoff_delay(0, 7.0) == Approx(1.0));
  CHECK(p.backoff_delay(0, std::nan("")) == Approx(0.75));
  RetryPolicy zero{3, 0.0, 0.0, 2.0};
  CHECK(zero.backoff_delay(5, 1.0) == 0.0);
  RetryPolicy flat{3, 2.0, 30.0, 1.0};
  CHECK(flat.backoff_delay(9, 1.0) == Approx(2.0));
  RetryPolicy openai{2, 0.5, 8.0, 2.0};  // openai-python's constants
  CHECK(openai.backoff_delay(0, 0.0) == Approx(0.375));
  CHECK(openai.backoff_delay(1, 1.0) == Approx(1.0));
  CHECK(openai.backoff_delay(10, 0.0) == Approx(6.0));
}

TEST_CASE("retry: retry-after-ms first, then seconds, then HTTP-date", "[retry]") {
  using llm::parse_retry_after;
  using SV = std::optional<std::string_view>;
  const SV none = std::nullopt;
  CHECK(parse_retry_after(SV("1500"), none, kOct21) == Approx(1.5));
  CHECK(parse_retry_after(SV("250.5"), SV("9"), kOct21) == Approx(0.2505));  // ms wins
  CHECK(parse_retry_after(SV(" 100 "), none, kOct21) == Approx(0.1));
  CHECK(parse_retry_after(SV("junk"), SV("2"), kOct21) == Approx(2.0));  // bad ms falls through
  CHECK(parse_retry_after(SV("0"), SV("3"), kOct21) == Approx(3.0));
  CHECK(parse_retry_after(SV("-5"), none, kOct21) == std::nullopt);
  CHECK(parse_retry_after(none, SV("2"), kOct21) == Approx(2.0));
  CHECK(parse_retry_after(none, SV("1.5"), kOct21) == Approx(1.5));
  CHECK(parse_retry_after(none, SV("  7\r\n"), kOct21) == Approx(7.0));
  CHECK(parse_retry_after(none, SV("1e1"), kOct21) == Approx(10.0));
  CHECK(parse_retry_after(none, SV("+4"), kOct21) == Approx(4.0));
  CHECK(parse_retry_after(none, SV("Wed, 21 Oct 2015 07:28:30 GMT"), kOct21) == Approx(30.0));
  CHECK(parse_retry_after(none, SV("Wednesday, 21-Oct-15 07:29:00 GMT"), kOct21) == Approx(60.0));
  CHECK(parse_retry_after(none, SV("Wed Oct 21 07:28:05 2015"), kOct21) == Approx(5.0));
  CHECK(parse_retry_after(none, SV("Wed, 21 Oct 2015 08:28:00 GMT"), kOct21) == Approx(3600.0));
}

TEST_CASE("retry: zero, negative, non-finite and malformed Retry-After yield nothing", "[retry]") {
  using llm::parse_retry_after;
  using SV = std::optional<std::string_view>;
  const SV none = std::nullopt;
  CHECK(parse_retry_after(none, none, kOct21) == std::nullopt);
  for (const char* bad : {"0", "0.0", "-1", "-0.5", "nan", "NaN", "inf", "-inf", "infinity", "1e400", "", "  ",
                          "soon", "1s", "5 seconds", "0x10", "1,5", "Wed, 21 Oct 2015 07:28:00 GMT" /* == now */,
                          "Wed, 21 Oct 2015 07:27:00 GMT" /* past */, "Wed, 32 Oct 2015 07:28:00 GMT",
                          "Wed, 29 Feb 2015 07:28:00 GMT", "Wed, 21 Foo 2015 07:28:00 GMT",
                          "Wed, 21 Oct 2015 24:00:00 GMT", "Wed, 21 Oct 2015 07:28 GMT",
                          "Wed, 21 Oct 2015 07:28:00 CET", "21 Oct 2015 07:28:00 GMT"}) {
    INFO("'" << bad << "'");
    CHECK(parse_retry_after(none, SV(bad), kOct21) == std::nullopt);
    CHECK(parse_retry_after(SV(bad), none, kOct21) == std::nullopt);
  }
}

TEST_CASE("retry: HTTP-date to Unix time", "[retry]") {
  using llm::parse_http_date;
  CHECK(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT") == std::time_t(0));
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == std::time_t(784111777));
  CHECK(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == std::time_t(784111777));
  CHECK(parse_http_date("Sun Nov  6 08:49:37 1994") == std::time_t(784111777));
  CHECK(parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT") == kOct21);
  CHECK(parse_http_date("Thu, 29 Feb 2024 12:00:00 GMT") == std::time_t(1709208000));
  CHECK(parse_http_date("Fri, 01 Jan 2038 00:00:00 GMT") == std::time_t(2145916800));
  CHECK(parse_http_date("thu, 01 jan 1970 00:00:00 GMT") == std::time_t(0));  // case of names ignored
  CHECK(parse_http_date("Sun, 06 Nov 1994 08:49:37") == std::nullopt);
  CHECK(parse_http_date("Thu, 29 Feb 2023 12:00:00 GMT") == std::nullopt);
  CHECK(parse_http_date("Sunday, 6-Nov-94 08:49:37 GMT") == std::nullopt);
  CHECK(parse_http_date("") == std::nullopt);
}

TEST_CASE("retry: next_delay honours Retry-After up to 120 s, else backs off", "[retry]") {
  RetryPolicy p{3, 1.0, 30.0, 2.0};
  Attempt a = retryable_failure();
  CHECK(p.next_delay(a, 2, 0.0) == Approx(3.0));  // no server delay: backoff
  a.retry_after_s = 5;
  CHECK(p.next_delay(a, 2, 0.0) == Approx(5.0));  // server value, no jitter
  a.retry_after_s = 60;
  CHECK(p.next_delay(a, 0, 0.0) == Approx(60.0));  // above max_delay: still honoured
  a.retry_after_s = llm::kMaxRetryAfterSeconds;
  CHECK(p.next_delay(a, 0, 1.0) == Approx(120.0));
  a.retry_after_s = 121;
  CHECK(p.next_delay(a, 0, 1.0) == Approx(1.0));  // never slept on (should_retry says no)
  a.retry_after_s = 0;
  CHECK(p.next_delay(a, 1, 1.0) == Approx(2.0));
}

TEST_CASE("retry: should_retry stops at max_retries and never retries the non-retryable", "[retry]") {
  RetryPolicy p{3, 1.0, 30.0, 2.0};
  Attempt a = retryable_failure();
  CHECK(p.should_retry(a, 0));
  CHECK(p.should_retry(a, 2));
  CHECK_FALSE(p.should_retry(a, 3));
  CHECK_FALSE(p.should_retry(a, 10));

  // A whole call: always failing, retries until the budget is spent.
  int tries = 1;
  while (p.should_retry(a, tries - 1)) ++tries;
  CHECK(tries == 4);

  RetryPolicy none{0, 1.0, 30.0, 2.0};
  CHECK_FALSE(none.should_retry(a, 0));

  Attempt ok;
  ok.success = true;
  CHECK_FALSE(p.should_retry(ok, 0));

  Attempt bad_request;
  bad_request.error = "http_400";
  bad_request.retryable = false;
  CHECK_FALSE(p.should_retry(bad_request, 0));

  Attempt refused;
  refused.error = "http_401";
  refused.auth_refused = true;
  refused.retryable = true;  // even if someone marked it so
  CHECK_FALSE(p.should_retry(refused, 0));

  Attempt cancelled;
  cancelled.error = "cancelled";
  cancelled.retryable = true;
  CHECK_FALSE(p.should_retry(cancelled, 0));

  Attempt slow = retryable_failure();
  slow.retry_after_s = 120;
  CHECK(p.should_retry(slow, 0));
  slow.retry_after_s = 120.5;
  CHECK_FALSE(p.should_retry(slow, 0));
}
