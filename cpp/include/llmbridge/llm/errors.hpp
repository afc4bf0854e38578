// The error taxonomy: the exact error strings workers match on, status and transport
// classification, and a human description that never leaks the API key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/attempt.hpp"

namespace llmbridge::llm {

// Contract strings (design.md). Parameterised ones are built by the functions below.
inline constexpr std::string_view kErrorTimeout = "timeout";
inline constexpr std::string_view kErrorEmptyModelResponse = "empty_model_response";
inline constexpr std::string_view kErrorCancelled = "cancelled";
inline constexpr std::string_view kConnectionErrorPrefix = "connection_error: ";
inline constexpr std::string_view kInvalidJsonPrefix = "invalid_json: ";

std::string http_error(int status);                          // "http_503"
std::string connection_error(std::string_view details);      // "connection_error: <details>"
std::string invalid_json_error(std::string_view details);    // "invalid_json: <details>"

// 408, 409, 425, 429 and >= 500 are retryable; every other status is not.
bool is_retryable_status(int status) noexcept;

// 401 and 403: the server refused the credentials. Never retried.
bool is_auth_refused_status(int status) noexcept;

struct ErrorClass {
  std::string error;
  bool retryable = false;
};

// Maps a transport failure (error != kNone) to its contract string:
//   kTimeout   -> "timeout"                      retryable
//   kConnect   -> "connection_error: <message>"  retryable
//   kCancelled -> "cancelled"                    not retryable
//   kTooLarge  -> "connection_error: response body exceeds N bytes"  not retryable
//   kTls       -> "connection_error: <message>"  not retryable (a bad certificate stays bad)
//   kOther     -> "connection_error: <message>"  retryable
// `max_response_bytes` is the limit the request was sent with (N above).
ErrorClass classify_transport_error(http::TransportError error, std::string_view message,
                                    std::size_t max_response_bytes);

// The most useful message in an error body, tolerant of every server's shape
// (protocols.md 1.6): error.message, error (string), message, detail (string or list
// of {msg}), else the trimmed raw text.
std::string error_message_from_body(std::string_view body);

// A sentence for logs and exceptions, e.g. "the server refused the API key (HTTP 401)".
// Built only from the attempt; for 401/403 the server's body is left out, since some
// servers quote the key they were sent.
std::string describe(const Attempt& attempt);

}  // namespace llmbridge::llm
