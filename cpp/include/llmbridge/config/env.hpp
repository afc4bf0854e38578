// Application configuration from environment variables, and provider routing.
//
// load_app_config() reads VLLM_*, OLLAMA_*, OPENAI_* and the provider selectors from a
// plain map (the caller passes its environment; nothing here calls getenv), so it is
// pure and tested without touching the process. Every bad variable is reported at
// once, each naming the variable, its value (never an API key's) and what is allowed.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/config/provider_config.hpp"

namespace llmbridge::config {

using Environment = std::map<std::string, std::string>;

inline constexpr std::string_view kDefaultProvider = "ollama";
inline constexpr int kOllamaDefaultPort = 11434;

struct AppConfig {
  VLLMConfig vllm;
  OllamaConfig ollama;
  OpenAIConfig openai;
  std::string llm_provider{kDefaultProvider};        // trimmed, lower-case; not checked here
  std::string embedding_provider{kDefaultProvider};  // defaults to llm_provider
};

// One bad variable. `value` is already quoted ('abc') or "<redacted>" for secrets.
struct EnvProblem {
  std::string variable;
  std::string value;
  std::string allowed;

  // "VLLM_TIMEOUT='abc': must be a number of seconds > 0"
  std::string message() const;
};

struct AppConfigResult {
  std::optional<AppConfig> config;  // set exactly when problems is empty
  std::vector<EnvProblem> problems;  // in catalogue order
  bool ok() const noexcept { return problems.empty(); }
};

// Empty (or whitespace-only) values count as unset. Unknown variables are ignored.
AppConfigResult load_app_config(const Environment& env);

// One documented variable: the catalogue behind docs/configuration.md and .env.example
// (a test keeps both in sync with it).
struct EnvVariable {
  std::string_view name;
  std::string_view default_value;  // as text; "" = empty/unset
  std::string_view allowed;
  std::string_view meaning;
};
const std::vector<EnvVariable>& env_variables();

// OLLAMA_HOST as Ollama itself reads it: "host", "host:port", "[::1]:port", "::1",
// ":port", "http(s)://host[:port][/path]". Without a scheme: http:// and port 11434
// unless one is given; an empty host means 127.0.0.1. nullopt when it cannot be a URL
// (bad port, spaces, an unknown scheme).
std::optional<std::string> ollama_host_to_base_url(std::string_view host);

// The provider names built into the factory.
const std::vector<std::string>& builtin_providers();

// The factory's routing decision for a requested provider name: matching trims
// whitespace and ignores case; "" means the default (ollama). `known` lists the
// providers a factory can build (builtin_providers() plus registered ones, already
// lower-case). An unknown name routes to the default with known = false, so the
// caller can warn about it.
struct ProviderRoute {
  std::string requested;  // the normalised request ("" when none was given)
  std::string provider;   // what to build
  bool known = true;      // false: `requested` is not a provider; `provider` is the default
};
ProviderRoute route_provider(std::string_view requested, const std::vector<std::string>& known);
ProviderRoute route_provider(std::string_view requested);  // against builtin_providers()

// The provider name as the factory compares it: trimmed, ASCII lower-case.
std::string normalized_provider_name(std::string_view name);

}  // namespace llmbridge::config
