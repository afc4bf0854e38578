// Text embeddings: the request for one batch and the parse of its answer into one
// float32 buffer (rows x dims). Pure like provider.hpp; the Client splits a long input
// into batches and puts the results back in order.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/attempt.hpp"
#include "llmbridge/llm/provider_table.hpp"

namespace llmbridge::llm {

struct EmbedCall {
  std::vector<std::string> texts;
  std::string model;          // "" = the client's embedding model (or its model)
  int dimensions = 0;         // > 0: asked of the server (Matryoshka models), and checked
  int expected_dimensions = 0;  // > 0: the answer must have this many (the config's)
  std::size_t batch_size = 64;  // texts per request
  double timeout_s = 0;       // 0 = the config's timeout
  // vLLM's chat-style embeddings request (multimodal embedding models): when set, one
  // request with these OpenAI-shape messages (a JSON array, images as content parts)
  // instead of `texts`, and one embedding back.
  std::string messages_json;
};

// The outcome of one embed() (every batch, every retry). The Attempt part carries the
// error taxonomy; `vectors` holds rows x dims float32 values, row-major, in input order.
struct EmbeddingResult : Attempt {
  std::vector<float> vectors;
  std::size_t rows = 0;
  std::size_t dims = 0;
};

// POST {base}/v1/embeddings {model, input, encoding_format: "base64"[, dimensions]}, or
// Ollama's {base}/api/embed {model, input[, dimensions]}. texts[begin, end) is the batch.
http::Request build_embed_request(const ProviderSpec& spec, const config::ProviderConfig& config,
                                  std::string_view model, const std::vector<std::string>& texts,
                                  std::size_t begin, std::size_t end, int dimensions,
                                  std::string_view request_id, std::string_view messages_json = {});

// One batch's answer. OpenAI: data[] sorted by `index`, each embedding base64 float32
// (little-endian) or a float list (servers that ignore encoding_format); Ollama:
// embeddings[][] in order. Every row must have the same length and there must be
// `expected_rows` of them, else "invalid_json: ..." (retryable). HTTP and transport
// errors follow errors.hpp.
EmbeddingResult parse_embed_response(const ProviderSpec& spec, const http::Response& response,
                                     std::string_view model, std::size_t expected_rows,
                                     std::size_t max_response_bytes = http::Request{}.max_response_bytes);

// "embedding_dimension_mismatch: expected N, got M"
std::string embedding_dimension_error(int expected, std::size_t got);

}  // namespace llmbridge::llm
