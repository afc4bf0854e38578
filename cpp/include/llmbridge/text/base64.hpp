// Base64 (RFC 4648 §4, the standard alphabet) for embeddings that servers send as
// base64 float32 and images sent as data URLs.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmbridge::text {

// With '=' padding, no line breaks.
std::string base64_encode(std::string_view bytes);

// Appends the decoded bytes to `out`. Accepts input with or without '=' padding; refuses
// (false, `out` unchanged) any other character, misplaced padding, or a length that
// cannot be base64 (n % 4 == 1).
bool base64_decode(std::string_view text, std::string& out);

// The decoded size of `text` when it is valid base64 (without decoding), else npos.
std::size_t base64_decoded_size(std::string_view text) noexcept;

}  // namespace llmbridge::text
