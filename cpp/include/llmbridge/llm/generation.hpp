// The generation surface beyond call_llm: chat, completions and model lists, as typed
// values. Pure like provider.hpp: requests are built and responses parsed here; the
// Client sends them. Streaming lives in stream.hpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/attempt.hpp"
#include "llmbridge/llm/provider_table.hpp"

namespace llmbridge::llm {

// Every option is optional: unset leaves it to the server, except max_tokens and
// temperature, which fall back to the client's config (as call_llm uses them).
struct GenerateOptions {
  std::string model;  // "" = the client's model
  std::optional<int> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  std::optional<std::int64_t> seed;
  std::string json_schema;      // a JSON Schema object as JSON text; "" = none
  std::string response_format;  // raw OpenAI response_format object as JSON text; "" = none
  std::string tools;            // JSON array of OpenAI function tools; "" = none
  std::string tool_choice;      // JSON text: "auto", "none", "required" or an object; "" = none
  std::string extra_body;       // JSON object merged into the body last; "" = none
  double timeout_s = 0;         // 0 = the config's timeout (for a stream: until the first byte)
  double stream_idle_timeout_s = 60;  // streams: longest gap between events
};

struct GenerateCall {
  Operation op = Operation::kChat;
  std::string messages_json;  // kChat: a JSON array of OpenAI-shape messages
  std::string prompt;         // kCompletion
  GenerateOptions options;
  bool stream = false;
};

// What the request builders take from the client besides the call.
struct RequestContext {
  const config::ProviderConfig& config;
  std::string_view model;  // the model to ask for ("" = none sent where optional)
  int num_ctx = 0;               // Ollama options.num_ctx; 0 = not sent
  std::string_view keep_alive;   // Ollama keep_alive; "" = not sent
  std::string_view request_id;
};

struct ToolCall {
  int index = 0;
  std::string id;
  std::string name;
  std::string arguments_text;  // as the model wrote it (Ollama: the object serialised)
  std::string arguments_json;  // parsed/repaired JSON text; "" when no JSON could be found
  bool arguments_repaired = false;
};

// The outcome of one chat / generate / complete call (all HTTP tries). The Attempt part
// carries the error taxonomy, retry fields and usage exactly as call_llm does; data_json
// is filled only when the call gave a json_schema (or asked for JSON with
// response_format). raw_response holds the server's error body for HTTP errors.
struct ChatResult : Attempt {
  std::string text;       // the answer's content ("" when the model only called tools)
  std::string reasoning;  // reasoning / reasoning_content / thinking, or a leading <think> block
  std::vector<ToolCall> tool_calls;
};

struct ModelInfo {
  std::string id;
  std::string owned_by;
  long max_model_len = 0;  // 0 = not listed
};

struct ModelsResult : Attempt {
  std::vector<ModelInfo> models;
};

// Checks a call before anything is built: JSON texts must be what they claim, the
// operation must have its input, and every option must be expressible for the provider
// (e.g. Ollama has no tool_choice; completions take no tools). Returns a message for a
// ValueError, naming the option, or nullopt.
std::optional<std::string> check_generate_call(const ProviderSpec& spec, const GenerateCall& call);

// The HTTP request for a chat or completion, streaming or not. Throws
// std::invalid_argument with check_generate_call()'s message.
http::Request build_generate_request(const ProviderSpec& spec, const RequestContext& context,
                                     const GenerateCall& call);

// Maps a (non-streamed) response to a ChatResult with attempts = 1. Transport and HTTP
// errors follow errors.hpp exactly as for call_llm. A 2xx answer with neither text nor
// tool calls is "empty_model_response"; with want_json the text goes through
// process_content (think block, fences, repair) into data_json, failing with
// "invalid_json: ..." like call_llm. Tool-call arguments are repaired and parsed the
// same way; a tool call whose arguments hold no JSON keeps arguments_json empty.
ChatResult parse_generate_response(const ProviderSpec& spec, Operation op, const http::Response& response,
                                   std::string_view model, bool want_json,
                                   std::size_t max_response_bytes = http::Request{}.max_response_bytes);

// The re-ask after an answer that broke options.json_schema (docs/schema-validation.md):
// a chat gets the model's answer as an "assistant" message and `reask` as a "user"
// message appended to its messages; a completion (/v1/completions, Ollama
// /api/generate) gets `reask` appended to its prompt after a blank line. The call must
// have passed check_generate_call().
GenerateCall reask_call(const GenerateCall& call, std::string_view answer, std::string_view reask);

// GET of the model list (the same request health checks use).
http::Request build_models_request(const ProviderSpec& spec, const config::ProviderConfig& config);
ModelsResult parse_models_response(const ProviderSpec& spec, const http::Response& response);

// Tool-call arguments text -> JSON text through the repairer; "" when none found.
std::string repair_arguments(std::string_view text, bool& repaired);

}  // namespace llmbridge::llm
