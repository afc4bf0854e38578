// Provider configurations (vLLM, OpenAI, Ollama) and their validation.
//
// Plain structs with the defaults the Python workers rely on; the Python layer binds
// them field by field. Environment loading lives elsewhere.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::config {

// Fields every provider has. Times are in seconds.
struct ProviderConfig {
  // One URL, or several replicas of one model separated by commas (replica_urls()).
  std::string base_url;
  std::string model;
  double timeout = 120.0;  // total time for one HTTP try
  int max_retries = 3;     // retries after the first try (0 = one try only)
  double retry_base_delay = 1.0;
  double retry_max_delay = 30.0;
  double retry_backoff_multiplier = 2.0;
  int max_tokens = 4096;
  double temperature = 0.0;
  std::string api_key;  // sent as "Authorization: Bearer <key>" only when non-empty
  double connect_timeout = 10.0;
  int embedding_batch_size = 64;  // texts per embeddings request; longer lists are split
  // Several base URLs (llm/replicas.hpp): how each try picks one, and when one is ejected.
  std::string routing = "least_outstanding";  // or "prefix"
  double prefix_overload_factor = 2.0;        // prefix routing yields above factor x mean load
  int eject_after = 3;                        // consecutive failed tries; 0 = never eject
  // Structured answers (docs/schema-validation.md): check the data of a call that gave a
  // JSON schema against it (a mismatch is the retryable error "schema_mismatch: ..."),
  // and make the retry after a mismatch a re-ask that shows the model its errors.
  bool validate_schema = true;
  bool schema_retry = true;  // false: a mismatch is retried with the identical request
};

// Fields of the OpenAI-compatible servers (vLLM, OpenAI, Ollama's /v1 layer).
struct OpenAICompatibleConfig : ProviderConfig {
  std::string text_model;
  std::string vision_model;
  std::string embedding_model;
  int embedding_dimensions = 0;  // 0 = not sent
};

struct VLLMConfig : OpenAICompatibleConfig {
  VLLMConfig() { base_url = "http://localhost:8000"; }
};

struct OpenAIConfig : OpenAICompatibleConfig {
  OpenAIConfig() {
    base_url = "https://api.openai.com";
    model = "gpt-4o-mini";
  }
};

struct OllamaConfig : ProviderConfig {
  OllamaConfig() {
    base_url = "http://localhost:11434";
    model = "llama3.1";
  }
  int num_ctx = 0;         // options.num_ctx; 0 = not sent (server default)
  std::string keep_alive;  // "5m", "24h", "300", "-1"; empty = not sent
};

// The one list of a config's fields, in declaration order: f(name, member) for each.
// The bindings convert configs to and from Python through it, and the Python dataclasses
// are checked against it (tests_py/test_config_env.py), so a field is declared in the
// struct and here, nowhere else in C++.
template <class F>
void for_each_field(ProviderConfig& c, F&& f) {
  f("base_url", c.base_url);
  f("model", c.model);
  f("timeout", c.timeout);
  f("max_retries", c.max_retries);
  f("retry_base_delay", c.retry_base_delay);
  f("retry_max_delay", c.retry_max_delay);
  f("retry_backoff_multiplier", c.retry_backoff_multiplier);
  f("max_tokens", c.max_tokens);
  f("temperature", c.temperature);
  f("api_key", c.api_key);
  f("connect_timeout", c.connect_timeout);
  f("embedding_batch_size", c.embedding_batch_size);
  f("routing", c.routing);
  f("prefix_overload_factor", c.prefix_overload_factor);
  f("eject_after", c.eject_after);
  f("validate_schema", c.validate_schema);
  f("schema_retry", c.schema_retry);
}

template <class F>
void for_each_field(OpenAICompatibleConfig& c, F&& f) {
  for_each_field(static_cast<ProviderConfig&>(c), f);
  f("text_model", c.text_model);
  f("vision_model", c.vision_model);
  f("embedding_model", c.embedding_model);
  f("embedding_dimensions", c.embedding_dimensions);
}

template <class F>
void for_each_field(OllamaConfig& c, F&& f) {
  for_each_field(static_cast<ProviderConfig&>(c), f);
  f("num_ctx", c.num_ctx);
  f("keep_alive", c.keep_alive);
}

// One invalid field. `value` is the offending value as text ("<redacted>" for secrets),
// `allowed` says what would be accepted.
struct ConfigProblem {
  std::string field;
  std::string value;
  std::string allowed;

  // "timeout = -1: must be a finite number > 0"
  std::string message() const;
};

// Every problem found, in field order; empty when the config is valid.
// VLLMConfig may leave `model` empty (vLLM then uses the model it serves); OpenAI and
// Ollama need one.
std::vector<ConfigProblem> validate(const VLLMConfig& config);
std::vector<ConfigProblem> validate(const OpenAIConfig& config);
std::vector<ConfigProblem> validate(const OllamaConfig& config);

// "http://h:8000/v1/" -> "http://h:8000": trims whitespace, trailing '/' and one
// trailing "/v1", so request paths can be appended as "/v1/chat/completions".
std::string normalized_base_url(std::string_view base_url);

// The replicas of a base_url: its comma-separated entries, each trimmed and normalised
// (normalized_base_url). One URL gives one entry. Not validated (validate() does that).
std::vector<std::string> replica_urls(std::string_view base_url);

// True when `url` starts with http:// or https:// (any case) and names a host.
bool is_valid_base_url(std::string_view url);

// The URL as reprs, logs and error messages show it: any userinfo ("user:pass@") is
// dropped, so a password in a base URL never reaches a log line. Anything that is not
// scheme://authority... is returned trimmed and otherwise unchanged. A comma-separated
// list of URLs is shown entry by entry.
std::string display_url(std::string_view url);

}  // namespace llmbridge::config
