// Validation of provider configs: every problem names the field, the bad value and
// what is allowed, so a user can fix it without reading code. Secrets never appear.
#include "llmbridge/config/provider_config.hpp"

#include "llmbridge/text/ascii.hpp"

#include "llmbridge/text/utf8.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>

namespace llmbridge::config {
namespace {

std::string format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

using text::quoted;

using text::trim;

bool starts_with_nocase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// One URL, or several separated by commas: each must be valid, none listed twice. A
// problem names the bad entry, not the whole list.
void check_base_urls(std::string_view base_url, std::vector<ConfigProblem>& out) {
  constexpr std::string_view kAllowed = "an http:// or https:// URL with a host, e.g. \"http://localhost:8000\"";
  if (base_url.find(',') == std::string_view::npos) {
    if (!is_valid_base_url(base_url)) out.push_back({"base_url", quoted(display_url(base_url)), std::string(kAllowed)});
    return;
  }
  std::vector<std::string> seen;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = base_url.find(',', start);
    const std::string_view entry = trim(base_url.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (!is_valid_base_url(entry)) {
      out.push_back({"base_url", quoted(display_url(entry)),
                     std::string(kAllowed) + " (in a comma-separated list, every entry)"});
    } else {
      std::string n = normalized_base_url(entry);
      if (std::find(seen.begin(), seen.end(), n) != seen.end())
        out.push_back({"base_url", quoted(display_url(entry)), "listed once (each replica URL must differ)"});
      else
        seen.push_back(std::move(n));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

// Comparisons are written so that NaN fails them.
void check_common(const ProviderConfig& c, bool model_required, std::vector<ConfigProblem>& out) {
  check_base_urls(c.base_url, out);
  if (model_required && trim(c.model).empty())
    out.push_back({"model", quoted(c.model), "a non-empty model name"});
  if (!(c.timeout > 0) || !std::isfinite(c.timeout))
    out.push_back({"timeout", format_double(c.timeout), "a finite number of seconds > 0"});
  if (!(c.connect_timeout > 0) || !std::isfinite(c.connect_timeout))
    out.push_back({"connect_timeout", format_double(c.connect_timeout), "a finite number of seconds > 0"});
  if (c.max_retries < 0)
    out.push_back({"max_retries", std::to_string(c.max_retries), "an integer >= 0"});
  if (!(c.retry_base_delay >= 0) || !std::isfinite(c.retry_base_delay))
    out.push_back({"retry_base_delay", format_double(c.retry_base_delay), "a finite number of seconds >= 0"});
  // Compared with retry_base_delay only when that one is valid (no double report).
  const double floor = std::isfinite(c.retry_base_delay) && c.retry_base_delay >= 0 ? c.retry_base_delay : 0.0;
  if (!(c.retry_max_delay >= floor) || !std::isfinite(c.retry_max_delay))
    out.push_back({"retry_max_delay", format_double(c.retry_max_delay),
                   "a finite number of seconds >= retry_base_delay (" + format_double(c.retry_base_delay) +
                       ")"});
  if (!(c.retry_backoff_multiplier >= 1) || !std::isfinite(c.retry_backoff_multiplier))
    out.push_back({"retry_backoff_multiplier", format_double(c.retry_backoff_multiplier),
                   "a finite number >= 1"});
  if (c.max_tokens <= 0)
    out.push_back({"max_tokens", std::to_string(c.max_tokens), "an integer > 0"});
  if (c.embedding_batch_size < 1)
    out.push_back({"embedding_batch_size", std::to_string(c.embedding_batch_size), "an integer >= 1"});
  if (c.routing != "least_outstanding" && c.routing != "prefix")
    out.push_back({"routing", quoted(c.routing), "\"least_outstanding\" or \"prefix\""});
  if (!(c.prefix_overload_factor >= 1) || !std::isfinite(c.prefix_overload_factor))
    out.push_back({"prefix_overload_factor", format_double(c.prefix_overload_factor), "a finite number >= 1"});
  if (c.eject_after < 0)
    out.push_back({"eject_after", std::to_string(c.eject_after), "an integer >= 0 (0 = never eject)"});
  if (!(c.temperature >= 0 && c.temperature <= 2))
    out.push_back({"temperature", format_double(c.temperature), "a number between 0 and 2"});
  // The api_key is free text; the only thing we reject is what would corrupt the
  // Authorization header. Its value is never echoed.
  for (char ch : c.api_key) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      out.push_back({"api_key", "<redacted>", "a key without control characters or line breaks"});
      break;
    }
  }
}

void check_openai_compatible(const OpenAICompatibleConfig& c, std::vector<ConfigProblem>& out) {
  if (c.embedding_dimensions < 0)
    out.push_back({"embedding_dimensions", std::to_string(c.embedding_dimensions),
                   "an integer >= 0 (0 = not sent)"});
}

}  // namespace

std::string ConfigProblem::message() const { return field + " = " + value + ": must be " + allowed; }

std::vector<ConfigProblem> validate(const VLLMConfig& config) {
  std::vector<ConfigProblem> out;
  check_common(config, /*model_required=*/false, out);
  check_openai_compatible(config, out);
  return out;
}

std::vector<ConfigProblem> validate(const OpenAIConfig& config) {
  std::vector<ConfigProblem> out;
  check_common(config, /*model_required=*/true, out);
  check_openai_compatible(config, out);
  return out;
}

std::vector<ConfigProblem> validate(const OllamaConfig& config) {
  std::vector<ConfigProblem> out;
  check_common(config, /*model_required=*/true, out);
  if (config.num_ctx < 0)
    out.push_back({"num_ctx", std::to_string(config.num_ctx), "an integer >= 0 (0 = server default)"});
  return out;
}

std::string normalized_base_url(std::string_view base_url) {
  std::string_view s = trim(base_url);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  constexpr std::string_view kV1 = "/v1";
  if (s.size() >= kV1.size() && s.substr(s.size() - kV1.size()) == kV1) {
    s.remove_suffix(kV1.size());
    while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  }
  return std::string(s);
}

std::vector<std::string> replica_urls(std::string_view base_url) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = base_url.find(',', start);
    out.push_back(normalized_base_url(base_url.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

bool is_valid_base_url(std::string_view url) {
  std::string_view rest;
  if (starts_with_nocase(url, "http://"))
    rest = url.substr(7);
  else if (starts_with_nocase(url, "https://"))
    rest = url.substr(8);
  else
    return false;
  for (char ch : url)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return false;
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      port = after.substr(1);
      if (port.empty()) return false;
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) return false;
  }
  if (host.empty()) return false;
  if (!port.empty()) {
    if (port.size() > 5) return false;
    unsigned value = 0;
    for (char ch : port) {
      if (ch < '0' || ch > '9') return false;
      value = value * 10 + unsigned(ch - '0');
    }
    if (value == 0 || value > 65535) return false;
  }
  return true;
}

namespace {
std::string display_one_url(std::string_view url);
}

std::string display_url(std::string_view url) {
  if (url.find(',') == std::string_view::npos) return display_one_url(url);
  std::string out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = url.find(',', start);
    if (start) out += ",";
    out += display_one_url(url.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

namespace {
std::string display_one_url(std::string_view url) {
  std::string_view s = trim(url);
  const auto scheme_end = s.find("://");
  if (scheme_end == std::string_view::npos) {
    // No scheme: "user:pass@host" would still leak; drop everything up to the last '@'
    // of what looks like the authority.
    std::string_view authority = s.substr(0, s.find_first_of("/?#"));
    if (auto at = authority.rfind('@'); at != std::string_view::npos) s.remove_prefix(at + 1);
    return std::string(s);
  }
  const std::size_t host_start = scheme_end + 3;
  std::string_view rest = s.substr(host_start);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  const auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(s);
  std::string out(s.substr(0, host_start));
  out.append(rest.substr(at + 1));
  return out;
}

}  // namespace

}  // namespace llmbridge::config
