// Turns the model's answer text into JSON text: <think> block and markdown fences
// removed, then JSON repair. The one place where content post-processing happens.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmbridge::llm {

struct ContentResult {
  bool ok = false;
  std::string json;        // the JSON text, when ok
  // The text handed over as JSON differs from the raw content in more than surrounding
  // whitespace (fence or <think> block stripped, or anything repaired).
  bool repaired = false;
  bool truncated = false;  // the JSON was cut off and had to be closed by the repairer
  std::string error;       // when !ok: "empty_model_response" or "invalid_json: ..."
};

// Never fails on input bytes; a content with no JSON to find yields an error value.
ContentResult process_content(std::string_view content);

// `content` without a leading <think>...</think> block (after leading whitespace), as
// reasoning models served without --reasoning-parser write it. An unclosed block is
// left alone.
std::string_view strip_think_block(std::string_view content) noexcept;

}  // namespace llmbridge::llm
