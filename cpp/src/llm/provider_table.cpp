// The provider table (provider_table.hpp).
#include "llmbridge/llm/provider_table.hpp"

#include <stdexcept>

#include "llmbridge/text/utf8.hpp"

namespace llmbridge::llm {
namespace {

constexpr ProviderSpec kProviders[] = {
    {kProviderVLLM, Dialect::kOpenAI, ConfigType::kVLLM, StreamFormat::kSse, "/v1/chat/completions", "/v1/completions",
     "/v1/embeddings", "/v1/models", true},
    {kProviderOpenAI, Dialect::kOpenAI, ConfigType::kOpenAI, StreamFormat::kSse, "/v1/chat/completions", "/v1/completions",
     "/v1/embeddings", "/v1/models", true},
    {kProviderOllama, Dialect::kOllama, ConfigType::kOllama, StreamFormat::kNdjson, "/api/chat", "/api/generate", "/api/embed",
     "/api/tags", false},
};

}  // namespace

std::string_view ProviderSpec::path(Operation op) const noexcept {
  switch (op) {
    case Operation::kChat: return chat_path;
    case Operation::kCompletion: return completion_path;
    case Operation::kEmbeddings: return embeddings_path;
    case Operation::kModels:
    case Operation::kHealth: return models_path;
  }
  return chat_path;
}

const ProviderSpec* provider_table(std::size_t& count) noexcept {
  count = sizeof kProviders / sizeof kProviders[0];
  return kProviders;
}

const ProviderSpec* find_provider(std::string_view name) noexcept {
  for (const auto& p : kProviders)
    if (p.name == name) return &p;
  return nullptr;
}

std::string provider_names() {
  std::size_t n = 0;
  const ProviderSpec* t = provider_table(n);
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i) out += (i + 1 == n) ? " or " : ", ";
    out += t[i].name;
  }
  return out;
}

const ProviderSpec& provider_spec(std::string_view name) {
  if (const ProviderSpec* p = find_provider(name)) return *p;
  throw std::invalid_argument("unknown provider '" + text::utf8_excerpt(name, 40) + "' (expected " +
                              provider_names() + ")");
}

}  // namespace llmbridge::llm
