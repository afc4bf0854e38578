// Images as message content: their type sniffed from the bytes, the data URL that
// OpenAI-compatible servers take, and the rewrite of OpenAI-shape messages into Ollama's
// (text content plus bare base64 `images`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmbridge::llm {

inline constexpr std::size_t kDefaultMaxImageBytes = std::size_t(20) << 20;  // 20 MB

// "image/png", "image/jpeg", "image/gif" or "image/webp" from the magic bytes; "" when
// none matches.
std::string sniff_image_mime(std::string_view bytes) noexcept;

// "data:<mime>;base64,<base64 of bytes>".
std::string image_data_url(std::string_view bytes, std::string_view mime);

// OpenAI-shape messages (a JSON array) for Ollama's /api/chat: a message whose content is
// a list of parts gets its text parts joined (with "\n") as `content` and its image parts
// (data URLs) as `images` (bare base64). Other messages are copied as they are. Throws
// std::invalid_argument for an image given as an http(s) URL (Ollama takes image data,
// not URLs) or a part of another type.
std::string messages_for_ollama(std::string_view messages_json);

}  // namespace llmbridge::llm
