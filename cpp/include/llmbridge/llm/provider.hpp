// Providers are pure: build the HTTP request for one chat call, and turn the HTTP
// response into an Attempt. No I/O happens here; the engine sends the request.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/attempt.hpp"
#include "llmbridge/llm/provider_table.hpp"

namespace llmbridge::llm {

inline constexpr std::string_view kDocumentPlaceholder = "{document_text}";

struct Prompts {
  std::string system;
  std::string user;
  // If non-empty: a JSON array of OpenAI-shape messages, sent as is instead of
  // system/user (the document is then expected to be inside it and is not added).
  std::string messages_json;
};

struct ChatCall {
  Prompts prompts;
  std::string schema_json;  // "" = no schema; else a JSON Schema object as JSON text
  std::string document_text;
  std::string schema_name = "extraction";
};

// The user message: every "{document_text}" in `user` replaced by the document (one
// pass: a placeholder inside the document is not expanded again); without a
// placeholder the document is appended after a blank line; an empty document leaves
// `user` as is.
std::string render_user_prompt(std::string_view user, std::string_view document);

// max_tokens that fits the model's context: vLLM refuses (400) a request whose prompt
// plus max_tokens exceeds max_model_len, and does not clamp. With the context known
// (max_model_len > 0, from the server's model list) the answer may use what the prompt
// leaves: max_model_len minus an estimate of the prompt (a token per 3 bytes, plus 16
// for the chat template), at least 1 and never more than `configured`. Unknown context
// (0): `configured` as it is.
int fitted_max_tokens(int configured, long max_model_len, const ChatCall& call) noexcept;
// The same for a prompt of `prompt_bytes` bytes (chat, generate, complete).
int fitted_max_tokens(int configured, long max_model_len, std::size_t prompt_bytes) noexcept;

// Checks what build_*_request would splice raw into the body: schema_json must be a
// JSON object and messages_json a JSON array. Returns a message naming the caller's
// argument (json_schema, prompts['messages']), or
// nullopt when the call is fine.
std::optional<std::string> check_chat_call(const ChatCall& call);

// POST {normalized base}/v1/chat/completions with model (omitted when empty: vLLM then
// uses its served model), messages, max_tokens, temperature and response_format
// (json_schema with strict=true, or json_object). Never any Ollama field.
// Throws std::invalid_argument when check_chat_call() reports a problem: a malformed
// schema or messages text is a caller bug, and sending it would only earn an HTTP 400.
http::Request build_openai_request(const config::OpenAICompatibleConfig& config, const ChatCall& call,
                                   std::string_view request_id);

// POST {normalized base}/api/chat with model, messages, stream=false, format (the schema
// object or "json"), options {temperature, num_predict[, num_ctx]} and keep_alive when set
// (a number of seconds when it is numeric, such as "300" or "-1", else a duration string
// such as "5m"). Throws like build_openai_request.
http::Request build_ollama_request(const config::OllamaConfig& config, const ChatCall& call,
                                   std::string_view request_id);

// The re-ask after an answer that broke the call's JSON schema (docs/schema-validation.md):
// the call with its conversation (prompts.messages_json as given, else the system prompt
// and the rendered user prompt) followed by the model's answer as an "assistant" message
// and `reask` as a "user" message. The schema and its name are unchanged; the document is
// inside the messages from then on. The call must have passed check_chat_call().
ChatCall reask_call(const ChatCall& call, std::string_view answer, std::string_view reask);

// A JSON array of messages (valid JSON, checked before) with the assistant `answer` and
// the user `reask` appended: the text of the array, the two objects spliced in before its
// closing bracket.
std::string append_reask_messages(std::string_view messages_json, std::string_view answer, std::string_view reask);

// Maps one HTTP response to an Attempt with attempts = 1 and latency from the response.
// `provider` is "vllm" or "openai" (or "ollama" for Ollama's /v1 layer), `model` the
// configured one (the body's model wins when present), `max_response_bytes` the limit
// the request was sent with (only used in the too-large message).
//
// Policies:
//  - transport failures and statuses follow errors.hpp; status_code, request_id
//    (x-request-id) and retry_after_s (retry-after-ms / retry-after) are always filled;
//    for HTTP errors raw_response holds the server's error body.
//  - a non-2xx status below 400 (an unfollowed redirect, say) is "http_{code}", not
//    retryable; status 0 without a transport error is "connection_error: no HTTP response".
//  - a 2xx body that is not a JSON object is "invalid_json: response body is not JSON
//    (...)", retryable: a proxy or a crashed worker produced it, and a new try may not.
//  - no choices, or content null / empty / whitespace -> "empty_model_response",
//    retryable. Reasoning fields are never used as the answer.
//  - content goes through process_content (content.hpp): <think> block and fences
//    stripped, then text::repair_json; no JSON -> "invalid_json: <why> at position N",
//    retryable. repaired = the JSON text differs from the content beyond surrounding
//    whitespace (a stripped fence counts: the caller did not get the text verbatim).
//  - finish_reason "length", or JSON the repairer had to close, sets truncated; if
//    repair still yields JSON the attempt is a success with truncated = true, and the
//    caller decides whether to trust it (retrying at temperature 0 would only repeat it).
Attempt parse_openai_response(const http::Response& response, std::string_view provider,
                              std::string_view model,
                              std::size_t max_response_bytes = http::Request{}.max_response_bytes);

// As parse_openai_response, for Ollama's native /api/chat (message.content, done_reason,
// prompt_eval_count / eval_count).
Attempt parse_ollama_response(const http::Response& response, std::string_view model,
                              std::size_t max_response_bytes = http::Request{}.max_response_bytes);

}  // namespace llmbridge::llm
