// Wire helpers shared by the request builders and response parsers of provider.cpp and
// generation.cpp (internal header).
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/attempt.hpp"
#include "strings.hpp"

namespace llmbridge::llm::detail {

// seconds -> milliseconds for libcurl: non-positive or non-finite gives `fallback`,
// anything else at least 1 ms, saturating.
long to_ms(double seconds, long fallback);

// A POST to {normalized base}{path} with the JSON headers, the request id and the key.
http::Request base_request(const config::ProviderConfig& config, std::string_view path,
                           std::string_view request_id);

// Attempt fields every response fills, whatever its outcome.
Attempt start_attempt(const http::Response& r, std::string_view provider, std::string_view model);

// Handles everything but a 2xx answer; returns true when `a` is final.
bool classify_non_success(const http::Response& r, std::size_t max_response_bytes, Attempt& a);

// Fails `a` with a retryable error and the raw text.
void fail(Attempt& a, std::string error, std::string_view raw);

// Parses a 2xx body into an object, or fails the attempt.
bool parse_body(simdjson::dom::parser& parser, const std::string& body, simdjson::dom::object& obj,
                Attempt& a);

int token_count(simdjson::simdjson_result<simdjson::dom::element> v);
std::string string_field(simdjson::simdjson_result<simdjson::dom::element> v);
// A tool call's function.arguments as text: the string (OpenAI), or the object
// serialised compactly (Ollama, and gateways that send an object); "" when absent.
std::string tool_arguments_text(simdjson::dom::element call);

// OpenAI message content: a string, or a list of {type:"text", text} parts joined.
std::string message_content(simdjson::simdjson_result<simdjson::dom::element> v);

}  // namespace llmbridge::llm::detail

namespace llmbridge::llm {
class JsonWriter;
}
namespace llmbridge::llm::detail {
// "keep_alive": a number of seconds when the text is numeric ("300", "-1"), else the
// duration string ("5m"); nothing when empty.
void write_keep_alive(JsonWriter& w, std::string_view keep_alive);
}  // namespace llmbridge::llm::detail
