// Content post-processing: the model's text -> JSON text.
//
// TEMPORARY: the JSON repairer (text::repair_json) has not landed on main yet, so this
// file validates with simdjson only: valid JSON after <think>/fence stripping succeeds,
// anything else is "invalid_json: ...". When repair.cpp lands, the block marked REPAIR
// below becomes a call to text::repair_json; nothing else in the providers changes.
#include "llmbridge/llm/content.hpp"

#include <simdjson.h>

#include "llmbridge/llm/errors.hpp"
#include "llmbridge/text/fences.hpp"

namespace llmbridge::llm {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view strip_think_block(std::string_view content) noexcept {
  constexpr std::string_view kOpen = "<think>";
  constexpr std::string_view kClose = "</think>";
  std::string_view s = content;
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  if (s.substr(0, kOpen.size()) != kOpen) return content;
  const auto close = s.find(kClose, kOpen.size());
  if (close == std::string_view::npos) return content;
  return s.substr(close + kClose.size());
}

ContentResult process_content(std::string_view content) {
  ContentResult out;
  const std::string_view raw = trim(content);
  std::string_view text = trim(text::strip_markdown_fences(trim(strip_think_block(content))));
  if (text.empty()) {
    out.error = std::string(kErrorEmptyModelResponse);
    return out;
  }
  // REPAIR (simdjson validation until text::repair_json is available).
  simdjson::dom::parser parser;
  simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  if (auto err = parser.parse(padded).get(doc); err != simdjson::SUCCESS) {
    out.error = invalid_json_error(std::string("the answer is not valid JSON (") + simdjson::error_message(err) +
                                   ")");
    return out;
  }
  out.ok = true;
  out.json = std::string(text);
  out.repaired = text != raw;
  return out;
}

}  // namespace llmbridge::llm
