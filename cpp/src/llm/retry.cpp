// Backoff arithmetic, retry decisions and Retry-After / HTTP-date parsing.
#include "llmbridge/llm/retry.hpp"

#include "llmbridge/text/ascii.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <vector>

#include "llmbridge/llm/errors.hpp"

namespace llmbridge::llm {
namespace {

using text::trim;

// A whole-string decimal float (locale independent); nullopt on junk.
std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  if (s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto res = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> positive_finite(std::optional<double> v) {
  if (v && std::isfinite(*v) && *v > 0) return v;
  return std::nullopt;
}

std::optional<int> parse_int(std::string_view s, std::size_t min_digits, std::size_t max_digits) {
  if (s.size() < min_digits || s.size() > max_digits) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

int month_index(std::string_view m) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  if (m.size() != 3) return -1;
  char lower[3];
  for (int i = 0; i < 3; ++i) lower[i] = char(std::tolower(static_cast<unsigned char>(m[i])));
  for (int i = 0; i < 12; ++i)
    if (std::string_view(lower, 3) == kMonths[i]) return i + 1;
  return -1;
}

bool is_weekday(std::string_view w) {
  if (w.size() < 3) return false;
  for (char c : w)
    if (!std::isalpha(static_cast<unsigned char>(c))) return false;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[m - 1];
}

std::optional<std::time_t> make_time(int year, int month, int day, std::string_view hms) {
  if (month < 1 || year < 1 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  if (hms.size() != 8 || hms[2] != ':' || hms[5] != ':') return std::nullopt;
  auto h = parse_int(hms.substr(0, 2), 2, 2), mi = parse_int(hms.substr(3, 2), 2, 2),
       s = parse_int(hms.substr(6, 2), 2, 2);
  if (!h || !mi || !s || *h > 23 || *mi > 59 || *s > 60) return std::nullopt;
  const std::int64_t days = days_from_civil(year, unsigned(month), unsigned(day));
  return static_cast<std::time_t>(days * 86400 + *h * 3600 + *mi * 60 + *s);
}

bool is_utc_zone(std::string_view z) { return z == "GMT" || z == "UTC" || z == "+0000" || z == "Z"; }

}  // namespace

RetryPolicy RetryPolicy::from_config(const config::ProviderConfig& c) noexcept {
  RetryPolicy p;
  p.max_retries = c.max_retries;
  p.base_delay = c.retry_base_delay;
  p.max_delay = c.retry_max_delay;
  p.multiplier = c.retry_backoff_multiplier;
  return p;
}

double RetryPolicy::backoff_delay(int retry_index, double jitter01) const noexcept {
  if (retry_index < 0) retry_index = 0;
  // pow may overflow to inf for large indices; min() then yields max_delay.
  double d = std::min(max_delay, base_delay * std::pow(multiplier, retry_index));
  if (!std::isfinite(d) || d < 0) d = std::max(0.0, max_delay);
  if (!(jitter01 >= 0)) jitter01 = 0;  // also catches NaN
  if (jitter01 > 1) jitter01 = 1;
  return d * (0.75 + 0.25 * jitter01);
}

double RetryPolicy::next_delay(const Attempt& last, int retry_index, double jitter01) const noexcept {
  if (last.retry_after_s > 0 && last.retry_after_s <= kMaxRetryAfterSeconds) return last.retry_after_s;
  return backoff_delay(retry_index, jitter01);
}

bool RetryPolicy::should_retry(const Attempt& last, int retries_done) const noexcept {
  if (last.success || !last.retryable || last.auth_refused) return false;
  if (last.error == kErrorCancelled) return false;
  if (retries_done >= max_retries) return false;
  if (last.retry_after_s > kMaxRetryAfterSeconds) return false;
  return true;
}

std::optional<std::time_t> parse_http_date(std::string_view text) {
  std::vector<std::string_view> tok;
  text = trim(text);
  while (!text.empty()) {
    auto sp = text.find(' ');
    if (sp != 0) tok.push_back(text.substr(0, sp));
    if (sp == std::string_view::npos) break;
    text.remove_prefix(sp + 1);
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (tok.size() == 6 && tok[0].size() >= 4 && tok[0].back() == ',' &&
      is_weekday(tok[0].substr(0, tok[0].size() - 1)) && is_utc_zone(tok[5])) {
    auto day = parse_int(tok[1], 1, 2);
    auto year = parse_int(tok[3], 4, 4);
    int month = month_index(tok[2]);
    if (!day || !year) return std::nullopt;
    return make_time(*year, month, *day, tok[4]);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  if (tok.size() == 4 && tok[0].size() >= 4 && tok[0].back() == ',' &&
      is_weekday(tok[0].substr(0, tok[0].size() - 1)) && is_utc_zone(tok[3])) {
    std::string_view d = tok[1];
    if (d.size() != 9 || d[2] != '-' || d[6] != '-') return std::nullopt;
    auto day = parse_int(d.substr(0, 2), 2, 2);
    auto yy = parse_int(d.substr(7, 2), 2, 2);
    int month = month_index(d.substr(3, 3));
    if (!day || !yy) return std::nullopt;
    const int year = *yy < 70 ? 2000 + *yy : 1900 + *yy;
    return make_time(year, month, *day, tok[2]);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (tok.size() == 5 && is_weekday(tok[0])) {
    auto day = parse_int(tok[2], 1, 2);
    auto year = parse_int(tok[4], 4, 4);
    int month = month_index(tok[1]);
    if (!day || !year) return std::nullopt;
    return make_time(*year, month, *day, tok[3]);
  }
  return std::nullopt;
}

std::optional<double> parse_retry_after(std::optional<std::string_view> retry_after_ms,
                                        std::optional<std::string_view> retry_after, std::time_t now) {
  if (retry_after_ms) {
    if (auto ms = positive_finite(parse_number(*retry_after_ms))) return *ms / 1000.0;
  }
  if (retry_after) {
    if (auto s = parse_number(*retry_after)) return positive_finite(s);
    if (auto when = parse_http_date(*retry_after)) {
      const double delta = std::difftime(*when, now);
      if (delta > 0) return delta;
    }
  }
  return std::nullopt;
}

}  // namespace llmbridge::llm
