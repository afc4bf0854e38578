// JSON repair: turns what LLMs really emit into valid JSON text, in linear time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::text {

// What a repair did. Stable names (see to_string) are part of the Python API.
enum class RepairKind : std::uint8_t {
  kFenceStripped,       // a markdown fence around the JSON was removed
  kProseSkipped,        // text before the JSON (or a <think> block) was skipped
  kTrailingTextDropped, // text after the JSON value was dropped
  kValuesConcatenated,  // several top-level JSON values were wrapped in an array
  kCommentRemoved,      // a //, /* */ or # comment was removed
  kQuoteNormalised,     // a single or typographic quote became a double quote
  kKeyQuoted,           // an unquoted object key was quoted
  kStringQuoted,        // an unquoted string value was quoted
  kCommaInserted,       // a missing comma was inserted
  kCommaRemoved,        // a trailing, leading or doubled comma was removed
  kColonInserted,       // a missing colon between key and value was inserted
  kValueDefaulted,      // a missing value became null
  kLiteralMapped,       // True/False/None/undefined/... became JSON literals
  kNonFiniteNulled,     // NaN / Infinity became null
  kNumberNormalised,    // a number was rewritten (.5, 1., +1, 007, 1_000, 1e)
  kStringEscaped,       // control characters or inner quotes in a string were escaped
  kEscapeFixed,         // an invalid escape sequence kept its backslash literally
  kStringClosed,        // a string without closing quote was closed
  kContainerClosed,     // an unclosed object or array was closed
  kBracketFixed,        // a mismatched or stray closing bracket was fixed or dropped
  kGarbageSkipped,      // a character that cannot start or join a value was skipped
  kLiteralCompleted,    // a literal cut off at the end (tru) was completed
  kKeyDropped,          // a key cut off at the end of input (no value) was dropped
  kCallUnwrapped,       // NumberLong(2), ObjectId("..") and similar were unwrapped
  kEllipsisRemoved,     // a "..." placeholder was removed
  kInvalidUtf8Replaced, // invalid UTF-8 bytes became U+FFFD
};

const char* to_string(RepairKind kind) noexcept;

struct Repair {
  RepairKind kind;
  std::size_t position;  // byte offset in the input where it applied
};

struct RepairOptions {
  // Deeper nesting is an error (never a stack overflow).
  std::size_t max_depth = 10000;
  // Keep a list of the repairs applied (cheap; off saves a little on hot paths).
  bool collect_repairs = true;
  // Try simdjson on the whole input first. A caller that has just seen it fail (loads)
  // turns this off rather than have the same validation run twice.
  bool try_fast_path = true;
  // The caller knows the input is valid UTF-8 (a Python str's own UTF-8): the check
  // that replaces invalid sequences by U+FFFD is skipped. Wrong here means invalid
  // UTF-8 may pass into the output, so only a caller that knows sets it.
  bool input_is_utf8 = false;
};

struct RepairResult {
  bool ok = false;
  // The input was valid JSON as it stood: `json` is empty, use the input itself.
  bool unchanged = false;
  // The input ended inside a value or container (e.g. cut off by max_tokens).
  bool truncated = false;
  std::string json;  // the repaired JSON text (when ok && !unchanged)
  std::vector<Repair> repairs;
  // When !ok: where and why no JSON could be produced.
  std::size_t error_position = 0;
  std::string error;

  // The JSON text: the input itself when unchanged, else the repaired text.
  std::string_view text(std::string_view input) const noexcept {
    return unchanged ? input : std::string_view(json);
  }
};

// Repairs `input` (any bytes). On valid JSON (checked with simdjson) this is a fast
// path that copies nothing. Idempotent; the output always parses as JSON (RFC 8259).
RepairResult repair_json(std::string_view input, const RepairOptions& options = {});

// True when `input` is one complete valid JSON document (surrounding whitespace allowed).
bool is_valid_json(std::string_view input) noexcept;

}  // namespace llmbridge::text
