// The one table that names the providers: what wire dialect each speaks and where each
// operation lives. Everything that depends on the provider asks this table (and the
// dialect it gives); nothing else compares provider names.
#pragma once

#include <string>
#include <string_view>

namespace llmbridge::llm {

// The names of the table's rows.
inline constexpr std::string_view kProviderVLLM = "vllm";
inline constexpr std::string_view kProviderOpenAI = "openai";
inline constexpr std::string_view kProviderOllama = "ollama";

enum class Dialect {
  kOpenAI,  // OpenAI-compatible JSON, SSE streams (vLLM, OpenAI, llama-server, ...)
  kOllama,  // Ollama's native API, NDJSON streams
};

enum class Operation { kChat, kCompletion, kEmbeddings, kModels, kHealth };

enum class StreamFormat { kSse, kNdjson };

// Which config struct (config/provider_config.hpp) the provider is configured with.
enum class ConfigType { kVLLM, kOpenAI, kOllama };

struct ProviderSpec {
  std::string_view name;  // "vllm", "openai", "ollama"
  Dialect dialect;
  ConfigType config_type;
  StreamFormat stream_format;
  std::string_view chat_path;        // call_llm, chat, generate
  std::string_view completion_path;  // complete
  std::string_view embeddings_path;
  std::string_view models_path;      // list_models, health
  // The model field may be left out (vLLM then uses its served model).
  bool model_optional;

  std::string_view path(Operation op) const noexcept;
};

// The table, in the order error messages list the names.
const ProviderSpec* provider_table(std::size_t& count) noexcept;

// nullptr when the name is unknown.
const ProviderSpec* find_provider(std::string_view name) noexcept;

// Throws std::invalid_argument "unknown provider 'x' (expected vllm, openai or ollama)";
// the name is cut to a short excerpt.
const ProviderSpec& provider_spec(std::string_view name);

// "vllm, openai or ollama", for messages.
std::string provider_names();

}  // namespace llmbridge::llm
