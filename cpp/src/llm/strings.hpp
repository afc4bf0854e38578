// Small string helpers shared by the llm sources (internal header).
#pragma once

#include <string_view>

namespace llmbridge::llm::detail {

inline bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// `s` without surrounding ASCII white space.
inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace llmbridge::llm::detail
