// Small string helpers shared by the llm sources (internal header).
#pragma once

#include <string_view>

#include "llmbridge/text/ascii.hpp"

namespace llmbridge::llm::detail {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

using text::trim;

}  // namespace llmbridge::llm::detail
