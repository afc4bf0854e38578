// Health of an LLM server: which models it serves, whether the configured one is among
// them, and how fast it answered.
//
// Parsing and evaluation are pure (a response in, a report out) and tested without a
// network; check_health() is the one blocking helper that does the GET through an
// http::Engine.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/http/engine.hpp"
#include "llmbridge/http/message.hpp"

namespace llmbridge::llm {

enum class HealthStatus { kHealthy, kDegraded, kUnhealthy };

const char* to_string(HealthStatus status) noexcept;  // "healthy", "degraded", "unhealthy"

inline constexpr double kDefaultSlowThresholdMs = 2000.0;

// The models a server lists. ok = false when the response is not a model list (then
// `error` says why, in the contract's words: "timeout", "http_503", "connection_error:
// ...", "invalid_json: ...").
struct ModelList {
  bool ok = false;
  std::vector<std::string> models;
  // max_model_len per listed model, where the server says (vLLM does; 0 = not listed).
  std::vector<long> max_model_lens;
  std::string error;

  long max_model_len(std::string_view model) const noexcept;
};

// OpenAI-compatible (vllm, openai, and any other name): GET /v1/models, data[].id.
// Ollama: GET /api/tags, models[].name (and models[].model when it differs), in order,
// without duplicates.
ModelList parse_models(std::string_view provider, const http::Response& response);

// The GET that lists models: {normalized base}/v1/models or /api/tags, with
// "Authorization: Bearer <key>" when api_key is set.
http::Request models_request(std::string_view provider, std::string_view base_url,
                             std::string_view api_key, double timeout_s);

// True when the server's model name is the configured one. Ollama names without a tag
// mean ":latest", so "llama3.1" matches "llama3.1:latest" (and the reverse).
bool model_matches(std::string_view provider, std::string_view configured, std::string_view served);

// One replica's part of a check of several base URLs.
struct ReplicaHealth {
  std::string url;  // as display_url() shows it
  HealthStatus status = HealthStatus::kUnhealthy;
  double latency_ms = 0;
  std::string reason;
};

struct HealthReport {
  HealthStatus status = HealthStatus::kUnhealthy;
  std::vector<std::string> models;  // what the server lists
  double latency_ms = 0;
  std::string reason;  // "" when healthy; else why not (never holds the API key)
  // The model calls will use: the configured one, or, when none is configured, the
  // first one the server lists ("" when there is none).
  std::string model;
  // That model's context length when the server lists it (vLLM's max_model_len), else 0.
  long max_model_len = 0;
  // When base_url lists several replicas: each one's result, in order (empty for one
  // URL). The report itself is then the best replica's (healthy when any is), and its
  // reason, when not healthy, names each replica's.
  std::vector<ReplicaHealth> replicas;
};

struct HealthOptions {
  double slow_threshold_ms = kDefaultSlowThresholdMs;  // slower than this: degraded
};

// healthy   = the list came back and the model is served (an empty configured model
//             is served when the server lists any model);
// degraded  = reachable, but the model is missing (or nothing is listed), or the answer
//             took longer than slow_threshold_ms;
// unhealthy = no usable answer: timeout, connection error, HTTP error, not a model list.
HealthReport evaluate_health(std::string_view provider, std::string_view model,
                             const http::Response& response, const HealthOptions& options = {});

// Blocking: lists the models through `engine` and evaluates them. A comma-separated
// base_url checks every replica at once (HealthReport::replicas). Safe from any thread
// except the engine's own I/O thread (it waits for that thread).
HealthReport check_health(http::Engine& engine, std::string_view provider, std::string_view base_url,
                          std::string_view model, std::string_view api_key, double timeout_s,
                          const HealthOptions& options = {});

// As above with a short-lived engine of its own.
HealthReport check_health(std::string_view provider, std::string_view base_url, std::string_view model,
                          std::string_view api_key, double timeout_s, const HealthOptions& options = {});

}  // namespace llmbridge::llm
