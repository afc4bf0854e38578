// Environment loading: one catalogue of variables drives parsing, validation, the
// error messages and the docs (docs/configuration.md and .env.example are checked
// against env_variables() by the tests). Secrets are never echoed.
#include "llmbridge/config/env.hpp"

#include "llmbridge/text/utf8.hpp"
#include "llmbridge/text/ascii.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>

namespace llmbridge::config {
namespace {

using text::trim;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return out;
}

using text::quoted;

std::string format_number(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::optional<double> parse_number(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<long long> parse_integer(std::string_view s) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  long long v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Ollama's keep-alive: an integer number of seconds (negative = forever) or a Go
// duration ("5m", "1h30m", "1.5h", "-1s").
bool is_keep_alive(std::string_view s) {
  if (parse_integer(s)) return true;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
  if (s.empty()) return false;
  while (!s.empty()) {
    std::size_t i = 0;
    bool digits = false;
    while (i < s.size() && is_digit(s[i])) ++i, digits = true;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && is_digit(s[i])) ++i, digits = true;
    }
    if (!digits) return false;
    s.remove_prefix(i);
    static constexpr std::string_view kUnits[] = {"ns", "us", "\xC2\xB5s", "ms", "s", "m", "h"};
    bool matched = false;
    for (std::string_view unit : kUnits) {  // "ms" is tried before "m"
      if (s.substr(0, unit.size()) == unit) {
        s.remove_prefix(unit.size());
        matched = true;
        break;
      }
    }
    if (!matched) return false;
  }
  return true;
}

bool has_control_chars(std::string_view s) {
  for (char ch : s)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return true;
  return false;
}

// ---- the catalogue ----

enum class Kind {
  kUrl,          // http(s) URL
  kOllamaHost,   // OLLAMA_HOST syntax
  kText,         // any text (model names)
  kSecret,       // API key: never echoed
  kSeconds,      // finite > 0
  kDelay,        // finite >= 0
  kMultiplier,   // finite >= 1
  kTemperature,  // 0..2
  kCount,        // integer >= 0
  kPositive,     // integer > 0
  kKeepAlive,    // Ollama duration
  kProvider,     // provider name (normalised, checked by the factory)
  kBool,         // true/false, 1/0, yes/no, on/off (any case)
};

struct Value {
  std::string text;  // trimmed
  double number = 0;
  long long integer = 0;
  bool flag = false;
};

using Apply = std::function<void(AppConfig&, const Value&)>;

struct Spec {
  EnvVariable doc;
  Kind kind;
  Apply apply;
};

constexpr std::string_view kAllowedUrl = "an http:// or https:// URL with a host, e.g. http://localhost:8000";
constexpr std::string_view kAllowedOllamaHost =
    "host, host:port or an http(s):// URL, as Ollama reads it (e.g. 127.0.0.1:11434, 0.0.0.0, "
    "http://ollama:11434)";
constexpr std::string_view kAllowedText = "any text";
constexpr std::string_view kAllowedSecret = "a key without control characters or line breaks";
constexpr std::string_view kAllowedSeconds = "a number of seconds > 0";
constexpr std::string_view kAllowedDelay = "a number of seconds >= 0";
constexpr std::string_view kAllowedMultiplier = "a number >= 1";
constexpr std::string_view kAllowedTemperature = "a number between 0 and 2";
constexpr std::string_view kAllowedCount = "an integer >= 0";
constexpr std::string_view kAllowedPositive = "an integer > 0";
constexpr std::string_view kAllowedKeepAlive =
    "a duration such as 5m, 1h30m, 300 (seconds) or -1 (keep loaded forever)";
constexpr std::string_view kAllowedProvider = "ollama, vllm, openai or a registered provider name";
constexpr std::string_view kAllowedBool = "true or false (also 1/0, yes/no, on/off)";

// Setters for the fields every provider has, so the table below stays one line a row.
template <typename Config>
Apply text_field(Config AppConfig::*cfg, std::string ProviderConfig::*field) {
  return [cfg, field](AppConfig& a, const Value& v) { (a.*cfg).*field = v.text; };
}
template <typename Config>
Apply number_field(Config AppConfig::*cfg, double ProviderConfig::*field) {
  return [cfg, field](AppConfig& a, const Value& v) { (a.*cfg).*field = v.number; };
}
template <typename Config>
Apply int_field(Config AppConfig::*cfg, int ProviderConfig::*field) {
  return [cfg, field](AppConfig& a, const Value& v) { (a.*cfg).*field = int(v.integer); };
}
template <typename Config>
Apply bool_field(Config AppConfig::*cfg, bool ProviderConfig::*field) {
  return [cfg, field](AppConfig& a, const Value& v) { (a.*cfg).*field = v.flag; };
}
template <typename Config>
Apply compat_text(Config AppConfig::*cfg, std::string OpenAICompatibleConfig::*field) {
  return [cfg, field](AppConfig& a, const Value& v) { (a.*cfg).*field = v.text; };
}

const std::vector<Spec>& specs() {
  using A = AppConfig;
  static const std::vector<Spec> kSpecs = [] {
    std::vector<Spec> s;
    auto add = [&s](std::string_view name, std::string_view def, Kind kind, std::string_view allowed,
                    std::string_view meaning, Apply apply) {
      s.push_back({{name, def, allowed, meaning}, kind, std::move(apply)});
    };
    // vLLM
    add("VLLM_BASE_URL", "http://localhost:8000", Kind::kUrl, kAllowedUrl,
        "vLLM server; a trailing /v1 is accepted", text_field(&A::vllm, &ProviderConfig::base_url));
    add("VLLM_MODEL", "", Kind::kText, kAllowedText,
        "model to request; empty: the first model the server lists",
        text_field(&A::vllm, &ProviderConfig::model));
    add("VLLM_TIMEOUT", "120", Kind::kSeconds, kAllowedSeconds, "total time of one HTTP try",
        number_field(&A::vllm, &ProviderConfig::timeout));
    add("VLLM_CONNECT_TIMEOUT", "10", Kind::kSeconds, kAllowedSeconds, "time to open a connection",
        number_field(&A::vllm, &ProviderConfig::connect_timeout));
    add("VLLM_MAX_RETRIES", "3", Kind::kCount, kAllowedCount, "retries after the first try",
        int_field(&A::vllm, &ProviderConfig::max_retries));
    add("VLLM_RETRY_BASE_DELAY", "1", Kind::kDelay, kAllowedDelay, "first backoff delay",
        number_field(&A::vllm, &ProviderConfig::retry_base_delay));
    add("VLLM_RETRY_MAX_DELAY", "30", Kind::kDelay, kAllowedDelay,
        "backoff cap (>= VLLM_RETRY_BASE_DELAY)", number_field(&A::vllm, &ProviderConfig::retry_max_delay));
    add("VLLM_RETRY_BACKOFF_MULTIPLIER", "2", Kind::kMultiplier, kAllowedMultiplier,
        "backoff growth per retry", number_field(&A::vllm, &ProviderConfig::retry_backoff_multiplier));
    add("VLLM_TEMPERATURE", "0", Kind::kTemperature, kAllowedTemperature, "sampling temperature",
        number_field(&A::vllm, &ProviderConfig::temperature));
    add("VLLM_MAX_TOKENS", "4096", Kind::kPositive, kAllowedPositive, "max_tokens of each answer",
        int_field(&A::vllm, &ProviderConfig::max_tokens));
    add("VLLM_API_KEY", "", Kind::kSecret, kAllowedSecret, "sent as Authorization: Bearer when set",
        text_field(&A::vllm, &ProviderConfig::api_key));
    add("VLLM_TEXT_MODEL", "", Kind::kText, kAllowedText, "model for text-only work (informational)",
        compat_text(&A::vllm, &OpenAICompatibleConfig::text_model));
    add("VLLM_VISION_MODEL", "", Kind::kText, kAllowedText, "model for images (informational)",
        compat_text(&A::vllm, &OpenAICompatibleConfig::vision_model));
    add("VLLM_EMBEDDING_MODEL", "", Kind::kText, kAllowedText, "embedding model (informational)",
        compat_text(&A::vllm, &OpenAICompatibleConfig::embedding_model));
    add("VLLM_EMBEDDING_DIMENSIONS", "0", Kind::kCount, kAllowedCount, "embedding size; 0 = not sent",
        [](A& a, const Value& v) { a.vllm.embedding_dimensions = int(v.integer); });
    add("VLLM_ROUTING", "least_outstanding", Kind::kText, "least_outstanding or prefix",
        "how each try picks one of several VLLM_BASE_URL replicas",
        text_field(&A::vllm, &ProviderConfig::routing));
    add("VLLM_PREFIX_OVERLOAD_FACTOR", "2", Kind::kMultiplier, kAllowedMultiplier,
        "prefix routing falls back to least-outstanding above this x the mean load",
        number_field(&A::vllm, &ProviderConfig::prefix_overload_factor));
    add("VLLM_EJECT_AFTER", "3", Kind::kCount, kAllowedCount,
        "consecutive failed tries that eject a replica; 0 = never eject",
        int_field(&A::vllm, &ProviderConfig::eject_after));
    add("VLLM_VALIDATE_SCHEMA", "true", Kind::kBool, kAllowedBool,
        "check each answer against the call's JSON schema (schema_mismatch when it breaks it)",
        bool_field(&A::vllm, &ProviderConfig::validate_schema));
    add("VLLM_SCHEMA_RETRY", "true", Kind::kBool, kAllowedBool,
        "retry a schema_mismatch by showing the model its errors; false: resend the same request",
        bool_field(&A::vllm, &ProviderConfig::schema_retry));
    // Ollama. OLLAMA_HOST comes before OLLAMA_BASE_URL so that the latter wins.
    add("OLLAMA_HOST", "127.0.0.1:11434", Kind::kOllamaHost, kAllowedOllamaHost,
        "Ollama's own variable; used when OLLAMA_BASE_URL is unset",
        text_field(&A::ollama, &ProviderConfig::base_url));
    add("OLLAMA_BASE_URL", "http://localhost:11434", Kind::kUrl, kAllowedUrl,
        "Ollama server; wins over OLLAMA_HOST", text_field(&A::ollama, &ProviderConfig::base_url));
    add("OLLAMA_MODEL", "llama3.1", Kind::kText, kAllowedText, "model to request",
        text_field(&A::ollama, &ProviderConfig::model));
    add("OLLAMA_TIMEOUT", "120", Kind::kSeconds, kAllowedSeconds, "total time of one HTTP try",
        number_field(&A::ollama, &ProviderConfig::timeout));
    add("OLLAMA_MAX_RETRIES", "3", Kind::kCount, kAllowedCount, "retries after the first try",
        int_field(&A::ollama, &ProviderConfig::max_retries));
    add("OLLAMA_TEMPERATURE", "0", Kind::kTemperature, kAllowedTemperature, "sampling temperature",
        number_field(&A::ollama, &ProviderConfig::temperature));
    add("OLLAMA_MAX_TOKENS", "4096", Kind::kPositive, kAllowedPositive, "options.num_predict",
        int_field(&A::ollama, &ProviderConfig::max_tokens));
    add("OLLAMA_NUM_CTX", "0", Kind::kCount, kAllowedCount,
        "options.num_ctx (context window); 0 = server default",
        [](A& a, const Value& v) { a.ollama.num_ctx = int(v.integer); });
    add("OLLAMA_KEEP_ALIVE", "", Kind::kKeepAlive, kAllowedKeepAlive,
        "how long Ollama keeps the model loaded; empty = server default",
        [](A& a, const Value& v) { a.ollama.keep_alive = v.text; });
    add("OLLAMA_API_KEY", "", Kind::kSecret, kAllowedSecret,
        "sent as Authorization: Bearer when set (proxies)", text_field(&A::ollama, &ProviderConfig::api_key));
    add("OLLAMA_VALIDATE_SCHEMA", "true", Kind::kBool, kAllowedBool,
        "check each answer against the call's JSON schema (schema_mismatch when it breaks it)",
        bool_field(&A::ollama, &ProviderConfig::validate_schema));
    add("OLLAMA_SCHEMA_RETRY", "true", Kind::kBool, kAllowedBool,
        "retry a schema_mismatch by showing the model its errors; false: resend the same request",
        bool_field(&A::ollama, &ProviderConfig::schema_retry));
    // OpenAI and OpenAI-compatible services
    add("OPENAI_API_KEY", "", Kind::kSecret, kAllowedSecret, "sent as Authorization: Bearer",
        text_field(&A::openai, &ProviderConfig::api_key));
    add("OPENAI_BASE_URL", "https://api.openai.com", Kind::kUrl, kAllowedUrl,
        "with or without a trailing /v1", text_field(&A::openai, &ProviderConfig::base_url));
    add("OPENAI_MODEL", "gpt-4o-mini", Kind::kText, kAllowedText, "model to request",
        text_field(&A::openai, &ProviderConfig::model));
    add("OPENAI_TIMEOUT", "120", Kind::kSeconds, kAllowedSeconds, "total time of one HTTP try",
        number_field(&A::openai, &ProviderConfig::timeout));
    add("OPENAI_MAX_RETRIES", "3", Kind::kCount, kAllowedCount, "retries after the first try",
        int_field(&A::openai, &ProviderConfig::max_retries));
    add("OPENAI_TEMPERATURE", "0", Kind::kTemperature, kAllowedTemperature, "sampling temperature",
        number_field(&A::openai, &ProviderConfig::temperature));
    add("OPENAI_MAX_TOKENS", "4096", Kind::kPositive, kAllowedPositive, "max_tokens of each answer",
        int_field(&A::openai, &ProviderConfig::max_tokens));
    add("OPENAI_VALIDATE_SCHEMA", "true", Kind::kBool, kAllowedBool,
        "check each answer against the call's JSON schema (schema_mismatch when it breaks it)",
        bool_field(&A::openai, &ProviderConfig::validate_schema));
    add("OPENAI_SCHEMA_RETRY", "true", Kind::kBool, kAllowedBool,
        "retry a schema_mismatch by showing the model its errors; false: resend the same request",
        bool_field(&A::openai, &ProviderConfig::schema_retry));
    // Provider selection (resolved after the table: LLM_PROVIDER > AI_PROVIDER > ollama).
    add("AI_PROVIDER", "ollama", Kind::kProvider, kAllowedProvider,
        "provider for LLM calls (and embeddings) when LLM_PROVIDER is unset", nullptr);
    add("LLM_PROVIDER", "", Kind::kProvider, kAllowedProvider, "provider for LLM calls; wins over AI_PROVIDER",
        nullptr);
    add("EMBEDDING_PROVIDER", "", Kind::kProvider, kAllowedProvider,
        "provider for embeddings; empty = the LLM provider", nullptr);
    return s;
  }();
  return kSpecs;
}

// The trimmed entries of a comma-separated list (one entry when there is no comma).
std::vector<std::string_view> comma_entries(std::string_view text) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = text.find(',', start);
    out.push_back(trim(text.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

// Parses and range-checks one value; nullopt when it is acceptable.
std::optional<std::string> check(Kind kind, std::string_view text, Value& out) {
  out.text = std::string(text);
  switch (kind) {
    case Kind::kUrl:
      // One URL or a comma-separated list of replicas: every entry must be a URL.
      for (const std::string_view entry : comma_entries(text))
        if (!is_valid_base_url(entry))
          return text.find(',') == std::string_view::npos
                     ? std::string(kAllowedUrl)
                     : std::string(kAllowedUrl) + ", every entry of a comma-separated list (" +
                           quoted(display_url(entry)) + " is not)";
      return std::nullopt;
    case Kind::kOllamaHost: {
      std::string joined;
      for (const std::string_view entry : comma_entries(text)) {
        auto url = ollama_host_to_base_url(entry);
        if (!url)
          return text.find(',') == std::string_view::npos
                     ? std::string(kAllowedOllamaHost)
                     : std::string(kAllowedOllamaHost) + ", every entry of a comma-separated list (" +
                           quoted(display_url(entry)) + " is not)";
        if (!joined.empty()) joined += ',';
        joined += *url;
      }
      out.text = std::move(joined);
      return std::nullopt;
    }
    case Kind::kText:
      return std::nullopt;
    case Kind::kSecret:
      if (has_control_chars(text)) return std::string(kAllowedSecret);
      return std::nullopt;
    case Kind::kSeconds:
    case Kind::kDelay:
    case Kind::kMultiplier:
    case Kind::kTemperature: {
      auto v = parse_number(text);
      const bool good = v && (kind == Kind::kSeconds       ? *v > 0
                              : kind == Kind::kDelay       ? *v >= 0
                              : kind == Kind::kMultiplier  ? *v >= 1
                                                           : (*v >= 0 && *v <= 2));
      if (!good)
        return std::string(kind == Kind::kSeconds      ? kAllowedSeconds
                           : kind == Kind::kDelay      ? kAllowedDelay
                           : kind == Kind::kMultiplier ? kAllowedMultiplier
                                                       : kAllowedTemperature);
      out.number = *v;
      return std::nullopt;
    }
    case Kind::kCount:
    case Kind::kPositive: {
      auto v = parse_integer(text);
      const long long floor = kind == Kind::kCount ? 0 : 1;
      if (!v || *v < floor || *v > std::numeric_limits<int>::max())
        return std::string(kind == Kind::kCount ? kAllowedCount : kAllowedPositive);
      out.integer = *v;
      return std::nullopt;
    }
    case Kind::kKeepAlive:
      if (!is_keep_alive(text)) return std::string(kAllowedKeepAlive);
      return std::nullopt;
    case Kind::kProvider:
      out.text = normalized_provider_name(text);
      return std::nullopt;
    case Kind::kBool: {
      const std::string v = lower(text);
      if (v == "true" || v == "1" || v == "yes" || v == "on") {
        out.flag = true;
      } else if (v == "false" || v == "0" || v == "no" || v == "off") {
        out.flag = false;
      } else {
        return std::string(kAllowedBool);
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = char(c - 'a' + 'A');
  return out;
}

bool reported(const std::vector<EnvProblem>& problems, std::string_view variable) {
  for (const auto& p : problems)
    if (p.variable == variable) return true;
  return false;
}

// Cross-field checks the per-variable pass cannot make (retry_max_delay against
// retry_base_delay), then the provider's own validate() as a safety net, each problem
// attributed to the variable that set the field.
template <typename Config>
void check_config(const Config& config, std::string_view prefix,
                  const std::map<std::string, std::string>& set, std::vector<EnvProblem>& out) {
  const std::string base_var = std::string(prefix) + "RETRY_BASE_DELAY";
  const std::string max_var = std::string(prefix) + "RETRY_MAX_DELAY";
  if (config.retry_max_delay < config.retry_base_delay && !reported(out, base_var) &&
      !reported(out, max_var)) {
    if (set.count(max_var))
      out.push_back({max_var, quoted(set.at(max_var)),
                     "a number of seconds >= " + base_var + " (" + format_number(config.retry_base_delay) + ")"});
    else
      out.push_back({base_var, quoted(set.at(base_var)),
                     "a number of seconds <= " + max_var + " (" + format_number(config.retry_max_delay) +
                         ", the default)"});
  }
  for (const auto& p : validate(config)) {
    const std::string var = std::string(prefix) + upper(p.field);
    if (reported(out, var)) continue;
    if (p.field == "retry_max_delay" || p.field == "retry_base_delay") continue;  // handled above
    auto it = set.find(var);
    const bool secret = p.field == "api_key";
    std::string value = secret            ? "<redacted>"
                        : it != set.end() ? quoted(p.field == "base_url" ? display_url(it->second) : it->second)
                                          : "(default)";
    out.push_back({var, std::move(value), p.allowed});
  }
}

}  // namespace

std::string EnvProblem::message() const { return variable + "=" + value + ": must be " + allowed; }

const std::vector<EnvVariable>& env_variables() {
  static const std::vector<EnvVariable> kVariables = [] {
    std::vector<EnvVariable> v;
    for (const auto& s : specs()) v.push_back(s.doc);
    return v;
  }();
  return kVariables;
}

AppConfigResult load_app_config(const Environment& env) {
  AppConfigResult result;
  AppConfig config;
  std::vector<EnvProblem>& problems = result.problems;
  std::map<std::string, std::string> set;  // variable -> raw trimmed value, for the checks

  auto lookup = [&env](std::string_view name) -> std::optional<std::string_view> {
    auto it = env.find(std::string(name));
    if (it == env.end()) return std::nullopt;
    std::string_view v = trim(it->second);
    if (v.empty()) return std::nullopt;  // empty means unset
    return v;
  };
  const bool ollama_base_url_set = lookup("OLLAMA_BASE_URL").has_value();

  std::map<std::string_view, std::string> providers;
  for (const auto& spec : specs()) {
    auto raw = lookup(spec.doc.name);
    if (!raw) continue;
    if (spec.doc.name == "OLLAMA_HOST" && ollama_base_url_set) continue;  // unused: not checked
    set.emplace(std::string(spec.doc.name), std::string(*raw));
    Value value;
    if (auto allowed = check(spec.kind, *raw, value)) {
      problems.push_back({std::string(spec.doc.name),
                          spec.kind == Kind::kSecret ? "<redacted>"
                          : spec.kind == Kind::kUrl || spec.kind == Kind::kOllamaHost
                              ? quoted(display_url(*raw))
                              : quoted(*raw),
                          *allowed});
      continue;
    }
    if (spec.kind == Kind::kProvider)
      providers[spec.doc.name] = value.text;
    else
      spec.apply(config, value);
  }

  if (providers.count("LLM_PROVIDER"))
    config.llm_provider = providers["LLM_PROVIDER"];
  else if (providers.count("AI_PROVIDER"))
    config.llm_provider = providers["AI_PROVIDER"];
  config.embedding_provider =
      providers.count("EMBEDDING_PROVIDER") ? providers["EMBEDDING_PROVIDER"] : config.llm_provider;

  check_config(config.vllm, "VLLM_", set, problems);
  check_config(config.ollama, "OLLAMA_", set, problems);
  check_config(config.openai, "OPENAI_", set, problems);

  if (problems.empty()) result.config = std::move(config);
  return result;
}

std::optional<std::string> ollama_host_to_base_url(std::string_view value) {
  std::string_view s = trim(value);
  // Ollama strips quotes people put in unit files: OLLAMA_HOST="0.0.0.0".
  while (!s.empty() && (s.front() == '"' || s.front() == '\'')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == '"' || s.back() == '\'')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  for (char ch : s)
    if (static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f) return std::nullopt;

  if (auto sep = s.find("://"); sep != std::string_view::npos) {
    const std::string scheme = lower(s.substr(0, sep));
    if (scheme != "http" && scheme != "https") return std::nullopt;
    std::string url = scheme + std::string(s.substr(sep));
    if (!is_valid_base_url(url)) return std::nullopt;
    return url;
  }

  std::string_view hostport = s;
  std::string_view path;
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    hostport = s.substr(0, slash);
    path = s.substr(slash);
  }
  std::string host;
  std::string port = std::to_string(kOllamaDefaultPort);
  if (!hostport.empty() && hostport.front() == '[') {  // [v6] or [v6]:port
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = std::string(hostport.substr(0, close + 1));
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = std::string(after.substr(1));
    }
  } else if (hostport.find(':') != hostport.rfind(':')) {  // a bare IPv6 address: "::1"
    host = "[" + std::string(hostport) + "]";
  } else if (auto colon = hostport.find(':'); colon != std::string_view::npos) {
    host = std::string(hostport.substr(0, colon));
    port = std::string(hostport.substr(colon + 1));
  } else {
    host = std::string(hostport);
  }
  if (host.empty()) host = "127.0.0.1";  // ":11434" - the server's "all interfaces"
  std::string url = "http://" + host + ":" + port + std::string(path);
  if (!is_valid_base_url(url)) return std::nullopt;
  return url;
}

const std::vector<std::string>& builtin_providers() {
  static const std::vector<std::string> kBuiltins = {"ollama", "vllm", "openai"};
  return kBuiltins;
}

std::string normalized_provider_name(std::string_view name) { return lower(trim(name)); }

ProviderRoute route_provider(std::string_view requested, const std::vector<std::string>& known) {
  ProviderRoute route;
  route.requested = normalized_provider_name(requested);
  if (route.requested.empty()) {
    route.provider = std::string(kDefaultProvider);
    return route;
  }
  for (const auto& name : known) {
    if (name == route.requested) {
      route.provider = name;
      return route;
    }
  }
  route.provider = std::string(kDefaultProvider);
  route.known = false;
  return route;
}

ProviderRoute route_provider(std::string_view requested) {
  return route_provider(requested, builtin_providers());
}

}  // namespace llmbridge::config
