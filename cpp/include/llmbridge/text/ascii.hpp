// ASCII helpers shared by every layer: the one white-space trim.
#pragma once

#include <string_view>

namespace llmbridge::text {

// JSON white space plus \f and \v (what a header value, an environment value or a
// model's answer may be padded with). Never a UTF-8 byte.
constexpr bool is_ascii_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// `s` without surrounding ASCII white space.
constexpr std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace llmbridge::text
