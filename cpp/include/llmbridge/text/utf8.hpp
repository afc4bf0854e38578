// UTF-8 validity: every string the core hands out (answers, error strings, header
// values) is valid UTF-8, so the layers above never fail to decode it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::text {

// RFC 3629 UTF-8: no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s) noexcept;

// One replaced run: where its U+FFFD stands in the output and what it replaced.
struct Utf8Replacement {
  std::size_t output;    // byte offset of the U+FFFD in the result
  std::size_t input;     // byte offset of the invalid bytes in the input
  std::size_t length;    // how many input bytes it replaced
};

// A copy of `in` with each maximal invalid subsequence replaced by U+FFFD (the
// "substitution of maximal subparts" practice of Unicode ch. 3, which is also what
// Python's errors="replace" does). Records each replacement in `map` when given.
std::string replace_invalid_utf8(std::string_view in, std::vector<Utf8Replacement>* map = nullptr);

// Replaces invalid sequences in place; true when something was replaced. Costs one
// SIMD validation pass when `s` is already valid.
bool make_valid_utf8(std::string& s);

// At most `max_bytes` of `s`, cut back to a code point boundary, with "..." appended
// when something was cut. For quoting caller or server data in messages.
std::string utf8_excerpt(std::string_view s, std::size_t max_bytes);

// `s` as messages quote a value, in the manner of Python's repr: in single quotes, with
// ' and \ escaped, control bytes and bytes that are not UTF-8 as \xNN, and at most
// `max_bytes` of the value (cut at a code point boundary, then "..."). The one quoting of
// caller and server values in error messages, so a message shows stray whitespace and
// never carries invalid UTF-8.
std::string quoted(std::string_view s, std::size_t max_bytes = 120);

}  // namespace llmbridge::text
